//! Reads what `/proc` tells of a process and its threads, for a kill report: each thread's
//! name and state (`task/TID/status`), wait channel (`task/TID/wchan`) and system call
//! (`task/TID/syscall`), and the process's resident memory (`status`).
//!
//! Blocking file reads: run off the async runtime. Each finding is handed to `sink` as soon
//! as it is read, so that a reader cut short by its time bound still leaves what it read.

use std::path::Path;

use crate::events::{KillReport, ThreadReport};

/// One finding of [`read_process`].
#[derive(Debug)]
pub(super) enum Finding {
    /// The process's resident memory in bytes (`VmRSS`), if it could be read.
    Rss(Option<u64>),
    /// Threads past [`KillReport::MAX_THREADS`], not read.
    LeftOut(usize),
    Thread(ThreadReport),
}

/// Reads the process whose `/proc` directory is `proc_dir`, handing each finding to `sink`
/// (which returns `false` when no one wants more). Threads that end while they are read are
/// left out; a process gone altogether yields no thread.
pub(super) fn read_process(proc_dir: &Path, sink: &mut dyn FnMut(Finding) -> bool) {
    let rss = std::fs::read_to_string(proc_dir.join("status"))
        .ok()
        .and_then(|s| field(&s, "VmRSS:").and_then(kilobytes));
    if !sink(Finding::Rss(rss)) {
        return;
    }
    let mut tids: Vec<u32> = match std::fs::read_dir(proc_dir.join("task")) {
        Ok(entries) => entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => return,
    };
    tids.sort_unstable();
    if tids.len() > KillReport::MAX_THREADS {
        let left_out = tids.len() - KillReport::MAX_THREADS;
        tids.truncate(KillReport::MAX_THREADS);
        if !sink(Finding::LeftOut(left_out)) {
            return;
        }
    }
    for tid in tids {
        if let Some(thread) = read_thread(&proc_dir.join("task").join(tid.to_string()), tid)
            && !sink(Finding::Thread(thread))
        {
            return;
        }
    }
}

/// One thread, from its `/proc/PID/task/TID` directory; `None` if it is gone.
fn read_thread(dir: &Path, tid: u32) -> Option<ThreadReport> {
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let name = field(&status, "Name:").unwrap_or_default();
    let state = field(&status, "State:").unwrap_or_default();
    // "0" (or nothing) when the thread is not waiting, or the kernel hides it.
    let wchan = std::fs::read_to_string(dir.join("wchan"))
        .ok()
        .map(|w| w.trim().to_owned())
        .filter(|w| !w.is_empty() && w != "0")
        .map(|w| bounded(&w));
    // Reading it needs the right to trace the worker (the master's own child: it has it); a
    // master without it reports no system call rather than no thread.
    let syscall = std::fs::read_to_string(dir.join("syscall"))
        .ok()
        .and_then(|s| syscall_name(&s));
    Some(ThreadReport {
        tid,
        name: bounded(name),
        state: bounded(state),
        wchan,
        syscall,
        stack: Vec::new(),
    })
}

/// What `/proc/PID/task/TID/syscall` says, as a report shows it: `running`; the name of the
/// call the thread is blocked in (its number, then its arguments, stack and instruction
/// pointers); `None` for `-1` (blocked, but in no system call) or anything unreadable.
fn syscall_name(text: &str) -> Option<String> {
    let first = text.split_whitespace().next()?;
    if first == "running" {
        return Some(first.to_owned());
    }
    let number: usize = first.parse().ok()?;
    Some(match syscalls::Sysno::new(number) {
        Some(call) => call.name().to_owned(),
        None => format!("syscall {number}"),
    })
}

/// The value of a `Key:\tvalue` line of a `status` file.
fn field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .map(str::trim)
}

/// `1234 kB` in bytes.
fn kilobytes(value: &str) -> Option<u64> {
    let kb: u64 = value.strip_suffix("kB")?.trim().parse().ok()?;
    kb.checked_mul(1024)
}

