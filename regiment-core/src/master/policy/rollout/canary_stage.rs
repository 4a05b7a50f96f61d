//! The canary stage: a rollout first replaces a few workers, lets them serve beside the old
//! generation for a window, and goes on only if their failure ratio (5xx answers and requests
//! that got no answer at all: a panic, a service or body error) is no worse than the old
//! generation's by more than a margin (and they answered enough requests to tell). Otherwise it
//! is aborted, and the canary workers are replaced by the good generation, new before old.
//!
//! While the canary is unproven, no more of its generation serve than the canary count: every
//! spawn that is not one of the canary's own runs the good generation.

use std::collections::BTreeMap;
use std::time::Instant;

use super::super::Policy;
use super::super::ids::{Generation, WorkerId};
use super::super::slot::{Cause, Origin, Pending, Slot};
use super::super::worker::Worker;
use super::Stage;
use super::window::{CanaryConfig, Tally, Window};
use crate::events::{CanaryVerdict, Event};

impl Policy {
    /// After every input: the canary's workers serving start the window (topped up if one was
    /// lost); the window's end judges it.
    pub(in crate::master::policy) fn advance_canary(&mut self, now: Instant) {
        let Some(r) = &self.rollouts.under_way else {
            return;
        };
        let Some(c) = self.config.canary else { return };
        match &r.stage {
            Stage::Full => {}
            Stage::Canary => {
                let serving = self.serving_of(r.target);
                let coming = self
                    .slots
                    .iter()
                    .filter(|s| rollout_under_way(self, s))
                    .count();
                if serving >= c.workers && coming == 0 {
                    let window = Window::open(now + c.window, self.tallies_now());
                    if let Some(r) = &mut self.rollouts.under_way {
                        r.stage = Stage::Window(window);
                    }
                } else if serving + coming < c.workers {
                    self.queue_rollout(c.workers - serving - coming);
                }
            }
            Stage::Window(w) if w.until <= now => self.judge_canary(c, now),
            Stage::Window(_) => {}
        }
    }

    /// Slots whose current worker is of `generation` and ready.
    fn serving_of(&self, generation: Generation) -> usize {
        self.slots
            .iter()
            .filter_map(|s| s.current.and_then(|c| self.workers.get(&c)))
            .filter(|w| w.generation == generation && w.is_ready())
            .count()
    }

    /// A worker exits during the window: what it answered still counts for its generation.
    pub(in crate::master::policy) fn canary_worker_gone(&mut self, id: WorkerId, w: &Worker) {
        let good = self.rollouts.good;
        let Some((target, window)) = self.rollouts.window_mut() else {
            return;
        };
        let mut gone = std::mem::take(&mut window.gone);
        window.add_share(&mut gone, id, w, target, good);
        window.gone = gone;
    }

    /// Every worker's figures now, by worker.
    fn tallies_now(&self) -> BTreeMap<WorkerId, Tally> {
        self.workers
            .iter()
            .map(|(id, w)| (*id, Tally::of(w.load)))
            .collect()
    }

    /// The window is over: the rollout goes on, or is aborted with both figures.
    fn judge_canary(&mut self, c: CanaryConfig, now: Instant) {
        let good = self.rollouts.good;
        let Some((target, window)) = self.rollouts.window_mut() else {
            return;
        };
        // Those that left in the window, and every one still in the books, draining ones too
        // (a recycled canary drains while its successor serves): each counted once.
        let mut tallies = std::mem::take(&mut window.gone);
        for (id, w) in &self.workers {
            window.add_share(&mut tallies, *id, w, target, good);
        }
        let (canary, old) = tallies;
        let compared = format!("failed {canary}, generation {good} {old}");
        let figures = format!("the canary of generation {target} {compared}");
        let verdict = |passed| CanaryVerdict {
            canary: canary.0,
            good: old.0,
            passed,
        };
        if canary.requests() < c.min_requests {
            self.record_canary(verdict(false));
            // Not shown to be bad: replaced by the good generation, new before old.
            self.abort_rollout(
                format!(
                    "the canary of generation {target} received {} requests in {:?}, fewer \
                     than the {} required; it {compared}",
                    canary.requests(),
                    c.window,
                    c.min_requests
                ),
                now,
            );
        } else if canary.ratio() > old.ratio() + c.max_error_ratio {
            self.record_canary(verdict(false));
            let why = format!(
                "{figures}: more than {:.2} points worse",
                c.max_error_ratio * 100.0
            );
            // Told to drain before the abort is reported: whoever reads the report can count
            // on the canary taking no more connections once it read its drain message.
            self.withdraw_canary(target, &why, now);
            self.abort_rollout(why, now);
        } else {
            self.record_canary(verdict(true));
            self.emit(Event::CanaryPassed {
                generation: target.0,
                why: figures,
            });
            if let Some(r) = &mut self.rollouts.under_way {
                r.stage = Stage::Full;
            }
            self.queue_rollout(usize::MAX);
        }
    }

    /// The canary's workers failed requests: they are taken out of service at once, while a
    /// worker of another generation serves, and their slots are filled again by the good
    /// generation. New before old keeps the capacity a worker gives; a worker that fails its
    /// requests gives none, and every moment it stays fails more of them.
    fn withdraw_canary(&mut self, target: Generation, why: &str, now: Instant) {
        let others_serve = self
            .workers
            .values()
            .any(|w| w.is_ready() && w.generation != target);
        if !others_serve {
            return; // replaced new before old by `abort_rollout`
        }
        let why = format!("rollout aborted: {why}");
        for slot in 0..self.slots.len() {
            let s = &self.slots[slot];
            let Some(id) = s.current.filter(|c| {
                self.workers
                    .get(c)
                    .is_some_and(|w| w.generation == target && w.is_ready())
            }) else {
                continue;
            };
            let s = &mut self.slots[slot];
            s.current = None;
            s.restarts += 1;
            s.last_reason = Some(why.clone());
            if s.pending.take().is_some() {
                self.queue.retain(|q| *q != slot);
            }
            self.stats.count_replacement(&Pending {
                reason: why.clone(),
                cause: Cause::RolloutAborted,
            });
            self.drain(id, &why, now);
        }
    }
}

/// A worker of the rolling generation is queued or starting in this slot: a rollout
/// replacement pending, a successor of that generation, or (in a slot that was empty) the
/// slot's own worker of that generation not ready yet.
fn rollout_under_way(policy: &Policy, s: &Slot) -> bool {
    let Some(r) = &policy.rollouts.under_way else {
        return false;
    };
    let pending = s
        .pending
        .as_ref()
        .is_some_and(|p| p.origin() == Origin::Rollout);
    // By generation, not by who asked: a worker's own request may have taken over a rollout
    // replacement already starting, which still runs the canary's generation.
    let of_target = |id: Option<WorkerId>| {
        id.and_then(|id| policy.workers.get(&id))
            .is_some_and(|w| w.generation == r.target && !w.is_ready())
    };
    pending || of_target(s.successor) || of_target(s.current)
}
