//! Rule 2: a new worker starts beside the old one only when the budget has room for it;
//! otherwise the old one is drained first, and its slot refilled once it has exited.

use std::time::Instant;

use super::super::Policy;
use super::super::ids::WorkerId;
use super::super::slot::{Cause, Pending, Vacating};
use super::megabytes;

/// Whether the budget holds one more worker now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Room {
    /// No budget, nothing read yet, or the headroom holds a new worker.
    Fits,
    /// The headroom (budget less the sum the next reading heads for) is smaller than a new
    /// worker.
    Short { headroom: u64, new_worker: u64 },
}

impl Policy {
    /// Whether a replacement for `pending` may start its new worker beside the old one. A
    /// rollout's always may (and so may the good generation's after an aborted one): a
    /// deploy's new workers start first, and the budget replaces the largest worker afterwards
    /// if the sum exceeds it.
    pub(in crate::master::policy) fn room_for(&self, pending: &Pending) -> Room {
        match pending.cause {
            Cause::Rollout | Cause::RolloutAborted => Room::Fits,
            Cause::Worker(_) | Cause::Unresponsive | Cause::Operator | Cause::MemoryBudget => {
                self.room_for_new_worker()
            }
        }
    }

    fn room_for_new_worker(&self) -> Room {
        let Some(budget) = self.config.memory_budget else {
            return Room::Fits;
        };
        let headroom = budget.saturating_sub(self.headed_for());
        let Some(new_worker) = self.new_worker_size() else {
            return Room::Fits; // no worker read yet: the sum is the master's, or nothing
        };
        if headroom >= new_worker {
            Room::Fits
        } else {
            Room::Short {
                headroom,
                new_worker,
            }
        }
    }

    /// The size new workers reach: the largest of the recent ones at their first reading once
    /// ready; before any, the smallest worker of the last reading (the least grown). `None`
    /// before any worker was read.
    fn new_worker_size(&self) -> Option<u64> {
        let largest_recent = self.memory.recent_new.iter().max().copied();
        largest_recent.or(self.memory.smallest)
    }

    /// Drains `slot`'s worker before its replacement starts, for the replacement pending
    /// there, the budget's `headroom` holding no `new_worker`: the worker leaves the slot now,
    /// and the slot is refilled once it has exited.
    pub(in crate::master::policy) fn vacate(
        &mut self,
        slot: usize,
        headroom: u64,
        new_worker: u64,
        now: Instant,
    ) {
        let s = &mut self.slots[slot];
        let (Some(old), Some(pending)) = (s.current, s.pending.take()) else {
            return;
        };
        self.queue.retain(|q| *q != slot);
        s.current = None;
        let why = format!(
            "{}; drained before its replacement starts: the memory budget's headroom, {}, holds \
             no new worker of {}",
            pending.reason,
            megabytes(headroom),
            megabytes(new_worker)
        );
        s.vacating = Some(Vacating { old, pending });
        self.drain(old, &why, now);
    }

    /// `id` exited: if it was drained first, the replacement it made way for is counted, and
    /// its slot may be refilled.
    pub(in crate::master::policy) fn vacated(&mut self, id: WorkerId) {
        let Some(s) = self
            .slots
            .iter_mut()
            .find(|s| s.vacating.as_ref().is_some_and(|v| v.old == id))
        else {
            return;
        };
        let Some(Vacating { pending, .. }) = s.vacating.take() else {
            return;
        };
        s.restarts += 1;
        s.last_reason = Some(pending.reason.clone());
        // A request that came meanwhile stands; else the refill is this replacement.
        s.pending.get_or_insert_with(|| pending.clone());
        self.stats.count_replacement(&pending);
    }
}