/// At most [`KillReport::MAX_TEXT`] bytes of `text`, cut at a character's boundary.
fn bounded(text: &str) -> String {
    let mut end = text.len().min(KillReport::MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    fn read_all(proc_dir: &Path) -> (Option<u64>, usize, Vec<ThreadReport>) {
        let (mut rss, mut left_out, mut threads) = (None, 0, Vec::new());
        read_process(proc_dir, &mut |finding| {
            match finding {
                Finding::Rss(r) => rss = r,
                Finding::LeftOut(n) => left_out = n,
                Finding::Thread(t) => threads.push(t),
            }
            true
        });
        (rss, left_out, threads)
    }

    fn this_process() -> PathBuf {
        PathBuf::from(format!("/proc/{}", std::process::id()))
    }

    #[test]
    fn a_thread_blocked_on_a_channel_shows_its_name_state_and_system_call() {
        // A thread of this test process, named, blocked in a receive (a futex wait) until the
        // test is done with it.
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel();
        let blocked = std::thread::Builder::new()
            .name("report-probe".into())
            .spawn(move || {
                started_tx
                    .send(nix::unistd::gettid().as_raw() as u32)
                    .unwrap();
                let _ = done_rx.recv();
            })
            .unwrap();
        let tid = started_rx.recv().unwrap();
        // Blocked once one reading shows it sleeping in its wait (its files are read one after
        // the other, and the send above comes just before the wait).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let probe = loop {
            let (rss, _, threads) = read_all(&this_process());
            assert!(rss.is_some_and(|r| r > 0), "RSS read: {rss:?}");
            let probe = threads.into_iter().find(|t| t.tid == tid).expect("listed");
            let waiting = probe.state.starts_with('S') && probe.syscall.as_deref() == Some("futex");
            if waiting || std::time::Instant::now() > deadline {
                break probe;
            }
            std::thread::yield_now();
        };
        done_tx.send(()).unwrap();
        blocked.join().unwrap();
        assert_eq!(probe.name, "report-probe");
        assert_eq!(probe.state, "S (sleeping)");
        assert_eq!(probe.syscall.as_deref(), Some("futex"), "{probe:?}");
    }

    #[test]
    fn a_child_asleep_shows_nanosleep_and_a_gone_process_shows_nothing() {
        let mut child = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .unwrap();
        let dir = PathBuf::from(format!("/proc/{}", child.id()));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let threads = loop {
            // A thread's files are read one after the other: its status can be read while it
            // still runs towards the call its syscall file then shows. Asleep once one reading
            // shows it in every file.
            let (_, _, threads) = read_all(&dir);
            let asleep = threads.iter().any(|t| {
                t.name == "sleep"
                    && matches!(t.syscall.as_deref(), Some("clock_nanosleep" | "nanosleep"))
                    && (t.wchan.is_some() || t.state.starts_with('S'))
            });
            if asleep || std::time::Instant::now() > deadline {
                break threads;
            }
            std::thread::yield_now();
        };
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(threads.len(), 1, "{threads:?}");
        assert_eq!(threads[0].tid, child.id());
        assert!(
            matches!(
                threads[0].syscall.as_deref(),
                Some("clock_nanosleep" | "nanosleep")
            ),
            "{threads:?}"
        );
        assert!(threads[0].wchan.is_some() || threads[0].state.starts_with('S'));
        assert_eq!(read_all(&dir), (None, 0, Vec::new()), "reaped: nothing");
    }

    #[test]
    fn a_reader_no_one_listens_to_stops_after_the_first_finding() {
        let mut findings = 0;
        read_process(&this_process(), &mut |_| {
            findings += 1;
            false
        });
        assert_eq!(findings, 1);
    }

    #[test]
    fn syscall_lines_read_as_names() {
        assert_eq!(syscall_name("running\n").as_deref(), Some("running"));
        assert_eq!(syscall_name("-1 0x7ffd 0x7f00\n"), None);
        let futex = syscalls::Sysno::futex.id();
        assert_eq!(
            syscall_name(&format!("{futex} 0x1 0x2 0x3 0x4 0x5 0x6 0x7ffd 0x7f00")).as_deref(),
            Some("futex")
        );
        assert_eq!(syscall_name("99999 0x0").as_deref(), Some("syscall 99999"));
        assert_eq!(syscall_name(""), None);
    }

    #[test]
    fn texts_are_cut_at_a_character_boundary() {
        let long = "é".repeat(KillReport::MAX_TEXT);
        let cut = bounded(&long);
        assert!(cut.len() <= KillReport::MAX_TEXT);
        assert_eq!(cut.len(), KillReport::MAX_TEXT);
        assert_eq!(bounded("short"), "short");
        assert_eq!(kilobytes("2048 kB"), Some(2048 * 1024));
    }
}
