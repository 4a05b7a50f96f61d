//! Throughput and latency: plain `axum::serve` against `hello` (1, 2 and as many workers as
//! the server's cores; criteria off and on; each worker runtime), pinned and unpinned.

use std::collections::BTreeMap;

use super::server::{self, Criteria, HelloSetup, Runtime, Server};
use super::{Placement, Settings, median, ratio_cell, table};
use crate::load::Measured;
use crate::procfs;
use crate::report::ms;

/// What the section found, and the figures later sections start from.
#[derive(Debug)]
pub struct Found {
    /// The section's tables.
    pub markdown: String,
    /// Every run's figures.
    pub json: serde_json::Value,
    /// Median throughput of `hello` with one worker per core, criteria on, unpinned.
    pub hello_rate: f64,
}

/// The configurations measured in `placement`, the baseline first.
fn servers(settings: &Settings, placement: &Placement) -> Vec<Server> {
    let free = placement.server.count(settings.cpus.len());
    let mut workers = vec![1, 2, free];
    workers.sort_unstable();
    workers.dedup();
    let mut v = vec![Server::Plain];
    let hello = |workers, criteria, runtime| {
        Server::Hello(HelloSetup {
            criteria,
            runtime,
            ..HelloSetup::steady(workers)
        })
    };
    for &w in &workers {
        v.push(hello(w, Criteria::Off, Runtime::Default));
        v.push(hello(w, Criteria::On, Runtime::Default));
    }
    for &w in &workers {
        let mut runtimes = vec![
            Runtime::MultiThread(free),
            Runtime::MultiThread((free / w).max(1)),
            Runtime::CurrentThread,
        ];
        runtimes.dedup();
        for r in runtimes {
            v.push(hello(w, Criteria::On, r));
        }
    }
    v
}

/// Runs the section.
pub fn run(settings: &Settings) -> Result<Found, String> {
    let mut markdown = String::new();
    let mut json = serde_json::Map::new();
    let mut hello_rate = 0.0;
    for placement in settings.placements() {
        let servers = servers(settings, &placement);
        let compared = compare(settings, &placement, &servers, "throughput")?;
        let free = placement.server.count(settings.cpus.len());
        if placement.name == "unpinned"
            && let Some(i) = servers
                .iter()
                .position(|s| *s == Server::Hello(HelloSetup::steady(free)))
        {
            hello_rate = compared.rates[i];
        }
        markdown.push_str(&compared.markdown);
        json.insert(placement.name.to_string(), compared.json);
    }
    Ok(Found {
        markdown,
        json: serde_json::Value::Object(json),
        hello_rate,
    })
}

/// One table: `servers`, the baseline first, taking turns in `placement`, round after round.
pub(super) struct Compared {
    /// The table, under its heading.
    pub markdown: String,
    /// Every run's figures, by server.
    pub json: serde_json::Value,
    /// The median throughput of each server.
    pub rates: Vec<f64>,
}

/// Measures `servers` in `placement` side by side (`section` names the runs in the progress
/// lines): each round starts every server in turn, measures it, and stops it.
pub(super) fn compare(
    settings: &Settings,
    placement: &Placement,
    servers: &[Server],
    section: &str,
) -> Result<Compared, String> {
    let mut runs = Runs::new(servers.len());
    for round in 0..settings.rounds {
        for (i, s) in servers.iter().enumerate() {
            eprintln!(
                "regiment-bench: {section}, {}, round {}/{}: {}",
                placement.name,
                round + 1,
                settings.rounds,
                s.label()
            );
            let running = server::start(&settings.bins, s, &placement.server)?;
            let (m, cpu) = measure(settings, placement, &running)?;
            running.stop();
            runs.push(i, m, cpu);
        }
    }
    let heading = heading(settings, placement, "", "per run");
    Ok(runs.compared(servers, &heading))
}

/// The heading of a table of `settings.rounds` rounds in `placement`: `how` the servers run (after
/// the CPUs), and what each measured `duration` is (`per run`, ...).
pub(super) fn heading(settings: &Settings, placement: &Placement, how: &str, per: &str) -> String {
    format!(
        "{}: generator on CPUs {}, server on CPUs {}{how} ({} connections, keep-alive, {} s {per}, {} rounds; load average after: {})",
        placement.name,
        placement.generator.label(),
        placement.server.label(),
        settings.connections,
        settings.duration.as_secs_f64(),
        settings.rounds,
        super::loadavg()
    )
}

