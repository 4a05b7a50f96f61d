//! Recycling: a replacement every second (the request limit set from the measured rate)
//! against none, and how long each replacement takes, from the worker's request to the new
//! worker ready and to the old one gone.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::replacement_cost;
use super::server::{self, HelloSetup, NEVER, Server};
use super::{Settings, median, ratio_cell, table};
use crate::load::Measured;
use crate::report::ms;

/// The times of one replacement, from the `replace-requested` event of the old worker.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Replacement {
    /// To the `ready` event of its replacement.
    pub ready_us: u64,
    /// To the `exited` (or `killed`) event of the old worker.
    pub gone_us: u64,
}

/// The replacements in `events` (in order of arrival), complete ones only.
pub fn replacements(events: &[(Instant, serde_json::Value)]) -> Vec<Replacement> {
    let at = |pred: &dyn Fn(&serde_json::Value) -> bool| -> Option<Instant> {
        events.iter().find(|(_, e)| pred(e)).map(|(t, _)| *t)
    };
    events
        .iter()
        .filter(|(_, e)| e["event"] == "replace-requested")
        .filter_map(|(asked, e)| {
            let old = e["pid"].as_u64()?;
            let new = events
                .iter()
                .find(|(_, s)| s["event"] == "spawned" && s["replaces"].as_u64() == Some(old))?
                .1["pid"]
                .as_u64()?;
            let ready = at(&|r| r["event"] == "ready" && r["pid"].as_u64() == Some(new))?;
            let gone = at(&|x| {
                (x["event"] == "exited" || x["event"] == "killed") && x["pid"].as_u64() == Some(old)
            })?;
            Some(Replacement {
                ready_us: ready.saturating_duration_since(*asked).as_micros() as u64,
                gone_us: gone.saturating_duration_since(*asked).as_micros() as u64,
            })
        })
        .collect()
}

/// `hello` with `workers` workers, never replaced, and replaced every `limit` requests.
pub fn never_and_every(workers: usize, limit: u64) -> [Server; 2] {
    let setup = |max_requests| {
        Server::Hello(HelloSetup {
            max_requests,
            ..HelloSetup::steady(workers)
        })
    };
    [setup(NEVER), setup(limit)]
}

/// The server's events once the replacements asked for are done (the last may still be under
/// way when the load ends: at most 10 s more), the old workers waited for.
pub fn settled(running: &server::Running) -> Vec<(Instant, serde_json::Value)> {
    running.output.wait_for(Duration::from_secs(10), |lines| {
        let events = server::events_of(lines);
        replacements(&events).len() >= requested(&events)
    });
    running.output.events()
}

/// How many replacements the workers asked for (`replace-requested` events).
pub fn requested(events: &[(Instant, serde_json::Value)]) -> usize {
    events
        .iter()
        .filter(|(_, e)| e["event"] == "replace-requested")
        .count()
}

/// The `q` quantile of `v` in ms, two decimals.
fn quantile_ms(v: &mut [u64], q: f64) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.sort_unstable();
    ms(v[((v.len() - 1) as f64 * q).round() as usize])
}

