//! Rolling restarts: a new generation replaces every slot's worker, new before old; it ends
//! done, or aborted when its workers keep failing (rule 2), when a newer one supersedes it, or
//! when the master stops.

use std::time::Instant;

use super::Policy;
use super::ids::Generation;
use super::slot::{Origin, Pending};
use crate::events::Event;

/// A rolling restart under way.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rollout {
    pub(super) target: Generation,
    /// Consecutive failed starts of target-generation workers.
    failures: u32,
    /// Target-generation workers that crashed soon after they were ready (within the backoff's
    /// healthy period). Not reset by a later ready: a binary that dies a second after it is
    /// ready would otherwise replace every old worker with a crash loop.
    early_crashes: u32,
}

impl Policy {
    pub(super) fn rolling_restart(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        self.generation = self.generation.next();
        let target = self.generation;
        if let Some(previous) = self.rollout {
            // Nobody waits forever for a rollout that will not finish: it ends, superseded.
            // Its workers are not wasted: those starting become ready and are replaced in
            // turn, those ready serve until their replacement is.
            self.emit(Event::RolloutAborted {
                generation: previous.target.0,
                why: format!("superseded by the rolling restart to generation {target}"),
            });
        }
        self.rollout = Some(Rollout {
            target,
            failures: 0,
            early_crashes: 0,
        });
        self.emit(Event::RolloutStarted {
            generation: target.0,
        });
        for slot in 0..self.slots.len() {
            let s = &mut self.slots[slot];
            let current = s.current.and_then(|c| self.workers.get(&c));
            if !current.is_some_and(|w| w.is_ready()) {
                // What is deployed may be the fix of a crash loop: a slot that is empty or whose
                // worker keeps failing to start tries it at once instead of after up to the
                // longest backoff. (A slot that serves keeps its backoff: the replacements of a
                // deploy that keeps failing never become a fork loop.)
                s.backoff.reset();
                s.retry_at = None;
            }
            if let Some(p) = s.pending.as_mut().filter(|p| p.origin == Origin::Rollout) {
                // Queued by the superseded rollout: it now deploys this one.
                *p = rollout_pending(target);
            } else if current.is_some_and(|w| w.generation < target) {
                self.want_replacement(slot, rollout_pending(target));
            }
        }
    }

    /// A worker became ready in `slot` during a rollout: one of the new generation resets the
    /// failure count; one of an older generation (it was starting when the rollout began) is
    /// replaced in turn.
    pub(super) fn ready_in_rollout(&mut self, slot: usize, generation: Generation) {
        let Some(r) = &mut self.rollout else { return };
        if generation >= r.target {
            r.failures = 0;
        } else {
            let target = r.target;
            self.want_replacement(slot, rollout_pending(target));
        }
    }

    /// A worker of `generation` failed to start: enough in a row abort the rollout.
    pub(super) fn count_failed_start(&mut self, generation: Generation, now: Instant) {
        let limit = self.config.rollout_failures;
        let Some(r) = &mut self.rollout else { return };
        if generation < r.target {
            return;
        }
        r.failures += 1;
        let (target, failures) = (r.target, r.failures);
        if failures >= limit {
            self.abort_rollout(
                format!("{failures} consecutive workers of generation {target} failed to start"),
                now,
            );
        }
    }

    /// A new-generation worker that crashes soon after it was ready is a failed deploy, just as
    /// one that never gets ready: enough of them abort the rollout, so that the old workers not
    /// yet replaced stay.
    pub(super) fn count_early_crash(&mut self, generation: Generation, now: Instant) {
        let limit = self.config.rollout_failures;
        let Some(r) = &mut self.rollout else { return };
        if generation < r.target {
            return;
        }
        r.early_crashes += 1;
        let (target, crashes) = (r.target, r.early_crashes);
        if crashes >= limit {
            self.abort_rollout(
                format!(
                    "{crashes} workers of generation {target} crashed soon after they were ready"
                ),
                now,
            );
        }
    }

    /// Done once every slot has a ready worker of the target generation and nothing pending.
    pub(super) fn check_rollout_done(&mut self) {
        let Some(r) = self.rollout else { return };
        let done = self.slots.iter().all(|s| {
            s.pending.is_none()
                && s.successor.is_none()
                && s.current
                    .and_then(|c| self.workers.get(&c))
                    .is_some_and(|w| w.is_ready() && w.generation >= r.target)
        });
        if done {
            self.rollout = None;
            self.emit(Event::RolloutDone {
                generation: r.target.0,
            });
        }
    }

    /// Ends a rollout that failed: queued rollout replacements are dropped and replacements of
    /// the rollout still starting are drained, so the old workers of every slot not yet
    /// replaced stay. (A replacement wanted for another reason goes on.)
    fn abort_rollout(&mut self, why: String, now: Instant) {
        let Some(r) = self.rollout.take() else { return };
        self.emit(Event::RolloutAborted {
            generation: r.target.0,
            why: why.clone(),
        });
        let mut starting = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.pending
                .as_ref()
                .is_some_and(|p| p.origin == Origin::Rollout)
            {
                s.pending = None;
                self.queue.retain(|q| *q != i);
            }
            if let Some(id) = s.successor
                && self
                    .workers
                    .get(&id)
                    .and_then(|w| w.spawned_for.as_ref())
                    .is_some_and(|p| p.origin == Origin::Rollout)
            {
                s.successor = None;
                starting.push(id);
            }
        }
        for id in starting {
            self.drain(id, &format!("rollout aborted: {why}"), now);
        }
    }

    /// The master stops: the rollout ends, aborted.
    pub(super) fn end_rollout_for_stop(&mut self) {
        if let Some(r) = self.rollout.take() {
            self.emit(Event::RolloutAborted {
                generation: r.target.0,
                why: "stopping".into(),
            });
        }
    }
}

pub(super) fn rollout_pending(target: Generation) -> Pending {
    Pending {
        reason: format!("rolling restart to generation {target}"),
        origin: Origin::Rollout,
    }
}
