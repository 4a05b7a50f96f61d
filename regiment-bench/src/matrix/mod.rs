//! The benchmark matrix of BENCHMARKS.md, run on the machine at hand by `regiment-bench`.
//!
//! Every comparison is measured side by side in one run: the configurations of a table take
//! turns, round after round, so that a change in the machine's load touches all of them
//! alike, and each ratio is taken within a round before the median over rounds.
//!
//! Sections, each a function of its own module:
//! - [`throughput`]: plain `axum::serve` against `hello` with 1, 2 and as many workers as
//!   the server's cores, criteria off and on, and the worker runtimes; pinned (the generator
//!   on one core, the server on the rest) and unpinned;
//! - [`engine`]: the throughput section's three rows of one worker (plain, criteria off and
//!   on), pinned, the servers up throughout and loaded in turn for short windows, for many
//!   rounds;
//! - [`recycling`]: a replacement every second against none, and how long a replacement
//!   takes;
//! - [`restarts`]: a rolling restart every 2 s against none, keep-alive and not;
//! - [`resources`]: memory and CPU of the master and its workers;
//! - [`scale`]: 32 and 64 workers, and 1,000 replacements in a row under load;
//! - [`sampling`]: RSS, PSS and USS of a regiment, summed, and what one reading of
//!   `smaps_rollup` costs against `statm` (issue 24's memory budget).

pub mod ballast;
pub mod cores;
pub mod engine;
pub mod generator;
pub mod recycling;
pub mod replacement_cost;
pub mod resources;
pub mod restarts;
pub mod sampling;
pub mod sampling_cost;
pub mod scale;
pub mod server;
pub mod throughput;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use cores::Cores;
use server::Binaries;

use crate::load::Measured;

/// What the whole run is given.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the measured binaries are.
    pub bins: Binaries,
    /// Rounds of each side-by-side comparison.
    pub rounds: usize,
    /// Measured time of each load run.
    pub duration: Duration,
    /// Unmeasured time before it.
    pub warmup: Duration,
    /// Connections of the generator.
    pub connections: usize,
    /// The CPUs this run may use.
    pub cpus: Vec<usize>,
    /// Whether `taskset` is there to pin.
    pub pinning: Pinning,
    /// Replacements in a row of the scale section.
    pub replacements: u64,
    /// Another build of `hello` for the engine section (`--other-hello`).
    pub other_hello: Option<std::path::PathBuf>,
}

/// Whether the pinned placement can be measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinning {
    /// `taskset` runs, and there are at least two CPUs.
    Available,
    /// No `taskset`, or a single CPU.
    Unavailable,
}

/// Where the generator and the server run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// `unpinned` or `pinned`.
    pub name: &'static str,
    /// The generator's CPUs.
    pub generator: Cores,
    /// The server's CPUs (its workers inherit them).
    pub server: Cores,
}

impl Settings {
    /// The placements to measure: unpinned, then (if possible) the generator on the first
    /// CPU and the server on the others.
    pub fn placements(&self) -> Vec<Placement> {
        let mut v = vec![Placement {
            name: "unpinned",
            generator: Cores::All,
            server: Cores::All,
        }];
        if self.pinning == Pinning::Available && self.cpus.len() >= 2 {
            v.push(Placement {
                name: "pinned",
                generator: Cores::Only(vec![self.cpus[0]]),
                server: Cores::Only(self.cpus[1..].to_vec()),
            });
        }
        v
    }

    /// The standard load of the matrix: keep-alive connections.
    pub fn load(&self) -> generator::Load {
        generator::Load {
            connections: self.connections,
            protocol: crate::load::Protocol::KeepAlive,
            warmup: self.warmup,
            duration: self.duration,
        }
    }

    /// Runs the standard load ([`Settings::load`]) from a generator on `cores` against `addr`.
    pub fn run_load(&self, cores: &Cores, addr: SocketAddr) -> Result<Measured, String> {
        generator::run(&self.bins, cores, addr, &self.load())
    }
}

/// The median of `v` (0 when empty).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The median, the least and the greatest of `v` (`None` when empty).
pub fn spread(v: &[f64]) -> Option<(f64, f64, f64)> {
    let min = v.iter().copied().reduce(f64::min)?;
    let max = v.iter().copied().reduce(f64::max)?;
    Some((median(v), min, max))
}

/// A 95% confidence interval of the median of `v`, from its order statistics (the ranks a
/// binomial of `v.len()` trials at one half puts 1.96 standard deviations either side of the
/// middle, rounded outwards and kept within the values; distribution-free): `None` under 6
/// values, whose extremes cover less than 95%.
pub fn median_interval(v: &[f64]) -> Option<(f64, f64)> {
    let n = v.len();
    if n < 6 {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let half_width = 1.96 * (n as f64).sqrt() / 2.0;
    // 1-based ranks, as the textbooks give them.
    let lower = ((n as f64 / 2.0 - half_width).floor() as usize).max(1);
    let upper = ((1.0 + n as f64 / 2.0 + half_width).ceil() as usize).min(n);
    Some((s[lower - 1], s[upper - 1]))
}

/// `median [min-max]` of ratios, two decimals.
pub fn ratio_cell(v: &[f64]) -> String {
    match spread(v) {
        Some((median, min, max)) => format!("{median:.2}x [{min:.2}-{max:.2}]"),
        None => "-".to_string(),
    }
}

/// A markdown table from a header and rows.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| {} |", header.join(" | "));
    let _ = writeln!(
        s,
        "|{}",
        header
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
            .collect::<String>()
    );
    for r in rows {
        let _ = writeln!(s, "| {} |", r.join(" | "));
    }
    s
}

/// The machine, for the report's head.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or("?".into(), |kb| format!("{:.1} GiB", kb as f64 / 1048576.0));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!(
        "{} CPUs usable ({cpu}), {mem} RAM, Linux {kernel}; load average at start {}",
        cores::allowed().len(),
        loadavg()
    )
}

/// The load average now, for the report.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::median_interval;

    #[test]
    fn the_median_interval_is_the_textbook_ranks() {
        let v: Vec<f64> = (1..=60).rev().map(f64::from).collect();
        // n = 60: ranks 22 and 39 (30 ∓ 7.6, rounded outwards).
        assert_eq!(median_interval(&v), Some((22.0, 39.0)));
        let v: Vec<f64> = (1..=6).map(f64::from).collect();
        assert_eq!(median_interval(&v), Some((1.0, 6.0)));
        assert_eq!(median_interval(&[1.0, 2.0, 3.0, 4.0, 5.0]), None);
    }
}
