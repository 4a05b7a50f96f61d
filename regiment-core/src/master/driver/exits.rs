//! The driver's reaping: a worker's exit is booked once its last words are read.
//!
//! A worker's last messages (the heartbeat that counts the requests of an abandoned drain as
//! failed, `drain-abandoned` itself) and its exit reach the master by two ways, its IPC
//! channel and SIGCHLD, that race in the supervisor loop. Its end of the channel closes as it
//! exits, before the kernel signals its parent, so the channel's EOF comes after every frame it
//! wrote: the exit of a worker reaped before its channel reached EOF waits for it, so that the
//! policy reads what the worker said before it books the exit. A descendant that kept the
//! channel open (it inherited it before the worker marked it close-on-exec) holds the booking
//! back by [`EOF_GRACE`] at most.
//!
//! A worker that died of a SIGKILL the master did not send is asked about as it is reaped:
//! whether the OOM killer killed it (see `oom_kills`).

use std::time::{Duration, Instant};

use super::super::policy::{Input, Termination, WorkerId};
use super::{Driver, Reaped};

/// How long a reaped worker's exit waits for the EOF of its channel.
const EOF_GRACE: Duration = Duration::from_secs(1);

impl Driver {
    /// Reaps every worker that exited, and the orphans when the master is their reaper.
    pub(super) fn reap(&mut self) {
        let mut exited = Vec::new();
        for (id, p) in &mut self.processes {
            match p.child.try_wait() {
                Ok(Some(status)) => exited.push((*id, status)),
                Ok(None) => {}
                Err(e) => tracing::warn!(pid = p.pid, error = %e, "waitpid failed"),
            }
        }
        let now = Instant::now();
        for (id, status) in exited {
            let Some(p) = self.processes.remove(&id) else {
                continue;
            };
            let status = match self.policy.sigkill_sent(id) {
                Some(_) => Termination::of(status),
                // Read now, as soon as it is reaped (the count has this kill already).
                None => self.oom_kills.name(Termination::of(status)),
            };
            if p.channel_closed {
                self.book_exit(id, status);
            } else {
                let book_by = now + EOF_GRACE;
                self.reaped.insert(id, Reaped { status, book_by });
            }
        }
        // After the workers: their zombies are theirs to reap, never the orphans' reaper's.
        let processes = &self.processes;
        self.orphans
            .reap(now, |pid| processes.values().any(|p| p.pid == pid));
    }

    /// The worker's channel reached EOF: every message it wrote was handed to the policy.
    pub(super) fn channel_closed(&mut self, id: WorkerId) {
        // A report being taken waits for no answer from it any more.
        self.kill_reporter.channel_closed(id);
        if let Some(p) = self.processes.get_mut(&id) {
            tracing::debug!(pid = p.pid, "worker closed its IPC channel");
            p.channel_closed = true;
        } else if let Some(reaped) = self.reaped.remove(&id) {
            self.book_exit(id, reaped.status);
        }
    }

    /// Books the exits that waited for their channel's EOF long enough.
    pub(super) fn book_overdue_exits(&mut self, now: Instant) {
        let overdue: Vec<WorkerId> = self
            .reaped
            .iter()
            .filter(|(_, r)| r.book_by <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in overdue {
            if let Some(reaped) = self.reaped.remove(&id) {
                tracing::debug!(%id, "worker's IPC channel still open after its exit");
                self.book_exit(id, reaped.status);
            }
        }
    }

    /// When the next exit waiting for EOF is booked anyway.
    pub(super) fn next_exit_due(&self) -> Option<Instant> {
        self.reaped.values().map(|r| r.book_by).min()
    }

    fn book_exit(&mut self, id: WorkerId, status: Termination) {
        self.policy
            .handle(self.clock.now(), Input::Exited { id, status });
    }
}
