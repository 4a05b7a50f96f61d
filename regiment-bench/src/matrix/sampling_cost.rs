//! What one reading of another process's memory costs the reader, by method: `statm` (RSS,
//! what the heartbeats and `MemoryFootprint` read today) against `smaps_rollup` (PSS and USS,
//! what the memory budget needs), on processes of different sizes. The kernel builds
//! `smaps_rollup` by walking the page tables of every mapping, in the reader's system call:
//! its cost grows with the target's resident memory and lands on the reader's CPU.
//!
//! The methods take turns on each target in every round; each is timed for a short window of
//! repeated readings, by the reading thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, which counts
//! the kernel's walk) and by the wall clock.

use std::fs::File;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};
use regiment_core::plumbing::MemorySampler;

/// How a reading is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Method {
    /// `/proc/PID/statm` kept open, one `pread` and its resident field parsed: regiment-core's
    /// `Statm`, on another pid.
    StatmKeptOpen,
    /// `/proc/PID/statm` opened, read and closed each time.
    StatmOpenEachTime,
    /// regiment-core's `MemorySampler::read`: `smaps_rollup` opened, one `pread` into its
    /// buffer, parsed, closed.
    RollupSampler,
    /// `smaps_rollup` kept open, one `pread`, not parsed: the kernel's part alone.
    RollupKeptOpen,
}

impl Method {
    /// All of them, the baseline first.
    pub const ALL: [Method; 4] = [
        Method::StatmKeptOpen,
        Method::StatmOpenEachTime,
        Method::RollupSampler,
        Method::RollupKeptOpen,
    ];

    fn label(self) -> &'static str {
        match self {
            Method::StatmKeptOpen => "`statm`, kept open, `pread` (RSS)",
            Method::StatmOpenEachTime => "`statm`, open + read + close",
            Method::RollupSampler => {
                "`smaps_rollup` by `MemorySampler` (open + `pread` + parse + close)"
            }
            Method::RollupKeptOpen => "`smaps_rollup`, kept open, `pread` only",
        }
    }
}

/// The files and buffers the methods read one process with.
struct Reader {
    pid: u32,
    statm: File,
    rollup: File,
    sampler: MemorySampler,
    buf: Box<[u8; 4096]>,
}

impl Reader {
    fn open(pid: u32) -> Result<Self, String> {
        let open = |name: &str| {
            File::open(format!("/proc/{pid}/{name}"))
                .map_err(|e| format!("cannot open /proc/{pid}/{name}: {e}"))
        };
        Ok(Reader {
            pid,
            statm: open("statm")?,
            rollup: open("smaps_rollup")?,
            sampler: MemorySampler::new(),
            buf: Box::new([0; 4096]),
        })
    }

    /// One reading; a figure of it, so that nothing is optimised away.
    fn read(&mut self, method: Method) -> Result<u64, String> {
        let fail = |e: std::io::Error| format!("reading process {}: {e}", self.pid);
        match method {
            Method::StatmKeptOpen => {
                let n = self.statm.read_at(&mut self.buf[..], 0).map_err(fail)?;
                Ok(resident_pages(&self.buf[..n]))
            }
            Method::StatmOpenEachTime => {
                let n = File::open(format!("/proc/{}/statm", self.pid))
                    .and_then(|f| f.read_at(&mut self.buf[..], 0))
                    .map_err(fail)?;
                Ok(resident_pages(&self.buf[..n]))
            }
            Method::RollupSampler => self
                .sampler
                .read(self.pid)
                .map(|m| m.pss)
                .map_err(|e| e.to_string()),
            Method::RollupKeptOpen => {
                let n = self.rollup.read_at(&mut self.buf[..], 0).map_err(fail)?;
                Ok(n as u64)
            }
        }
    }
}

/// The second field of `statm`.
fn resident_pages(statm: &[u8]) -> u64 {
    statm
        .split(|b| *b == b' ')
        .nth(1)
        .and_then(|f| std::str::from_utf8(f).ok()?.trim().parse().ok())
        .unwrap_or(0)
}

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// One method timed on one target in one round, per reading.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Timing {
    /// Readings made.
    pub readings: u64,
    /// Wall time per reading, µs.
    pub wall_us: f64,
    /// The reading thread's CPU time per reading, µs.
    pub cpu_us: f64,
}

