//! Which worker exits are the kernel's OOM killer's: a worker killed by a SIGKILL the master did
//! not send, while the OOM kills counted in the master's memory cgroup went past those already
//! accounted for, was killed by the OOM killer.
//!
//! The count ([`crate::container::oom_kills`]) is read once when the master starts (or takes
//! over after an upgrade): the kills before are not its workers'. After that it is read only on
//! such an exit, and each exit so named accounts for one kill: two workers killed in one OOM
//! episode are both named, in whichever order they are reaped.
//!
//! One reading is enough: the kernel counts the kill before it sends the SIGKILL
//! (`__oom_kill_process` in mm/oom_kill.c raises `MEMCG_OOM_KILL` first, "task reaper must see
//! this", since Linux 4.13), and the master reaps the worker only once it is dead, so the count
//! it then reads includes that kill.
//!
//! What it cannot tell: a kill of a process that is no worker (a worker's own child, another
//! process of the container) is accounted to no exit, and names the next SIGKILL from outside
//! an OOM kill; and a worker the OOM killer took as the master's own SIGKILL reached it is the
//! master's kill (its count then names nothing). On cgroup v1 the count is the master's cgroup
//! alone: a worker moved into a cgroup of its own is not counted.
//!
//! ```ignore
//! let mut oom = OomKills::of_this_cgroup();
//! // A worker reaped; the master did not kill it:
//! let status = oom.name(Termination::of(exit_status)); // `OomKilled`, or as it was
//! ```

use nix::sys::signal::Signal;

use super::super::policy::Termination;
use crate::container;

/// The OOM kills of the master's memory cgroup, and how many of them are accounted for.
pub(super) struct OomKills<R = fn() -> Option<u64>> {
    /// Reads the cgroup's count: [`container::oom_kills`], files under a test's root in tests.
    read: R,
    /// The kills counted before the master started, and one per exit named an OOM kill since;
    /// `None` while no count could be read.
    accounted: Option<u64>,
}

impl OomKills {
    /// The count of this process's memory cgroup, as it is now.
    pub(super) fn of_this_cgroup() -> Self {
        Self::reading(container::oom_kills)
    }
}

impl<R: Fn() -> Option<u64>> OomKills<R> {
    /// The count `read` reads, as it is now.
    fn reading(read: R) -> Self {
        let accounted = read();
        if accounted.is_none() {
            tracing::debug!(
                target: "regiment",
                "no OOM kill count in this memory cgroup: OOM kills read as kills from outside"
            );
        }
        Self { read, accounted }
    }

    /// How a worker the master sent no SIGKILL ended: `status`, or [`Termination::OomKilled`]
    /// if it died of SIGKILL while the count went past those accounted for.
    pub(super) fn name(&mut self, status: Termination) -> Termination {
        if status != Termination::Signal(Signal::SIGKILL as i32) {
            return status;
        }
        let now = (self.read)();
        match (self.accounted, now) {
            (Some(accounted), Some(now)) if now > accounted => {
                self.accounted = Some(accounted + 1);
                Termination::OomKilled
            }
            // A count lower than before (the master was moved into another cgroup) or one
            // readable only now: counted from here on.
            (Some(accounted), Some(now)) if now < accounted => {
                self.accounted = Some(now);
                status
            }
            (None, Some(now)) => {
                self.accounted = Some(now);
                status
            }
            _ => status,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::container::{SystemRoot, copy_of, oom_kills_under};

    /// A copy of a real cgroup v2 tree (`v2-limited`), its `memory.events` rewritten by each
    /// test as the kernel would count kills.
    struct Cgroup {
        dir: tempfile::TempDir,
    }

    impl Cgroup {
        fn new() -> Self {
            let c = Self {
                dir: copy_of("v2-limited"),
            };
            c.count(0);
            c
        }

        fn events(&self) -> PathBuf {
            self.dir.path().join("sys/fs/cgroup/memory.events")
        }

        /// The kernel counted `n` OOM kills in the cgroup.
        fn count(&self, n: u64) {
            let text = std::fs::read_to_string(self.events()).unwrap();
            let text: String = text
                .lines()
                .map(|l| match l.strip_prefix("oom_kill ") {
                    Some(_) => format!("oom_kill {n}\n"),
                    None => format!("{l}\n"),
                })
                .collect();
            assert!(text.contains(&format!("\noom_kill {n}\n")), "{text}");
            std::fs::write(self.events(), text).unwrap();
        }

        fn oom_kills(&self) -> OomKills<impl Fn() -> Option<u64>> {
            let root = SystemRoot::at(self.dir.path());
            OomKills::reading(move || oom_kills_under(&root))
        }
    }

    const SIGKILL: Termination = Termination::Signal(9);

    #[test]
    fn a_sigkill_is_an_oom_kill_when_the_count_went_past_those_accounted_for() {
        let cgroup = Cgroup::new();
        // Kills before the master started are not its workers'.
        cgroup.count(3);
        let mut oom = cgroup.oom_kills();
        assert_eq!(oom.name(SIGKILL), SIGKILL, "an operator's kill -9");

        cgroup.count(4);
        assert_eq!(oom.name(SIGKILL), Termination::OomKilled);
        // The same kill names one exit only.
        assert_eq!(oom.name(SIGKILL), SIGKILL);

        // Two workers killed in one episode, both counted before either is reaped.
        cgroup.count(6);
        assert_eq!(oom.name(SIGKILL), Termination::OomKilled);
        assert_eq!(oom.name(SIGKILL), Termination::OomKilled);
        assert_eq!(oom.name(SIGKILL), SIGKILL);
    }

    #[test]
    fn only_a_sigkill_is_asked_about_and_it_accounts_for_nothing_else() {
        let cgroup = Cgroup::new();
        let mut oom = cgroup.oom_kills();
        cgroup.count(1);
        for other in [
            Termination::Exit(1),
            Termination::Signal(Signal::SIGSEGV as i32),
            Termination::Signal(Signal::SIGTERM as i32),
        ] {
            assert_eq!(oom.name(other), other);
        }
        // The kill is still there for the SIGKILL that was its.
        assert_eq!(oom.name(SIGKILL), Termination::OomKilled);
    }

    #[test]
    fn without_a_count_nothing_is_an_oom_kill() {
        let cgroup = Cgroup::new();
        let hidden = cgroup.events().with_extension("hidden");
        std::fs::rename(cgroup.events(), &hidden).unwrap();
        let mut oom = cgroup.oom_kills();
        assert_eq!(oom.name(SIGKILL), SIGKILL);
        // Readable from now on (with kills in it already): counted from its first reading.
        std::fs::rename(&hidden, cgroup.events()).unwrap();
        cgroup.count(2);
        assert_eq!(oom.name(SIGKILL), SIGKILL);
        cgroup.count(3);
        assert_eq!(oom.name(SIGKILL), Termination::OomKilled);
    }

    #[test]
    fn a_count_lower_than_before_starts_again_from_there() {
        let cgroup = Cgroup::new();
        cgroup.count(5);
        let mut oom = cgroup.oom_kills();
        // Another cgroup's count, lower.
        cgroup.count(1);
        assert_eq!(oom.name(SIGKILL), SIGKILL);
        cgroup.count(2);
        assert_eq!(oom.name(SIGKILL), Termination::OomKilled);
    }
}
