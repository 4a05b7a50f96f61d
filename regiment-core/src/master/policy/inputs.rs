//! What workers say (untrusted: every message is checked against the books) and what
//! commands ask (rule 6).

use std::time::Instant;

use super::backoff::Backoff;
use super::ids::WorkerId;
use super::slot::{Cause, Origin, Pending, Slot, SlotRole};
use super::worker::{Heartbeats, KillReason, Load, Phase};
use super::{Control, Policy, Stopping};
use crate::events::Event;
use crate::protocol::bounded_reason;

/// Invalid messages reported per worker before the reports are thinned to one in a thousand.
const INVALID_REPORTED: u64 = 10;

impl Policy {
    pub(super) fn on_heartbeat(&mut self, id: WorkerId, load: Load, now: Instant) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        w.last_heard = now;
        w.load = load;
        if w.heartbeats == Heartbeats::NoneYet {
            w.heartbeats = Heartbeats::Seen;
        }
    }

    pub(super) fn on_replace_me(&mut self, id: WorkerId, reason: String, now: Instant) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        w.last_heard = now;
        if w.replace_reason.is_some() {
            return; // idempotent: one replacement per worker
        }
        let reason = bounded_reason(reason);
        w.replace_reason = Some(reason.clone());
        let (slot, pid, generation, phase) = (w.slot, w.pid, w.generation, w.phase);
        self.emit(Event::ReplaceRequested {
            slot,
            pid,
            generation: generation.0,
            reason: reason.clone(),
        });
        match (self.role_of(slot, id), phase) {
            (SlotRole::Current, Phase::Ready { .. }) => self.want_replacement(
                slot,
                Pending {
                    reason,
                    origin: Origin::Request,
                    cause: Cause::Worker,
                },
            ),
            // Acted on when it becomes ready.
            (_, Phase::Starting { .. }) => {}
            _ => tracing::debug!(
                slot,
                pid,
                "replacement request from a worker on its way out; ignored"
            ),
        }
    }

    pub(super) fn on_invalid_message(&mut self, id: WorkerId, why: String) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        // Not a sign of life: a worker whose runtime is blocked can still have garbage in flight.
        w.invalid_messages += 1;
        let n = w.invalid_messages;
        if n <= INVALID_REPORTED || n.is_multiple_of(1000) {
            let (slot, pid, generation) = (w.slot, w.pid, w.generation);
            let why = if n > 1 {
                format!("{why} (invalid message #{n})")
            } else {
                why
            };
            self.emit(Event::InvalidMessage {
                slot,
                pid,
                generation: generation.0,
                why,
            });
        }
    }

    pub(super) fn on_control(&mut self, c: Control, now: Instant) {
        match c {
            Control::RollingRestart => self.rolling_restart(now),
            Control::Stop => match self.stopping {
                None => self.stop_gracefully(now),
                Some(Stopping::Graceful) => self.stop_at_once(now),
                Some(Stopping::Forced | Stopping::Done) => {}
            },
            Control::ForcedStop => match self.stopping {
                None => {
                    self.enter_stop(now);
                    self.stop_at_once(now);
                }
                Some(Stopping::Graceful) => self.stop_at_once(now),
                Some(Stopping::Forced | Stopping::Done) => {}
            },
            Control::ScaleUp => self.scale_up(),
            Control::ScaleDown => self.scale_down(now),
            Control::Replace { slot, reason } => {
                if self.stopping.is_none()
                    && self.slots.get(slot).is_some_and(|s| s.current.is_some())
                {
                    self.want_replacement(
                        slot,
                        Pending {
                            reason: bounded_reason(reason),
                            origin: Origin::Request,
                            cause: Cause::Operator,
                        },
                    );
                }
            }
        }
    }

    fn scale_up(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        self.slots
            .push(Slot::new(Backoff::new(self.config.backoff)));
        self.emit(Event::Scaled {
            workers: self.slots.len(),
        });
    }

    /// Removes the last slot; its workers drain at once (there is no replacement to wait for).
    fn scale_down(&mut self, now: Instant) {
        if self.stopping.is_some() || self.slots.len() <= 1 {
            return;
        }
        let slot = self.slots.len() - 1;
        let s = self.slots.pop().expect("more than one slot");
        self.queue.retain(|q| *q != slot);
        self.emit(Event::Scaled {
            workers: self.slots.len(),
        });
        for id in [s.current, s.successor].into_iter().flatten() {
            self.drain(id, "scaled down", now);
        }
    }

    /// Drains every worker; nothing is spawned from now on.
    fn stop_gracefully(&mut self, now: Instant) {
        self.enter_stop(now);
        self.emit(Event::Stopping { forced: false });
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        for id in ids {
            self.drain(id, "stopping", now);
        }
    }

    /// Nothing is spawned from now on: the rollout ends, and no slot holds or wants a worker.
    fn enter_stop(&mut self, now: Instant) {
        self.stopping = Some(Stopping::Graceful);
        self.end_rollout_for_stop(now);
        self.queue.clear();
        for s in &mut self.slots {
            s.pending = None;
            s.current = None;
            s.successor = None;
        }
    }

    /// Kills every worker now.
    fn stop_at_once(&mut self, now: Instant) {
        self.stopping = Some(Stopping::Forced);
        self.emit(Event::Stopping { forced: true });
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        for id in ids {
            self.kill(id, KillReason::ForcedStop, now);
        }
    }
}