/// Readings of one window: as many as fit in `window`, between 3 and 20,000.
fn time(reader: &mut Reader, method: Method, window: Duration) -> Result<Timing, String> {
    const MIN: u64 = 3;
    const MAX: u64 = 20_000;
    // One reading first, unmeasured: the files' and the caches' first touch.
    black_box(reader.read(method)?);
    let (wall, cpu) = (Instant::now(), thread_cpu());
    let mut readings = 0;
    while readings < MAX && (readings < MIN || wall.elapsed() < window) {
        black_box(reader.read(method)?);
        readings += 1;
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / readings as f64;
    Ok(Timing {
        readings,
        wall_us: per(wall.elapsed()),
        cpu_us: per(thread_cpu() - cpu),
    })
}

/// A process to read.
#[derive(Debug, Clone)]
pub struct Target {
    /// What it is, for the table.
    pub label: String,
    /// Its pid.
    pub pid: u32,
}

/// Every method on every target, `rounds` times in turn: `timings[target][method][round]`.
pub fn measure(
    targets: &[Target],
    rounds: usize,
    window: Duration,
) -> Result<Vec<Vec<Vec<Timing>>>, String> {
    let mut readers = targets
        .iter()
        .map(|t| Reader::open(t.pid))
        .collect::<Result<Vec<_>, _>>()?;
    let mut timings = vec![vec![Vec::new(); Method::ALL.len()]; targets.len()];
    for round in 0..rounds {
        eprintln!(
            "regiment-bench: sampling cost, round {}/{rounds}",
            round + 1
        );
        for (t, reader) in readers.iter_mut().enumerate() {
            for (m, method) in Method::ALL.into_iter().enumerate() {
                timings[t][m].push(time(reader, method, window)?);
            }
        }
    }
    Ok(timings)
}

/// The sampling periods whose CPU share the table gives.
pub const PERIODS: [(Duration, &str); 3] = [
    (Duration::from_secs(1), "1 s"),
    (Duration::from_millis(500), "500 ms"),
    (Duration::from_millis(100), "100 ms"),
];

/// The table of [`measure`]'s timings: per target and method, the medians over rounds (with
/// their range), the ratio to `statm` kept open taken within each round, and the share of one
/// CPU that reading one process every period takes.
pub fn table(targets: &[Target], timings: &[Vec<Vec<Timing>>]) -> String {
    let mut rows = Vec::new();
    for (t, target) in targets.iter().enumerate() {
        let baseline = &timings[t][0];
        for (m, method) in Method::ALL.into_iter().enumerate() {
            let runs = &timings[t][m];
            let cpu: Vec<f64> = runs.iter().map(|r| r.cpu_us).collect();
            let wall: Vec<f64> = runs.iter().map(|r| r.wall_us).collect();
            let ratio: Vec<f64> = runs
                .iter()
                .zip(baseline)
                .filter(|(_, b)| b.cpu_us > 0.0)
                .map(|(r, b)| r.cpu_us / b.cpu_us)
                .collect();
            let cpu_median = super::median(&cpu);
            let mut row = vec![
                target.label.clone(),
                method.label().to_string(),
                us_cell(&wall),
                us_cell(&cpu),
                super::ratio_cell(&ratio),
            ];
            for (period, _) in PERIODS {
                row.push(share(cpu_median, period));
            }
            rows.push(row);
        }
    }
    let mut header = vec![
        "process read",
        "method",
        "wall µs / reading",
        "CPU µs / reading",
        "CPU vs statm kept open",
    ];
    let shares: Vec<String> = PERIODS
        .iter()
        .map(|(_, name)| format!("CPU share, every {name}"))
        .collect();
    header.extend(shares.iter().map(String::as_str));
    super::table(&header, &rows)
}

/// `median [min-max]` in µs.
fn us_cell(v: &[f64]) -> String {
    match super::spread(v) {
        Some((median, min, max)) => format!("{median:.1} [{min:.1}-{max:.1}]"),
        None => "-".into(),
    }
}

/// The share of one CPU that `cpu_us` every `period` takes.
pub fn share(cpu_us: f64, period: Duration) -> String {
    let percent = cpu_us / (period.as_secs_f64() * 1e6) * 100.0;
    if percent < 0.001 {
        format!("{percent:.5}%")
    } else {
        format!("{percent:.3}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_reads_this_process() {
        let mut reader = Reader::open(std::process::id()).unwrap();
        for method in Method::ALL {
            let t = time(&mut reader, method, Duration::ZERO).unwrap();
            assert_eq!(t.readings, 3, "{method:?}");
            assert!(t.cpu_us > 0.0 && t.wall_us > 0.0, "{method:?}: {t:?}");
        }
        assert!(reader.read(Method::StatmKeptOpen).unwrap() > 0);
        assert!(reader.read(Method::RollupSampler).unwrap() > 0);
    }

    #[test]
    fn a_share_is_the_cpu_time_over_the_period() {
        assert_eq!(share(100.0, Duration::from_secs(1)), "0.010%");
        assert_eq!(share(5000.0, Duration::from_millis(100)), "5.000%");
        assert_eq!(share(2.0, Duration::from_secs(1)), "0.00020%");
    }
}
