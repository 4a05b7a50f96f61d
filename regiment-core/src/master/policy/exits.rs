//! A worker's exit, one function per case: a replacement that failed to start, a first worker
//! that failed to start, a crash (rule 5), and the expected exit of a worker on its way out.
//!
//! A worker killed by a signal the master did not send (its books say which kills it sent:
//! [`Phase::Killed`]) is said to be killed from outside, not to have crashed, unless the signal
//! is one a program raises on its own fault (see [`Termination::outside_signal`]). It is
//! respawned with the same backoff as a crash (a kill loop must not become a fork loop), and a
//! new generation's worker killed so soon after ready counts against its rollout as a crash
//! does, whoever killed it: an operator, or the OOM killer (the build's fault, plausibly).
//!
//! A kill the driver found to be the kernel's OOM killer's ([`Termination::OomKilled`]) is
//! named so wherever the exit is told: the crash's status and the slot's last restart reason,
//! a failed start's why, the exit of a worker on its way out; and it is counted.

use std::time::Instant;

use super::ids::{Generation, WorkerId};
use super::slot::{Pending, SlotRole};
use super::termination::Termination;
use super::worker::{KillReason, Phase, Worker};
use super::{Policy, millis};
use crate::events::Event;
use crate::readiness::Readiness;

impl Policy {
    pub(super) fn on_exit(&mut self, id: WorkerId, status: Termination, now: Instant) {
        let Some(w) = self.workers.remove(&id) else {
            return;
        };
        if status == Termination::OomKilled {
            self.stats.count_oom_kill();
        }
        self.canary_worker_gone(id, &w);
        let role = self.role_of(w.slot, id);
        self.leave_slot(w.slot, id);
        match (role, w.phase) {
            (SlotRole::Successor, _) => self.successor_exited(w, status, now),
            (
                SlotRole::Current,
                Phase::Spawning | Phase::Starting { .. } | Phase::Killed { .. },
            ) => self.starter_exited(w, status, now),
            (SlotRole::Current, Phase::Ready { .. } | Phase::Draining { .. }) => {
                self.crashed(w, status, now)
            }
            (SlotRole::Leaving, _) => {
                self.emit(Event::Exited {
                    slot: w.slot,
                    pid: w.pid,
                    generation: w.generation.0,
                    status: status.to_string(),
                    abandoned_drain: w.abandoned_drain,
                    oom_killed: status == Termination::OomKilled,
                });
                self.vacated(id);
            }
        }
    }

    /// Why the master sent SIGKILL to worker `id`, if it did (its books say so until its exit
    /// is reported): the driver does not ask the OOM kill count about such an exit.
    pub(crate) fn sigkill_sent(&self, id: WorkerId) -> Option<KillReason> {
        match self.workers.get(&id)?.phase {
            Phase::Killed { why, .. } => Some(why),
            Phase::Spawning
            | Phase::Starting { .. }
            | Phase::Ready { .. }
            | Phase::Draining { .. } => None,
        }
    }

    /// The slot and generation of worker `id`, while the books hold it: what the driver's
    /// report before a kill names.
    pub(crate) fn slot_and_generation(&self, id: WorkerId) -> Option<(usize, u64)> {
        let w = self.workers.get(&id)?;
        Some((w.slot, w.generation.0))
    }

    /// A replacement exited before it was ready: the worker it was to replace keeps serving,
    /// and the replacement is asked for again, after a backoff.
    fn successor_exited(&mut self, mut w: Worker, status: Termination, now: Instant) {
        self.successor_failed(w.slot, w.spawned_for.take());
        self.exited_before_ready(&w, status, now);
    }

    /// The first worker of an empty slot exited before it was ready: the slot is filled again
    /// after a backoff.
    fn starter_exited(&mut self, w: Worker, status: Termination, now: Instant) {
        self.exited_before_ready(&w, status, now);
    }

