//! Rolling restarts under load: a SIGHUP every 2 s against none, keep-alive and a new
//! connection per request; failures by class, p99 during restarts against steady p99, and the
//! master's CPU. With one worker per CPU, and, keep-alive, with one worker: on a machine whose
//! load generator takes a core, how the connections fall between two workers decides the
//! steady p99 (all on one worker, or shared and time-sliced with the generator), and restarts
//! deal them again; one worker has no such draw. Where `taskset` can pin, keep-alive with one
//! worker per CPU is measured pinned as well: the generator on the first core, the master and
//! all its workers on the others (on 2 CPUs, two workers on one core), so that the workers do
//! not share their cores with the generator, whichever way the connections fall.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::cores::Cores;
use super::server::{self, HelloSetup, Server};
use super::{Placement, Settings, generator, median, ratio_cell, table};
use crate::load::{Measured, Protocol};
use crate::procfs;
use crate::report::ms;

/// One load of the section: how many workers, how the generator connects.
struct Case {
    workers: usize,
    protocol: Protocol,
}

impl Case {
    /// `keep-alive, 2 workers`, and `, pinned` when so placed.
    fn name(&self, placement: &Placement) -> String {
        let protocol = match self.protocol {
            Protocol::KeepAlive => "keep-alive",
            Protocol::NewConnection => "new connection per request",
            Protocol::H2 => "h2",
        };
        let workers = self.workers;
        let plural = if workers == 1 { "" } else { "s" };
        match placement.generator {
            Cores::All => format!("{protocol}, {workers} worker{plural}"),
            Cores::Only(_) => format!("{protocol}, {workers} worker{plural}, pinned"),
        }
    }
}

/// The cases of the section, each with where it runs (see the module docs).
fn cases(settings: &Settings) -> Vec<(Case, Placement)> {
    let cpus = settings.cpus.len();
    let mut placements = settings.placements().into_iter();
    let Some(unpinned) = placements.next() else {
        return Vec::new();
    };
    let case = |workers, protocol| Case { workers, protocol };
    let mut v = vec![
        (case(cpus, Protocol::KeepAlive), unpinned.clone()),
        (case(cpus, Protocol::NewConnection), unpinned.clone()),
    ];
    if cpus > 1 {
        v.push((case(1, Protocol::KeepAlive), unpinned));
    }
    if let Some(pinned) = placements.next() {
        v.push((case(cpus, Protocol::KeepAlive), pinned));
    }
    v
}

/// Whether SIGHUPs are sent during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Restarts {
    None,
    Every2s,
}

struct Run {
    measured: Measured,
    /// Rollouts completed during the run.
    done: usize,
    /// Workers started to replace another.
    replaced: usize,
    /// Master CPU seconds per second of the run.
    master_cpu: f64,
}

