//! Which replacements start when: the queue (one entry per slot) and the surge budget
//! (rule 3); empty slots refilled after their backoff (rule 5).

use std::time::Instant;

use super::Policy;
use super::memory::Room;
use super::rollout::{Stage, rollout_pending};
use super::slot::{Origin, Pending};

impl Policy {
    /// Queues a replacement of `slot`'s current worker, unless one is queued or starting. A
    /// request that finds a rollout's replacement under way makes it its own, so that it
    /// survives an abort of the rollout.
    pub(super) fn want_replacement(&mut self, slot: usize, pending: Pending) {
        if self.stopping.is_some() {
            return;
        }
        let Some(s) = self.slots.get_mut(slot) else {
            return;
        };
        let under_way = match s.successor {
            Some(id) => self
                .workers
                .get_mut(&id)
                .and_then(|w| w.spawned_for.as_mut()),
            None => s.pending.as_mut(),
        };
        if let Some(p) = under_way {
            if p.origin() == Origin::Rollout && pending.origin() == Origin::Request {
                *p = pending;
            } else {
                tracing::debug!(slot, reason = %pending.reason, "replacement already under way");
            }
            return;
        }
        if s.successor.is_some() {
            return; // a successor for an empty slot: it takes the slot when ready
        }
        s.pending = Some(pending);
        self.queue.push_back(slot);
    }

    /// Wants again what a failed replacement was spawned for (a rollout's, only while that
    /// rollout goes on).
    pub(super) fn restore_pending(&mut self, slot: usize, mut p: Pending) {
        if p.origin() == Origin::Rollout {
            // The rollout it was spawned for may have been superseded since: it now deploys
            // the newest one.
            match &self.rollouts.under_way {
                // During a canary, its count is kept by `advance_canary`, which queues what
                // is missing: a restored replacement would add one more.
                Some(r) if r.stage != Stage::Full => return,
                Some(r) => p = rollout_pending(r.target),
                None => return,
            }
        }
        if self.stopping.is_some() {
            return;
        }
        if let Some(s) = self.slots.get_mut(slot)
            && s.pending.is_none()
            && s.successor.is_none()
        {
            s.pending = Some(p);
            self.queue.push_back(slot);
        }
    }

    /// Starts what may start now: workers for empty slots, then queued replacements within the
    /// surge budget, each once its slot's worker is ready and its backoff has passed.
    pub(super) fn pump(&mut self, now: Instant) {
        if self.stopping.is_some() {
            return;
        }
        for slot in 0..self.slots.len() {
            let s = &mut self.slots[slot];
            if s.current.is_none() && s.successor.is_none() && s.may_spawn(now) {
                // A fresh worker is the replacement a queued request asked for.
                let pending = s.pending.take();
                if pending.is_some() {
                    self.queue.retain(|q| *q != slot);
                }
                self.spawn_current(slot, pending, now);
            }
        }
        let budget = self.config.surge(self.slots.len());
        let mut i = 0;
        while i < self.queue.len() {
            // A worker drained first makes way for a new one as a surge does.
            let starting = self
                .slots
                .iter()
                .filter(|s| s.successor.is_some() || s.vacating.is_some())
                .count();
            if starting >= budget {
                break;
            }
            let slot = self.queue[i];
            let Some(s) = self.slots.get(slot) else {
                self.queue.remove(i);
                continue;
            };
            let current_ready = s
                .current
                .and_then(|c| self.workers.get(&c))
                .is_some_and(|w| w.is_ready());
            if s.pending.is_none() || s.successor.is_some() {
                self.queue.remove(i);
            } else if current_ready && s.may_spawn(now) {
                match s.pending.as_ref().map_or(Room::Fits, |p| self.room_for(p)) {
                    Room::Fits => {
                        self.queue.remove(i);
                        self.spawn_successor(slot, now);
                    }
                    Room::Short {
                        headroom,
                        new_worker,
                    } => self.vacate(slot, headroom, new_worker, now),
                }
            } else {
                i += 1;
            }
        }
    }
}