    /// A new worker exited before it was ready: its start failed, for the reason its exit
    /// tells.
    fn exited_before_ready(&mut self, w: &Worker, status: Termination, now: Instant) {
        let why = exit_before_ready(w, status, self.config.readiness);
        self.start_failure(w.slot, w.generation, w.pid, why, Some(status), now);
    }

    /// The slot's serving worker exited unasked: respawned after a backoff, unless a replacement
    /// already starting takes the slot when ready.
    fn crashed(&mut self, w: Worker, status: Termination, now: Instant) {
        let reset = self.slots[w.slot].backoff.config().reset_after;
        let healthy = w
            .ready_since()
            .is_some_and(|t| now.saturating_duration_since(t) >= reset);
        let stopping = self.stopping.is_some();
        let s = &mut self.slots[w.slot];
        if healthy {
            s.backoff.reset();
        }
        // Counted here, once: a successor that takes the emptied slot later counts nothing.
        s.restarts += 1;
        let killed_from_outside = status.outside_signal();
        let oom_killed = status == Termination::OomKilled;
        let status = match (status, &killed_from_outside) {
            (Termination::OomKilled, _) | (_, None) => status.to_string(),
            (_, Some(signal)) => format!("killed by {signal} from outside"),
        };
        s.last_reason = Some(match killed_from_outside {
            Some(_) => status.clone(),
            None => format!("crashed: {status}"),
        });
        let respawn_in_ms = if stopping || s.successor.is_some() {
            0
        } else {
            let delay = s.backoff.next_delay(now);
            s.retry_at = Some(now + delay);
            millis(delay)
        };
        self.stats.count_crash();
        self.emit(Event::Crashed {
            slot: w.slot,
            pid: w.pid,
            generation: w.generation.0,
            status,
            respawn_in_ms,
            killed_from_outside,
            oom_killed,
        });
        if !healthy {
            self.count_early_crash(w.generation, now);
        }
    }

    /// A replacement failed: what it was spawned for is wanted again.
    pub(super) fn successor_failed(&mut self, slot: usize, spawned_for: Option<Pending>) {
        if let Some(p) = spawned_for {
            self.restore_pending(slot, p);
        }
    }

    /// A worker of `slot` failed before it was ready (or could not be spawned): the slot backs
    /// off, and a rollout counts the failure.
    pub(super) fn start_failed(
        &mut self,
        slot: usize,
        generation: Generation,
        pid: u32,
        why: String,
        now: Instant,
    ) {
        self.start_failure(slot, generation, pid, why, None, now);
    }

    /// [`Policy::start_failed`], told by `exit` when the worker ran and exited.
    fn start_failure(
        &mut self,
        slot: usize,
        generation: Generation,
        pid: u32,
        why: String,
        exit: Option<Termination>,
        now: Instant,
    ) {
        let stopping = self.stopping.is_some();
        let retry_in_ms = match self.slots.get_mut(slot) {
            Some(s) if !stopping => {
                let delay = s.backoff.next_delay(now);
                s.retry_at = Some(now + delay);
                millis(delay)
            }
            _ => 0,
        };
        self.stats.count_start_failure();
        self.emit(Event::StartFailed {
            slot,
            pid,
            generation: generation.0,
            why,
            retry_in_ms,
            oom_killed: exit == Some(Termination::OomKilled),
        });
        self.count_failed_start(generation, now);
    }
}

/// `start timeout: signal 9 (SIGKILL)`, `exited before ready: exit 1`, `killed by SIGKILL from
/// outside before ready`, `killed by the OOM killer before ready`.
fn exit_before_ready(w: &Worker, status: Termination, readiness: Readiness) -> String {
    match (w.phase, status) {
        (Phase::Killed { why, .. }, _) => format!("{}: {status}", why.explained(readiness)),
        (_, Termination::OomKilled) => format!("{status} before ready"),
        (_, _) => match status.outside_signal() {
            Some(signal) => format!("killed by {signal} from outside before ready"),
            None => format!("exited before ready: {status}"),
        },
    }
}
