//! Scale: 32 and 64 workers on this machine, and 1,000 replacements in a row under load with
//! the master's descriptors, memory and children checked before and after.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::cores::Cores;
use super::server::{self, HelloSetup, NEVER, Server};
use super::{Settings, generator, table};
use crate::procfs;
use crate::report::ms;

fn hello(workers: usize, max_requests: u64) -> Server {
    Server::Hello(HelloSetup {
        max_requests,
        ..HelloSetup::steady(workers)
    })
}

/// 32 and 64 workers: start-up, memory, a load run, stop.
fn many(settings: &Settings) -> Result<(String, serde_json::Value), String> {
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for workers in [32, 64] {
        eprintln!("regiment-bench: scale, {workers} workers");
        let began = Instant::now();
        let running = server::start(&settings.bins, &hello(workers, NEVER), &Cores::All)?;
        let start_s = began.elapsed().as_secs_f64();
        let pid = running.pid();
        let f = procfs::footprint(pid);
        let fds = procfs::fds(pid).unwrap_or(0);
        let m = settings.run_load(&Cores::All, running.addr)?;
        let began = Instant::now();
        running.stop();
        let stop_s = began.elapsed().as_secs_f64();
        rows.push(vec![
            workers.to_string(),
            format!("{start_s:.2}"),
            format!("{:.1}", f.master_rss_kb as f64 / 1024.0),
            fds.to_string(),
            format!("{:.1}", f.total_pss_kb as f64 / 1024.0),
            format!("{:.0}", m.throughput),
            ms(m.latency.p99_us),
            m.failures.to_string(),
            format!("{stop_s:.2}"),
        ]);
        json.push(serde_json::json!({
            "workers": workers, "start_s": start_s, "footprint": f, "master_fds": fds,
            "load": m, "stop_s": stop_s,
        }));
    }
    let md = table(
        &[
            "workers",
            "all ready after s",
            "master RSS MB",
            "master fds",
            "all PSS MB",
            "requests/s",
            "p99 ms",
            "failed",
            "stopped after s",
        ],
        &rows,
    );
    Ok((md, serde_json::Value::Array(json)))
}

/// What the master looks like at one moment.
#[derive(Debug, Clone, serde::Serialize)]
struct Snapshot {
    fds: usize,
    rss_kb: u64,
    children: usize,
    zombies: usize,
    ready: usize,
    wanted: usize,
}

impl Snapshot {
    /// The snapshot as a row of the section's table, under `label`.
    fn row(&self, label: &str) -> Vec<String> {
        vec![
            label.into(),
            self.fds.to_string(),
            format!("{:.1}", self.rss_kb as f64 / 1024.0),
            self.children.to_string(),
            self.zombies.to_string(),
            format!("{} / {}", self.ready, self.wanted),
        ]
    }
}

fn snapshot(running: &server::Running) -> Snapshot {
    let pid = running.pid();
    let before = running.output.snapshot().len();
    // hello prints its status on SIGWINCH.
    running.signal(Signal::SIGWINCH);
    let mut status = serde_json::Value::Null;
    running.output.wait_for(Duration::from_secs(10), |lines| {
        match server::events_of(&lines[before.min(lines.len())..])
            .into_iter()
            .find(|(_, e)| e["event"] == "status-snapshot")
        {
            Some((_, e)) => {
                status = e["status"].clone();
                true
            }
            None => false,
        }
    });
    let children = procfs::children(pid);
    let workers = status["workers"].as_array().cloned().unwrap_or_default();
    Snapshot {
        fds: procfs::fds(pid).unwrap_or(0),
        rss_kb: procfs::rss_kb(pid).unwrap_or(0),
        zombies: children
            .iter()
            .filter(|&&c| procfs::state(c) == Some('Z'))
            .count(),
        children: children.len(),
        ready: workers.iter().filter(|w| w["state"] == "ready").count(),
        wanted: status["workers_wanted"].as_u64().unwrap_or(0) as usize,
    }
}

/// `settings.replacements` replacements in a row under load.
fn in_a_row(settings: &Settings) -> Result<(String, serde_json::Value), String> {
    let workers = settings.cpus.len();
    // Small enough that replacements follow each other as fast as the master makes them.
    let running = server::start(&settings.bins, &hello(workers, 100), &Cores::All)?;
    std::thread::sleep(Duration::from_secs(1));
    let before = snapshot(&running);
    let count = |what: &str| {
        running
            .output
            .events()
            .iter()
            .filter(|(_, e)| e["event"] == what)
            .count() as u64
    };
    let began = Instant::now();
    let limit = Duration::from_secs(600);
    let mut failures = 0;
    let mut ok = 0;
    let mut retried = 0;
    let mut load = settings.load();
    load.warmup = Duration::ZERO;
    load.duration = Duration::from_secs(5);
    while count("exited") + count("killed") < settings.replacements && began.elapsed() < limit {
        eprintln!(
            "regiment-bench: scale, replacements so far: {}",
            count("exited") + count("killed")
        );
        let m = generator::run(&settings.bins, &Cores::All, running.addr, &load)?;
        failures += m.failures;
        ok += m.counts.ok;
        retried += m.counts.retried;
    }
    let took = began.elapsed().as_secs_f64();
    let replaced = count("exited") + count("killed");
    // Settled: every requested replacement done.
    running.output.wait_for(Duration::from_secs(60), |lines| {
        let events = server::events_of(lines);
        let n = |w: &str| events.iter().filter(|(_, e)| e["event"] == w).count();
        n("ready") >= workers + n("replace-requested")
    });
    std::thread::sleep(Duration::from_secs(1));
    let after = snapshot(&running);
    let crashed = count("crashed");
    let killed = count("killed");
    running.stop();
    let md = format!(
        "\n{workers} workers, `HELLO_MAX_REQUESTS=100`, keep-alive load until {} workers were replaced: {replaced} replaced in {took:.0} s ({:.1}/s), {killed} of them killed at their drain deadline, {crashed} crashed; {ok} requests ok, {failures} failed, {retried} retried.\n\n{}",
        settings.replacements,
        replaced as f64 / took,
        table(
            &[
                "",
                "master fds",
                "master RSS MB",
                "children",
                "zombies",
                "ready / wanted"
            ],
            &[before.row("before"), after.row("after")]
        )
    );
    let json = serde_json::json!({
        "replaced": replaced, "seconds": took, "failures": failures, "ok": ok,
        "retried": retried, "before": before, "after": after, "crashed": crashed,
        "killed": killed,
    });
    Ok((md, json))
}

/// Runs the section.
pub fn run(settings: &Settings) -> Result<(String, serde_json::Value), String> {
    let (a, ja) = many(settings)?;
    let (b, jb) = in_a_row(settings)?;
    let mut md = String::new();
    let _ = write!(md, "\n{a}\n{b}");
    Ok((
        md,
        serde_json::json!({"many_workers": ja, "replacements_in_a_row": jb}),
    ))
}