fn one(
    settings: &Settings,
    case: &Case,
    placement: &Placement,
    restarts: Restarts,
) -> Result<Run, String> {
    let server = Server::Hello(HelloSetup::steady(case.workers));
    let running = server::start(&settings.bins, &server, &placement.server)?;
    let mut load = settings.load();
    load.protocol = case.protocol;
    load.duration = load.duration.max(Duration::from_secs(10));
    let stop = Arc::new(AtomicBool::new(false));
    let pid = running.pid();
    let sender = {
        let stop = stop.clone();
        let warmup = load.warmup;
        std::thread::spawn(move || {
            std::thread::sleep(warmup);
            while restarts == Restarts::Every2s && !stop.load(Ordering::Relaxed) {
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGHUP);
                // Sliced so that the end of the run is seen at once.
                for _ in 0..20 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
    };
    let cpu_before = procfs::cpu_seconds(pid).unwrap_or(0.0);
    let began = Instant::now();
    let measured = generator::run(&settings.bins, &placement.generator, running.addr, &load);
    let elapsed = began.elapsed().as_secs_f64();
    let cpu = procfs::cpu_seconds(pid).unwrap_or(0.0) - cpu_before;
    stop.store(true, Ordering::Relaxed);
    let _ = sender.join();
    let events = running.output.events();
    let done = events
        .iter()
        .filter(|(_, e)| e["event"] == "rollout-done")
        .count();
    let replaced = events
        .iter()
        .filter(|(_, e)| e["event"] == "spawned" && !e["replaces"].is_null())
        .count();
    running.stop();
    Ok(Run {
        measured: measured?,
        done,
        replaced,
        master_cpu: cpu / elapsed,
    })
}

/// Runs the section.
pub fn run(settings: &Settings) -> Result<(String, serde_json::Value), String> {
    let mut md = String::new();
    let mut json = serde_json::Map::new();
    let mut rows = Vec::new();
    for (case, placement) in cases(settings) {
        let name = case.name(&placement);
        let mut steady = Vec::new();
        let mut during = Vec::new();
        for round in 0..settings.rounds {
            for restarts in [Restarts::None, Restarts::Every2s] {
                eprintln!(
                    "regiment-bench: restarts, {name}, round {}/{}: {restarts:?}",
                    round + 1,
                    settings.rounds
                );
                let run = one(settings, &case, &placement, restarts)?;
                match restarts {
                    Restarts::None => steady.push(run),
                    Restarts::Every2s => during.push(run),
                }
            }
        }
        let p99_ratio: Vec<f64> = during
            .iter()
            .zip(&steady)
            .map(|(d, s)| {
                d.measured.latency.p99_us as f64 / s.measured.latency.p99_us.max(1) as f64
            })
            .collect();
        let rate_ratio: Vec<f64> = during
            .iter()
            .zip(&steady)
            .map(|(d, s)| d.measured.throughput / s.measured.throughput.max(1.0))
            .collect();
        for (label, runs) in [("steady", &steady), ("SIGHUP every 2 s", &during)] {
            let sum =
                |f: &dyn Fn(&Measured) -> u64| runs.iter().map(|r| f(&r.measured)).sum::<u64>();
            rows.push(vec![
                format!("{name}, {label}"),
                format!(
                    "{:.0}",
                    median(
                        &runs
                            .iter()
                            .map(|r| r.measured.throughput)
                            .collect::<Vec<_>>()
                    )
                ),
                ms(median(
                    &runs
                        .iter()
                        .map(|r| r.measured.latency.p99_us as f64)
                        .collect::<Vec<_>>(),
                ) as u64),
                sum(&|m| m.counts.ok).to_string(),
                format!(
                    "{} / {} / {} / {}",
                    sum(&|m| m.counts.non_2xx),
                    sum(&|m| m.counts.connect_error),
                    sum(&|m| m.counts.reset),
                    sum(&|m| m.counts.timeout)
                ),
                sum(&|m| m.counts.retried).to_string(),
                runs.iter().map(|r| r.done).sum::<usize>().to_string(),
                runs.iter().map(|r| r.replaced).sum::<usize>().to_string(),
                format!(
                    "{:.1}%",
                    100.0 * median(&runs.iter().map(|r| r.master_cpu).collect::<Vec<_>>())
                ),
            ]);
        }
        let _ = writeln!(
            md,
            "- {name}: throughput during restarts {} of steady; p99 during restarts {} of steady.",
            ratio_cell(&rate_ratio),
            ratio_cell(&p99_ratio)
        );
        json.insert(
            name.clone(),
            serde_json::json!({
                "steady": steady.iter().map(|r| &r.measured).collect::<Vec<_>>(),
                "restarts": during.iter().map(|r| &r.measured).collect::<Vec<_>>(),
                "rollouts_done": during.iter().map(|r| r.done).collect::<Vec<_>>(),
            }),
        );
    }
    let mut out = format!(
        "\nCriteria on, unpinned unless the load says pinned (the generator on CPU {}, the \
         server on the others), {} rounds of at least 10 s; load average after: {}\n\n",
        settings.cpus.first().copied().unwrap_or(0),
        settings.rounds,
        super::loadavg()
    );
    out.push_str(&table(
        &[
            "load",
            "requests/s",
            "p99 ms",
            "ok",
            "failed: non-2xx / connect / reset / timeout",
            "retried",
            "rollouts done",
            "workers replaced",
            "master CPU",
        ],
        &rows,
    ));
    out.push('\n');
    out.push_str(&md);
    Ok((out, serde_json::Value::Object(json)))
}
