//! Which replacements start when: the deduplicated queue, the surge budget (rule 3), and rolling
//! restarts with their completion and abort.

use super::*;

impl Master {
    /// Queues a replacement of `slot`'s current worker, unless one is queued or starting.
    pub(super) fn want_replacement(&mut self, slot: usize, reason: String, rollout: bool) {
        if self.stopping.is_some() {
            return;
        }
        let Some(s) = self.slots.get_mut(slot) else {
            return;
        };
        if s.successor.is_some() || s.pending.is_some() {
            tracing::debug!(slot, %reason, "replacement already under way");
            return;
        }
        s.pending = Some(Pending { reason, rollout });
        self.queue.push_back(slot);
    }

    pub(super) fn restore_pending(&mut self, slot: usize, p: Pending) {
        if p.rollout && self.rollout.is_none() {
            return;
        }
        if let Some(s) = self.slots.get_mut(slot)
            && s.pending.is_none()
        {
            s.pending = Some(p);
            self.queue.push_back(slot);
        }
    }

    /// Starts what may start now: workers for empty slots, then queued replacements within the
    /// surge budget.
    pub(super) fn pump(&mut self, now: Instant) {
        if self.stopping.is_some() {
            return;
        }
        for slot in 0..self.slots.len() {
            let s = &mut self.slots[slot];
            if s.current.is_none() && s.successor.is_none() && s.may_spawn(now) {
                // A fresh worker is the replacement a queued request asked for.
                if s.pending.take().is_some() {
                    self.queue.retain(|q| *q != slot);
                }
                self.spawn_into(slot, false, now);
            }
        }
        let budget = self.config.surge(self.slots.len());
        let mut i = 0;
        while i < self.queue.len() {
            let starting = self.slots.iter().filter(|s| s.successor.is_some()).count();
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
                .is_some_and(|w| w.state == WorkerState::Ready);
            if s.pending.is_none() || s.successor.is_some() {
                self.queue.remove(i);
            } else if current_ready && s.may_spawn(now) {
                self.queue.remove(i);
                self.spawn_into(slot, true, now);
            } else {
                i += 1;
            }
        }
        self.check_rollout_done();
    }

    pub(super) fn check_rollout_done(&mut self) {
        let Some(r) = self.rollout else { return };
        let done = self.slots.iter().all(|s| {
            s.pending.is_none()
                && s.successor.is_none()
                && s.current
                    .and_then(|c| self.workers.get(&c))
                    .is_some_and(|w| w.state == WorkerState::Ready && w.generation >= r.target)
        });
        if done {
            self.rollout = None;
            self.emit(Event::RolloutDone {
                generation: r.target,
            });
        }
    }

    /// Ends a rollout that failed: queued rollout replacements are dropped and replacements
    /// of the rollout still starting are drained, so the old workers of every slot not yet
    /// replaced stay. (A replacement wanted for another reason goes on.)
    pub(super) fn abort_rollout(&mut self, generation: u64, why: String) {
        self.rollout = None;
        self.emit(Event::RolloutAborted {
            generation,
            why: why.clone(),
        });
        let now = Instant::now();
        let mut starting = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.pending.as_ref().is_some_and(|p| p.rollout) {
                s.pending = None;
                self.queue.retain(|q| *q != i);
            }
            if let Some(id) = s.successor
                && self
                    .workers
                    .get(&id)
                    .and_then(|w| w.spawned_for.as_ref())
                    .is_some_and(|p| p.rollout)
            {
                s.successor = None;
                starting.push(id);
            }
        }
        for id in starting {
            self.drain(id, format!("rollout aborted: {why}"), now);
        }
    }

    pub(super) fn rolling_restart(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        self.generation += 1;
        let target = self.generation;
        if let Some(previous) = self.rollout {
            // Nobody waits forever for a rollout that will not finish: it ends, superseded.
            // Its workers are not wasted: those starting become ready and are replaced in
            // turn, those ready serve until their replacement is.
            self.emit(Event::RolloutAborted {
                generation: previous.target,
                why: format!("superseded by the rolling restart to generation {target}"),
            });
        }
        self.rollout = Some(Rollout {
            target,
            failures: 0,
            early_crashes: 0,
        });
        self.emit(Event::RolloutStarted { generation: target });
        for slot in 0..self.slots.len() {
            let old = self.slots[slot]
                .current
                .and_then(|c| self.workers.get(&c))
                .is_some_and(|w| w.generation < target);
            if old {
                self.want_replacement(
                    slot,
                    format!("rolling restart to generation {target}"),
                    true,
                );
            }
        }
    }
}
