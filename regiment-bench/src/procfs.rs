//! What /proc says about a process: memory, CPU time, state, descriptors, children. Read by
//! the benchmark matrix, and by the end-to-end tests (`tests::procfs`).
//!
//! ```
//! let me = std::process::id();
//! assert!(regiment_bench::procfs::rss_kb(me).is_some_and(|kb| kb > 0));
//! assert_eq!(regiment_bench::procfs::state(me), Some('R'));
//! ```

use std::fs;

/// A `kB` field of /proc/PID/status (`VmRSS`, `Threads` as a plain number).
fn status_field(pid: u32, field: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Resident memory, in kB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS")
}

/// Threads of the process.
pub fn threads(pid: u32) -> Option<u64> {
    status_field(pid, "Threads")
}

/// Proportional set size (shared pages divided among the processes sharing them), in kB.
pub fn pss_kb(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The fields of /proc/PID/stat after the command name.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// CPU time used (user + system), in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let f = stat_fields(pid)?;
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name and state.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    Some(ticks as f64 / hz)
}

/// The process state letter (`R`, `S`, `Z`, ...).
pub fn state(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// Open file descriptors.
pub fn fds(pid: u32) -> Option<usize> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Every process whose parent is `pid`, zombies included, in pid order. Found by the parent
/// field of each /proc/PID/stat, which every kernel has (/proc/PID/task/*/children needs
/// `CONFIG_PROC_CHILDREN`).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut kids: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| {
            // The parent pid is the field after the state.
            stat_fields(child).and_then(|f| f.get(1)?.parse::<u32>().ok()) == Some(pid)
        })
        .collect();
    kids.sort_unstable();
    kids
}

/// CPU seconds of `pid` and its children together (user + system).
pub fn tree_cpu_seconds(pid: u32) -> f64 {
    std::iter::once(pid)
        .chain(children(pid))
        .filter_map(cpu_seconds)
        .sum()
}

/// Memory of a process and its children together.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Footprint {
    /// The first process alone (regiment's master), resident kB.
    pub master_rss_kb: u64,
    /// Sum of resident kB over the process and its children (shared pages counted in each).
    pub total_rss_kb: u64,
    /// Sum of proportional set sizes, kB: what they take together.
    pub total_pss_kb: u64,
    /// Processes counted.
    pub processes: usize,
}

/// The footprint of `pid` and its children now.
pub fn footprint(pid: u32) -> Footprint {
    let mut all = vec![pid];
    all.extend(children(pid));
    Footprint {
        master_rss_kb: rss_kb(pid).unwrap_or(0),
        total_rss_kb: all.iter().filter_map(|&p| rss_kb(p)).sum(),
        total_pss_kb: all.iter().filter_map(|&p| pss_kb(p)).sum(),
        processes: all.len(),
    }
}
