//! What /proc says about a process: memory, CPU time, state, descriptors, children. Read by
//! the benchmark matrix, and by the end-to-end tests (`tests::procfs`).
//!
//! ```
//! let me = std::process::id();
//! assert!(regiment_bench::procfs::rss_kb(me).is_some_and(|kb| kb > 0));
//! assert_eq!(regiment_bench::procfs::state(me), Some('R'));
//! ```

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::FileExt;

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

/// The memory `pids` hold in RAM together, in kB: their resident pages, each counted once however
/// many of them map it (the program's code and the C library are in memory once, not once per
/// process, as a sum of RSS counts them). Read from the page frame numbers of
/// /proc/PID/pagemap, which only a process with `CAP_SYS_ADMIN` is shown: `None` otherwise, or
/// when a process went away while it was read.
pub fn resident_once_kb(pids: &[u32]) -> Option<u64> {
    /// Bytes of pagemap read at once: the entries of 256 MiB of address space.
    const PAGEMAP_CHUNK: usize = 512 * 1024;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()? as u64;
    let mut frames = HashSet::new();
    let mut chunk = vec![0u8; PAGEMAP_CHUNK];
    for &pid in pids {
        let maps = fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
        let pagemap = fs::File::open(format!("/proc/{pid}/pagemap")).ok()?;
        // The vsyscall page lies outside the process's own address space; pagemap ends before.
        for line in maps.lines().filter(|l| !l.ends_with("[vsyscall]")) {
            let (start, end) = line.split_whitespace().next()?.split_once('-')?;
            let start = u64::from_str_radix(start, 16).ok()?;
            let end = u64::from_str_radix(end, 16).ok()?;
            // One 64-bit entry per page: bit 63 present, bits 0-54 the page frame number. Read
            // a bounded chunk at a time: a reservation of the address space can be gigabytes.
            let (mut at, to) = (start / page * 8, end / page * 8);
            while at < to {
                let entries = &mut chunk[..(to - at).min(PAGEMAP_CHUNK as u64) as usize];
                pagemap.read_exact_at(entries, at).ok()?;
                at += entries.len() as u64;
                for entry in entries.chunks_exact(8) {
                    let entry = u64::from_le_bytes(entry.try_into().ok()?);
                    if entry >> 63 == 1 {
                        let frame = entry & ((1 << 55) - 1);
                        if frame == 0 {
                            // Frame numbers hidden: not allowed to see them.
                            return None;
                        }
                        frames.insert(frame);
                    }
                }
            }
        }
    }
    Some(frames.len() as u64 * page / 1024)
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
    // utime and stime are fields 14 and 15 of stat: indexes 11 and 12 of what follows the
    // name (the state is index 0).
    ticks_seconds(&f, 11)
}

/// The sum of the two clock-tick fields of `stat` at `at` and `at + 1`, in seconds.
fn ticks_seconds(fields: &[String], at: usize) -> Option<f64> {
    let ticks: u64 =
        fields.get(at)?.parse::<u64>().ok()? + fields.get(at + 1)?.parse::<u64>().ok()?;
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

/// CPU seconds (user + system) of `pid`'s children that it has waited for, all of them since it
/// started.
fn reaped_children_cpu_seconds(pid: u32) -> Option<f64> {
    let f = stat_fields(pid)?;
    // cutime and cstime are fields 16 and 17 of stat: indexes 13 and 14 after the name.
    ticks_seconds(&f, 13)
}

/// CPU seconds of `pid` and its children together (user + system), the children it has already
/// waited for included (regiment's replaced workers).
pub fn tree_cpu_seconds(pid: u32) -> f64 {
    // A child waited for while its own time is read would be counted twice (alive, then in
    // the parent's count): read again when the parent's count moved meanwhile.
    let alive = || -> f64 {
        std::iter::once(pid)
            .chain(children(pid))
            .filter_map(cpu_seconds)
            .sum()
    };
    let mut reaped = reaped_children_cpu_seconds(pid).unwrap_or(0.0);
    for _ in 0..10 {
        let now_alive = alive();
        let after = reaped_children_cpu_seconds(pid).unwrap_or(0.0);
        if after == reaped {
            return now_alive + reaped;
        }
        reaped = after;
    }
    alive() + reaped
}

/// Memory of a process and its children together.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Footprint {
    /// The first process alone (regiment's master), resident kB.
    pub master_rss_kb: u64,
    /// Sum of resident kB over the process and its children (shared pages counted in each).
    pub total_rss_kb: u64,
    /// Sum of proportional set sizes, kB (pages shared with other processes divided among them).
    pub total_pss_kb: u64,
    /// Their resident pages, each counted once, kB: what they hold in RAM together (see
    /// [`resident_once_kb`]; `None` without `CAP_SYS_ADMIN`).
    pub resident_once_kb: Option<u64>,
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
        resident_once_kb: resident_once_kb(&all),
        processes: all.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_shared_by_processes_are_counted_once() {
        // Two processes of the same program, at rest: their code and C library are the same
        // pages.
        let spawn = || {
            std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .expect("sleep")
        };
        let (mut a, mut b) = (spawn(), spawn());
        let (pa, pb) = (a.id(), b.id());
        // Wait until both sleep: exec'd, their program and C library loaded, at rest.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while [pa, pb].iter().any(|&p| {
            fs::read_link(format!("/proc/{p}/exe")).map_or(true, |e| !e.ends_with("sleep"))
                || state(p) != Some('S')
        }) {
            assert!(std::time::Instant::now() < deadline, "sleep did not start");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let one = resident_once_kb(&[pa]);
        let both = resident_once_kb(&[pa, pb]);
        let twice = resident_once_kb(&[pa, pa]);
        let rss = (rss_kb(pa), rss_kb(pb));
        for c in [&mut a, &mut b] {
            c.kill().ok();
            c.wait().ok();
        }
        let (Some(one), Some(both), Some(twice)) = (one, both, twice) else {
            eprintln!("page frame numbers hidden (no CAP_SYS_ADMIN): nothing to compare");
            return;
        };
        let (Some(rss_a), Some(rss_b)) = rss else {
            panic!("the sleeps' RSS")
        };
        assert_eq!(twice, one, "the same process counted twice");
        assert!(
            one.abs_diff(rss_a) * 10 <= rss_a,
            "one process: {one} kB, its RSS {rss_a} kB"
        );
        assert!(
            both < rss_a + rss_b,
            "two: {both} kB once, {} kB summed",
            rss_a + rss_b
        );
    }
}
