//! The engine's cost at one worker, in time: plain `axum::serve` against `hello` with one
//! worker, criteria off and on, placed as the bar of the benchmark asks (the generator on one
//! core, the server on the others, when `taskset` can pin; unpinned otherwise), and nothing
//! else.
//!
//! Unlike the throughput section, the three servers are started once and stay up, and every
//! round loads each of them in turn for one short window, beginning with a different one from
//! round to round. On a shared machine whose throughput swings by a factor of two over tens of
//! seconds, windows a second long, side by side, see nearly the same machine: the ratio of
//! each round is taken within it, and many rounds fit in minutes (`--rounds 60 --duration 1s`).
//! Under the table, each median comes with a 95% confidence interval: with that many rounds,
//! the ranges of single rounds say little.
//! `regiment-bench/scripts/instructions.sh` counts the same servers' instructions.
//! `--other-hello PATH` adds a fourth server, another build of `hello` (criteria off), to the
//! same rounds: two commits compared side by side, each against plain in every round.

use std::fmt::Write as _;

use super::server::{self, Criteria, HelloSetup, Server};
use super::throughput::{self, Runs};
use super::{Settings, median, median_interval};

/// Runs the section.
pub fn run(settings: &Settings) -> Result<(String, serde_json::Value), String> {
    let placement = settings
        .placements()
        .pop()
        .ok_or("no placement to measure")?;
    let hello = |criteria| {
        Server::Hello(HelloSetup {
            criteria,
            ..HelloSetup::steady(1)
        })
    };
    let mut servers = vec![Server::Plain, hello(Criteria::Off), hello(Criteria::On)];
    if let Some(binary) = &settings.other_hello {
        servers.push(Server::Hello(HelloSetup {
            criteria: Criteria::Off,
            binary: Some(binary.clone()),
            ..HelloSetup::steady(1)
        }));
    }
    let running = servers
        .iter()
        .map(|s| server::start(&settings.bins, s, &placement.server))
        .collect::<Result<Vec<_>, _>>()?;
    // One unmeasured window each: every server has served before its first measured one.
    for r in &running {
        settings.run_load(&placement.generator, r.addr)?;
    }
    let mut runs = Runs::new(servers.len());
    for round in 0..settings.rounds {
        eprintln!(
            "regiment-bench: engine, {}, round {}/{}",
            placement.name,
            round + 1,
            settings.rounds
        );
        for k in 0..servers.len() {
            let i = (round + k) % servers.len();
            let (m, cpu) = throughput::measure(settings, &placement, &running[i])?;
            runs.push(i, m, cpu);
        }
    }
    for r in running {
        r.stop();
    }
    let heading = throughput::heading(
        settings,
        &placement,
        ", the servers up throughout and loaded in turn",
        &format!(
            "per window after {} s of warm-up",
            settings.warmup.as_secs_f64()
        ),
    );
    let compared = runs.compared(&servers, &heading);
    let (mut markdown, mut json) = (compared.markdown, compared.json);
    markdown.push_str(
        "\nMedians of the rounds' ratios to plain, each with a 95% confidence interval of the \
         median (order statistics):\n\n",
    );
    for (i, s) in servers.iter().enumerate().skip(1) {
        let ratios = runs.ratios(i);
        let _ = writeln!(
            markdown,
            "- {}: throughput {}, server CPU per request {}.",
            s.label(),
            with_interval(&ratios.throughput),
            with_interval(&ratios.cpu_per_request)
        );
        if let Some(entry) = json.get_mut(s.label()) {
            entry["median_interval"] = serde_json::json!({
                "throughput": median_interval(&ratios.throughput),
                "server_cpu_per_request": median_interval(&ratios.cpu_per_request),
            });
        }
    }
    Ok((markdown, json))
}

/// `0.97x [0.94-1.01]`: the median and its interval, or the median alone.
fn with_interval(ratios: &[f64]) -> String {
    let m = median(ratios);
    match median_interval(ratios) {
        Some((low, high)) => format!("{m:.3}x [{low:.3}-{high:.3}]"),
        None => format!("{m:.3}x"),
    }
}