/// The standard load against `running`, and its server's CPU seconds over the measured window
/// (from the end of the warm-up): per request, a figure the machine's other load barely moves.
pub(super) fn measure(
    settings: &Settings,
    placement: &Placement,
    running: &server::Running,
) -> Result<(Measured, f64), String> {
    let pid = running.pid();
    let warmup = settings.warmup;
    let at_start = std::thread::spawn(move || {
        std::thread::sleep(warmup);
        procfs::tree_cpu_seconds(pid)
    });
    let m = settings.run_load(&placement.generator, running.addr)?;
    let cpu = procfs::tree_cpu_seconds(pid) - at_start.join().unwrap_or(0.0);
    Ok((m, cpu))
}

/// One server's ratios to the baseline, one per round.
pub(super) struct Ratios {
    pub throughput: Vec<f64>,
    pub p99: Vec<f64>,
    pub cpu_per_request: Vec<f64>,
}

/// The figures of servers side by side, one per server and round, the baseline first.
pub(super) struct Runs {
    measured: Vec<Vec<Measured>>,
    cpu_us: Vec<Vec<f64>>,
}

impl Runs {
    pub(super) fn new(servers: usize) -> Self {
        Runs {
            measured: vec![Vec::new(); servers],
            cpu_us: vec![Vec::new(); servers],
        }
    }

    /// Server `i`'s run: its figures and its CPU seconds.
    pub(super) fn push(&mut self, i: usize, m: Measured, cpu_seconds: f64) {
        self.cpu_us[i].push(cpu_seconds * 1e6 / m.counts.ok.max(1) as f64);
        self.measured[i].push(m);
    }

    /// Server `i`'s figures against the baseline's, each ratio taken within its round.
    pub(super) fn ratios(&self, i: usize) -> Ratios {
        let base = &self.measured[0];
        let r = &self.measured[i];
        Ratios {
            throughput: r
                .iter()
                .zip(base)
                .map(|(m, b)| m.throughput / b.throughput.max(1.0))
                .collect(),
            p99: r
                .iter()
                .zip(base)
                .map(|(m, b)| m.latency.p99_us as f64 / (b.latency.p99_us.max(1)) as f64)
                .collect(),
            cpu_per_request: self.cpu_us[i]
                .iter()
                .zip(&self.cpu_us[0])
                .map(|(c, b)| c / b.max(1e-9))
                .collect(),
        }
    }

    /// The table under `heading`: each ratio taken within its round, against the baseline.
    pub(super) fn compared(&self, servers: &[Server], heading: &str) -> Compared {
        let mut rows = Vec::new();
        let mut entries = BTreeMap::new();
        let mut rates = Vec::new();
        for (i, ((s, r), cpu)) in servers
            .iter()
            .zip(&self.measured)
            .zip(&self.cpu_us)
            .enumerate()
        {
            let ratios = self.ratios(i);
            let rate: Vec<f64> = r.iter().map(|m| m.throughput).collect();
            let p99: Vec<f64> = r.iter().map(|m| m.latency.p99_us as f64).collect();
            let failures: u64 = r.iter().map(|m| m.failures).sum();
            rows.push(vec![
                s.label(),
                format!("{:.0}", median(&rate)),
                ratio_cell(&ratios.throughput),
                ms(median(&p99) as u64),
                ratio_cell(&ratios.p99),
                format!("{:.1}", median(cpu)),
                ratio_cell(&ratios.cpu_per_request),
                failures.to_string(),
            ]);
            rates.push(median(&rate));
            entries.insert(
                s.label(),
                serde_json::json!({"runs": r, "server_cpu_us_per_request": cpu}),
            );
        }
        let mut markdown = format!("\n#### {heading}\n\n");
        markdown.push_str(&table(
            &[
                "server",
                "requests/s",
                "vs plain",
                "p99 ms",
                "p99 vs plain",
                "server CPU µs/request",
                "vs plain",
                "failed",
            ],
            &rows,
        ));
        Compared {
            markdown,
            json: serde_json::Value::Object(entries.into_iter().collect()),
            rates,
        }
    }
}

/// `hello`'s throughput with one worker per core, criteria on, unpinned: one run.
pub fn hello_rate(settings: &Settings) -> Result<f64, String> {
    let placement = &settings.placements()[0];
    let running = server::start(
        &settings.bins,
        &Server::Hello(HelloSetup::steady(settings.cpus.len())),
        &placement.server,
    )?;
    let m = settings.run_load(&placement.generator, running.addr)?;
    running.stop();
    Ok(m.throughput)
}
