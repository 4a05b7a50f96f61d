//! What workers say (untrusted: every message is checked against the books).

use std::time::Instant;

use super::Policy;
use super::ids::WorkerId;
use super::slot::{Cause, Pending, SlotRole};
use super::worker::{Heartbeats, Load, Phase};
use crate::events::{AbandonedDrain, Event};
use crate::protocol::{CriterionKind, bounded_reason};

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

    pub(super) fn on_replace_me(
        &mut self,
        id: WorkerId,
        criterion: CriterionKind,
        reason: String,
        now: Instant,
    ) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        w.last_heard = now;
        if w.replace_reason.is_some() {
            return; // idempotent: one replacement per worker
        }
        let reason = bounded_reason(reason);
        let criterion = criterion.bounded();
        w.replace_reason = Some(reason.clone());
        w.replace_criterion = criterion.clone();
        let (slot, pid, generation, phase) = (w.slot, w.pid, w.generation, w.phase);
        self.emit(Event::ReplaceRequested {
            slot,
            pid,
            generation: generation.0,
            reason: reason.clone(),
        });
        match (self.role_of(slot, id), phase) {
            (SlotRole::Current, Phase::Ready { .. }) => {
                self.back_off_if_unserved(id, false, now);
                self.want_replacement(
                    slot,
                    Pending {
                        reason,
                        cause: Cause::Worker(criterion),
                    },
                )
            }
            // Acted on when it becomes ready.
            (_, Phase::Starting { .. }) => {}
            _ => tracing::debug!(
                slot,
                pid,
                "replacement request from a worker on its way out; ignored"
            ),
        }
    }

    /// Kept (the first message only) for the worker's `exited` event: figures of the worker's
    /// own, bounded by their type, that decide nothing.
    pub(super) fn on_drain_abandoned(&mut self, id: WorkerId, left: AbandonedDrain, now: Instant) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        w.last_heard = now;
        w.abandoned_drain.get_or_insert(left);
    }

    pub(super) fn on_invalid_message(&mut self, id: WorkerId, why: String) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        // Not a sign of life: a worker whose runtime is blocked can still have garbage in flight.
        w.invalid_messages += 1;
        let n = w.invalid_messages;
        if super::thinning::reported(n) {
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
}
