//! What a replacement costs in CPU: the same load with replacements many times a second against
//! none, side by side in each round; the difference in CPU time per request (every process of
//! the cluster, the replaced workers included once the master has waited for them) times the
//! requests, divided by the replacements.
//!
//! Throughput at one replacement a second cannot show a cost under 1% on a machine whose
//! throughput varies by more than that from run to run; CPU time spread over many
//! replacements can. At one a second, a replacement's CPU time is the share of the machine it
//! takes from serving.

use std::fmt::Write as _;
use std::time::Duration;

use super::generator::{self, Load};
use super::recycling::{never_and_every, requested, settled};
use super::server;
use super::{Settings, spread};
use crate::procfs;

/// Replacements a second in the measured runs: enough that their CPU time stands out of the
/// run-to-run variation of CPU per request.
const PER_SECOND: f64 = 20.0;

/// One run: CPU seconds of the whole cluster, requests answered, replacements asked for.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Run {
    cpu_s: f64,
    requests: u64,
    replacements: usize,
}

/// Runs the measurement; `rate` is `hello`'s measured throughput with one worker per core.
pub fn run(settings: &Settings, rate: f64) -> Result<(String, serde_json::Value), String> {
    let workers = settings.cpus.len();
    // R requests/s over all workers and a limit of L per worker: R/L replacements a second.
    let limit = ((rate / PER_SECOND) as u64).max(200);
    let servers = never_and_every(workers, limit);
    let placement = &settings.placements()[0];
    // Every request counted: the CPU time covers the whole run.
    let load = Load {
        warmup: Duration::ZERO,
        ..settings.load()
    };
    let mut per_replacement_ms = Vec::new();
    let mut runs = Vec::new();
    for round in 0..settings.rounds {
        let mut pair = Vec::new();
        for s in &servers {
            eprintln!(
                "regiment-bench: CPU per replacement, round {}/{}: {}",
                round + 1,
                settings.rounds,
                s.label()
            );
            let running = server::start(&settings.bins, s, &placement.server)?;
            let pid = running.pid();
            let before = procfs::tree_cpu_seconds(pid);
            let m = generator::run(&settings.bins, &placement.generator, running.addr, &load)?;
            let events = settled(&running);
            let cpu_s = procfs::tree_cpu_seconds(pid) - before;
            running.stop();
            pair.push(Run {
                cpu_s,
                requests: m.counts.ok + m.counts.non_2xx,
                replacements: requested(&events),
            });
        }
        let (never, recycled) = (pair[0], pair[1]);
        if recycled.replacements > 0 && never.requests > 0 {
            let per_request = never.cpu_s / never.requests as f64;
            let extra = recycled.cpu_s - per_request * recycled.requests as f64;
            per_replacement_ms.push(extra / recycled.replacements as f64 * 1000.0);
        }
        runs.push(pair);
    }
    let mut md = String::new();
    let Some((ms, min, max)) = spread(&per_replacement_ms) else {
        md.push_str("\nCPU per replacement: no round had a replacement to measure.\n");
        return Ok((md, serde_json::json!({ "limit": limit, "runs": runs })));
    };
    let _ = writeln!(
        md,
        "\nCPU per replacement: {ms:.1} ms [{min:.1}-{max:.1}] of CPU time over the whole cluster (median of {} rounds, each the same load with a replacement every {limit} requests, about {PER_SECOND:.0} a second, against none; new worker's start, old worker's drain and exit, the master's work, the clients' reconnections). At one replacement a second: {:.2}% of the machine's {workers} CPUs.",
        per_replacement_ms.len(),
        ms / 1000.0 / workers as f64 * 100.0,
    );
    let json = serde_json::json!({
        "limit": limit,
        "cpu_ms_per_replacement": per_replacement_ms,
        "runs": runs,
    });
    Ok((md, json))
}
