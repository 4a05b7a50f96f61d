//! Readings of real processes: this one, a child, a zombie, and a pid with no process.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{MemorySampler, PrivateMemory, SampleError};

/// What holds for any reading: the four kinds of resident page add up to `Rss`, and the
/// private pages are within the proportional share, itself within the resident pages.
fn assert_consistent(m: &PrivateMemory) {
    assert!(m.rss > 0, "{m:?}");
    assert_eq!(m.rss, m.uss + m.shared, "{m:?}");
    assert!(m.uss <= m.pss && m.pss <= m.rss, "{m:?}");
}

/// The `VmRSS` of /proc/PID/status, in bytes: the kernel's resident counters, read apart
/// from the page-table walk of smaps_rollup.
fn status_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kb * 1024
}

/// Waits until `pid`'s state in /proc/PID/stat is `state`, or panics after a minute.
fn wait_for_state(pid: u32, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The state follows the parenthesised command name.
        let now = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
        if now == Some(state) {
            return;
        }
        assert!(Instant::now() < deadline, "{pid} never in state {state}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A child that sleeps until killed, killed and waited for when dropped.
struct Sleeper(Child);

impl Sleeper {
    fn start() -> Self {
        let child = Command::new("sleep")
            .arg("600")
            .stdin(Stdio::null())
            .spawn()
            .expect("sleep runs");
        Sleeper(child)
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn reads_this_process_and_sees_memory_it_touches() {
    let mut sampler = MemorySampler::new();
    let me = std::process::id();
    let before = sampler.read(me).unwrap();
    assert_consistent(&before);
    // 64 MiB of our own, touched: private to this process, so in USS, PSS and RSS alike.
    // Other tests of this binary run alongside and may free some of theirs meanwhile: half
    // of it must show.
    let ballast = std::hint::black_box(vec![1u8; 64 << 20]);
    let after = sampler.read(me).unwrap();
    assert_consistent(&after);
    for (name, was, is) in [
        ("rss", before.rss, after.rss),
        ("pss", before.pss, after.pss),
        ("uss", before.uss, after.uss),
    ] {
        assert!(is >= was + (32 << 20), "{name}: {was} then {is}");
    }
    drop(ballast);
}

#[test]
fn reads_a_child_and_agrees_with_its_resident_counters() {
    let sleeper = Sleeper::start();
    let pid = sleeper.0.id();
    // Until `sleep` runs, the child may still be the forked copy of this process.
    wait_for_state(pid, "S");
    let mut sampler = MemorySampler::new();
    let m = sampler.read(pid).unwrap();
    assert_consistent(&m);
    // The same process as /proc/PID/status describes (a sleeping one: its pages stay put),
    // not this much larger test process.
    let status = status_rss(pid);
    assert!(
        m.rss.abs_diff(status) <= 256 << 10,
        "{m:?} vs VmRSS {status}"
    );
    let me = sampler.read(std::process::id()).unwrap();
    assert!(m.rss < me.rss, "{m:?} vs this process's {me:?}");
    // The reader keeps no state but its buffer: read again, read the same.
    assert_eq!(sampler.read(pid).unwrap().rss, m.rss);
}

#[test]
fn a_zombie_and_a_reaped_child_read_as_exited() {
    let mut child = Command::new("true").spawn().expect("true runs");
    let pid = child.id();
    // Exited, not yet waited for: its pid and /proc entry stay, its memory is gone.
    wait_for_state(pid, "Z");
    let mut sampler = MemorySampler::new();
    let zombie = sampler.read(pid);
    assert!(
        matches!(zombie, Err(SampleError::Exited { pid: p }) if p == pid),
        "{zombie:?}"
    );
    child.wait().unwrap();
    let reaped = sampler.read(pid);
    assert!(
        matches!(reaped, Err(SampleError::Exited { pid: p }) if p == pid),
        "{reaped:?}"
    );
    // Above the largest pid_max Linux allows (2^22): never a process.
    let none = sampler.read(1 << 23);
    assert!(matches!(none, Err(SampleError::Exited { .. })), "{none:?}");
    assert_eq!(none.unwrap_err().to_string(), "process 8388608 has exited");
}

#[test]
fn a_process_that_exits_between_open_and_read_reads_as_exited() {
    let mut sleeper = Sleeper::start();
    let pid = sleeper.0.id();
    wait_for_state(pid, "S");
    let file = std::fs::File::open(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let mut sampler = MemorySampler::new();
    assert!(sampler.read_opened(pid, &file).is_ok());
    sleeper.0.kill().unwrap();
    sleeper.0.wait().unwrap();
    let gone = sampler.read_opened(pid, &file);
    assert!(
        matches!(gone, Err(SampleError::Exited { pid: p }) if p == pid),
        "{gone:?}"
    );
}
