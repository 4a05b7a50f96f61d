//! Reaping the processes re-parented to the master, when it is PID 1 (a container without an
//! init) or a child subreaper: an orphan anywhere below it becomes its child, and would stay a
//! zombie forever, holding a pid, if nobody waited for it.
//!
//! Which zombies are the master's to reap. Its workers never: tokio owns their `Child` and the
//! driver reaps them with `try_wait`, so a blanket `waitpid(-1)` would steal a worker's exit
//! status (the driver would see `ECHILD` and never learn how it ended). Nor, as far as can be
//! told, a process the master's own code started (a `Command` run from another task): its owner
//! waits for it within moments of its exit. There is no record of who forked a process, so a
//! zombie that is not a worker is reaped once it has stayed a zombie for [`ORPHAN_GRACE`]: an
//! orphan has nobody else to wait for it; a child whose owner did not collect it in that time
//! (a `Child` held and never waited for) loses its exit status (its owner gets `ECHILD`).
//!
//! No race with the driver: this runs on the driver's task, right after it reaped its workers,
//! and workers are spawned on that same task, so the set of worker pids it is given is exact
//! while it runs. A zombie is recognised by its pid and start time, so a pid reused between two
//! scans is seen as the new process it is.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;

/// How long a zombie that is not a worker stays before it is reaped: far longer than the owner
/// of a child the master started (tokio, on SIGCHLD or its pidfd; std, blocked in `wait`) takes
/// to collect it, and short enough that orphans do not pile up.
pub(crate) const ORPHAN_GRACE: Duration = Duration::from_secs(1);

/// Whether the master reaps orphans: only as PID 1 or a child subreaper, the processes the
/// kernel re-parents orphans to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Reaper,
    NotReaper,
}

/// The zombie children seen and not reaped yet.
pub(crate) struct Reaper {
    role: Role,
    /// First sighting of each zombie, by pid and start time.
    seen: HashMap<(u32, u64), Instant>,
}

impl Reaper {
    /// Active when this process is PID 1 or a child subreaper (read once, at start: the
    /// attribute is set before the master runs, by whoever starts it or by `main`).
    pub(crate) fn detect() -> Self {
        let pid1 = std::process::id() == 1;
        let subreaper = nix::sys::prctl::get_child_subreaper().unwrap_or(false);
        if pid1 || subreaper {
            let role = if pid1 { "PID 1" } else { "a child subreaper" };
            tracing::info!(target: "regiment", "the master is {role}: it reaps the processes re-parented to it");
        }
        Self::new(if pid1 || subreaper {
            Role::Reaper
        } else {
            Role::NotReaper
        })
    }

    fn new(role: Role) -> Self {
        Self {
            role,
            seen: HashMap::new(),
        }
    }

    /// When the zombies seen so far are due (the driver wakes up then, or earlier).
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.seen.values().min().map(|first| *first + ORPHAN_GRACE)
    }

    /// Reaps every zombie child that `is_worker` does not claim and that was first seen at least
    /// [`ORPHAN_GRACE`] before `now`; remembers the others.
    pub(crate) fn reap(&mut self, now: Instant, is_worker: impl Fn(u32) -> bool) {
        if self.role == Role::NotReaper {
            return;
        }
        // One syscall in the common case: no zombie child at all, nothing to scan.
        let peeked = match waitid(
            Id::All,
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
        ) {
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => {
                self.seen.clear();
                return;
            }
            Ok(status) => status.pid().map(|p| p.as_raw() as u32),
            // A status nix cannot describe (a realtime signal): there is a zombie all the same.
            Err(_) => None,
        };
        let mut zombies = zombie_children(std::process::id());
        // Without a readable /proc, the one zombie the kernel named is still reaped.
        if let Some(pid) = peeked.filter(|p| !zombies.iter().any(|(z, _)| z == p)) {
            zombies.push((pid, 0));
        }
        let mut seen = HashMap::with_capacity(zombies.len());
        for key in zombies {
            let (pid, _) = key;
            if is_worker(pid) {
                continue;
            }
            let first = self.seen.get(&key).copied().unwrap_or(now);
            if now.saturating_duration_since(first) < ORPHAN_GRACE {
                seen.insert(key, first);
                continue;
            }
            match waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG)) {
                Ok(status) => {
                    tracing::debug!(target: "regiment", pid, ?status, "re-parented process reaped")
                }
                // Its owner collected it meanwhile: not ours after all.
                Err(e) => {
                    tracing::debug!(target: "regiment", pid, error = %e, "zombie gone before reaped")
                }
            }
        }
        self.seen = seen;
    }
}

/// The zombie children of `parent`, by pid and start time, from /proc (empty without /proc).
/// `/proc/PID/task/TID/children` would be quicker, but not every kernel has it.
fn zombie_children(parent: u32) -> Vec<(u32, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (state, ppid, start) = parse_stat(&stat)?;
            (state == 'Z' && ppid == parent).then_some((pid, start))
        })
        .collect()
}

/// State, parent pid and start time from `/proc/PID/stat`. The command name in parentheses may
/// hold spaces and parentheses itself: the fields start after the last `)`.
fn parse_stat(stat: &str) -> Option<(char, u32, u64)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (field 3), ppid (4), ... starttime (22).
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, ppid, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_last_parenthesis() {
        let stat = "4242 (a (b) c) Z 17 4242 4242 0 -1 4227076 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        assert_eq!(parse_stat(stat), Some(('Z', 17, 987654)));
        assert_eq!(parse_stat("4242 (short) S 1"), None);
    }

    /// A zombie child is reaped after the grace, not before; one claimed as a worker never.
    #[test]
    fn a_zombie_that_is_no_worker_is_reaped_after_the_grace() {
        let spawn_zombie = || {
            let child = std::process::Command::new("true").spawn().unwrap();
            let pid = child.id();
            // Dropped without a wait, as an orphan nobody waits for.
            drop(child);
            let deadline = Instant::now() + Duration::from_secs(60);
            while !zombie_children(std::process::id())
                .iter()
                .any(|(z, _)| *z == pid)
            {
                assert!(Instant::now() < deadline, "{pid} never became a zombie");
                std::thread::sleep(Duration::from_millis(5));
            }
            pid
        };
        let (orphan, worker) = (spawn_zombie(), spawn_zombie());
        let is_zombie = |pid| {
            zombie_children(std::process::id())
                .iter()
                .any(|(z, _)| *z == pid)
        };
        // Other tests of this process have children too: they count as workers here.
        let is_worker = |pid| pid != orphan;
        let mut reaper = Reaper::new(Role::Reaper);
        let now = Instant::now();
        reaper.reap(now, is_worker);
        assert!(is_zombie(orphan), "reaped before the grace");
        assert_eq!(reaper.next_due(), Some(now + ORPHAN_GRACE));
        reaper.reap(now + ORPHAN_GRACE, is_worker);
        assert!(!is_zombie(orphan), "not reaped after the grace");
        assert!(is_zombie(worker), "a worker's zombie was reaped");
        assert_eq!(reaper.next_due(), None);
        // An inactive reaper (neither PID 1 nor a subreaper) leaves every zombie alone.
        let mut inactive = Reaper::new(Role::NotReaper);
        inactive.reap(now, |_| false);
        inactive.reap(now + ORPHAN_GRACE, |_| false);
        assert!(is_zombie(worker));
        waitpid(Pid::from_raw(worker as i32), None).unwrap();
    }
}