/// Runs the section; `rate` is `hello`'s measured throughput with one worker per core.
pub fn run(settings: &Settings, rate: f64) -> Result<(String, serde_json::Value), String> {
    let workers = settings.cpus.len();
    // With R requests/s over all workers and a limit of L per worker, the cluster replaces
    // R/L workers a second: L = R for one a second.
    let limit = (rate as u64).max(1000);
    let servers = never_and_every(workers, limit);
    let placement = &settings.placements()[0];
    let mut runs: [Vec<Measured>; 2] = [Vec::new(), Vec::new()];
    let mut replaced: Vec<f64> = Vec::new();
    let mut timings: Vec<Replacement> = Vec::new();
    for round in 0..settings.rounds {
        for (i, s) in servers.iter().enumerate() {
            eprintln!(
                "regiment-bench: recycling, round {}/{}: {}",
                round + 1,
                settings.rounds,
                s.label()
            );
            let running = server::start(&settings.bins, s, &placement.server)?;
            let began = Instant::now();
            let m = settings.run_load(&placement.generator, running.addr)?;
            let took = began.elapsed();
            let events = settled(&running);
            running.stop();
            if i == 1 {
                let found = replacements(&events);
                let asked = events
                    .iter()
                    .filter(|(t, e)| e["event"] == "replace-requested" && *t <= began + took)
                    .count();
                replaced.push(asked as f64 / took.as_secs_f64());
                timings.extend(found);
            }
            runs[i].push(m);
        }
    }
    let ratio = |f: &dyn Fn(&Measured) -> f64| -> Vec<f64> {
        runs[1]
            .iter()
            .zip(&runs[0])
            .map(|(a, b)| f(a) / f(b).max(1.0))
            .collect()
    };
    let rows: Vec<Vec<String>> = servers
        .iter()
        .zip(&runs)
        .map(|(s, r)| {
            vec![
                s.label(),
                format!(
                    "{:.0}",
                    median(&r.iter().map(|m| m.throughput).collect::<Vec<_>>())
                ),
                ms(median(
                    &r.iter()
                        .map(|m| m.latency.p99_us as f64)
                        .collect::<Vec<_>>(),
                ) as u64),
                r.iter().map(|m| m.failures).sum::<u64>().to_string(),
                r.iter().map(|m| m.counts.retried).sum::<u64>().to_string(),
            ]
        })
        .collect();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "\n{workers} workers, criteria on, unpinned; `HELLO_MAX_REQUESTS={limit}` (the measured rate) against never; {} rounds; load average after: {}\n",
        settings.rounds,
        super::loadavg()
    );
    md.push_str(&table(
        &["server", "requests/s", "p99 ms", "failed", "retried"],
        &rows,
    ));
    let _ = writeln!(
        md,
        "\nThroughput with recycling against without: {}; p99: {}. Replacements per second: {:.2} (median over rounds).",
        ratio_cell(&ratio(&|m| m.throughput)),
        ratio_cell(&ratio(&|m| m.latency.p99_us as f64)),
        median(&replaced)
    );
    let mut ready: Vec<u64> = timings.iter().map(|t| t.ready_us).collect();
    let mut gone: Vec<u64> = timings.iter().map(|t| t.gone_us).collect();
    let _ = writeln!(
        md,
        "\nFrom a worker's request for replacement ({} replacements): new worker ready after {} ms median ({} ms p90, {} ms max); old worker gone after {} ms median ({} ms p90, {} ms max).",
        timings.len(),
        quantile_ms(&mut ready, 0.5),
        quantile_ms(&mut ready, 0.9),
        quantile_ms(&mut ready, 1.0),
        quantile_ms(&mut gone, 0.5),
        quantile_ms(&mut gone, 0.9),
        quantile_ms(&mut gone, 1.0),
    );
    let (cost_md, cost) = replacement_cost::run(settings, rate)?;
    md.push_str(&cost_md);
    let json = serde_json::json!({
        "cpu_per_replacement": cost,
        "limit": limit,
        "never": runs[0],
        "every_second": runs[1],
        "replacements_per_second": replaced,
        "replacements": timings,
    });
    Ok((md, json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_replacement_is_timed_from_its_request_to_its_successor_ready_and_itself_gone() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let events = vec![
            (at(0), json!({"event": "replace-requested", "pid": 10})),
            (
                at(1),
                json!({"event": "spawned", "pid": 20, "replaces": 10}),
            ),
            // Another worker's events between them do not count.
            (at(2), json!({"event": "ready", "pid": 11})),
            (at(8), json!({"event": "ready", "pid": 20})),
            (at(15), json!({"event": "exited", "pid": 10})),
            // Asked, but not yet replaced: left out.
            (at(16), json!({"event": "replace-requested", "pid": 11})),
        ];
        let found = replacements(&events);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].ready_us, 8_000);
        assert_eq!(found[0].gone_us, 15_000);
    }
}
