//! How a rollout reaches the slots: what generation each spawn runs, which slots it queues, how
//! its workers' starts and crashes count, and when it may complete.

use std::time::Instant;

use super::super::Policy;
use super::super::ids::Generation;
use super::super::slot::{Origin, Pending, Slot};
use super::{Stage, Taking, rollout_pending};

impl Policy {
    /// The stage a rollout starts in: a canary if one is configured and smaller than the
    /// cluster (a canary of every worker is the whole rollout).
    pub(super) fn first_stage(&self) -> Stage {
        match self.config.canary {
            Some(c) if c.workers < self.slots.len() => Stage::Canary,
            _ => Stage::Full,
        }
    }

    /// How many slots a rollout in `stage` replaces: the canary's, or all.
    pub(super) fn rollout_width(&self, stage: &Stage) -> usize {
        match (stage, self.config.canary) {
            (Stage::Canary | Stage::Window(_), Some(c)) => c.workers,
            _ => usize::MAX,
        }
    }

    /// The generation a spawn for `pending`, replacing a worker of `replaced`, gets: a
    /// rollout's own replacements run the rolling generation; so does the replacement a canary
    /// worker asked for (recycled after its 10 000th request, it is still the canary: replaced
    /// by the good generation, it would leave the window without a canary); anything else does
    /// too once the rollout is past its canary, else the good one.
    pub(in crate::master::policy) fn generation_for(
        &self,
        pending: Option<&Pending>,
        replaced: Option<Generation>,
    ) -> Generation {
        let Some(r) = &self.rollouts.under_way else {
            return self.rollouts.good;
        };
        let rollout_own = pending.is_some_and(|p| p.origin() == Origin::Rollout);
        let recycled_canary = replaced == Some(r.target) && pending.is_some();
        if r.stage == Stage::Full || rollout_own || recycled_canary {
            r.target
        } else {
            self.rollouts.good
        }
    }

    /// Queues rollout replacements for up to `n` slots still on an older generation: first those
    /// whose worker serves, then those that are empty or whose worker is not ready (a crash
    /// loop the rollout may fix: its next spawn there runs the rolling generation).
    pub(in crate::master::policy) fn queue_rollout(&mut self, mut n: usize) {
        let Some(target) = self.rollouts.under_way.as_ref().map(|r| r.target) else {
            return;
        };
        for serving_first in [true, false] {
            for slot in 0..self.slots.len() {
                if n == 0 {
                    return;
                }
                let s = &self.slots[slot];
                let current = s.current.and_then(|c| self.workers.get(&c));
                let wanted = match current {
                    Some(w) => w.generation < target && w.is_ready() == serving_first,
                    None => !serving_first,
                };
                if wanted && s.pending.is_none() && s.successor.is_none() {
                    self.want_replacement(slot, rollout_pending(target));
                    n -= 1;
                }
            }
        }
    }

    /// A worker of `generation` took `slot`, whose last worker to do so ran `before`: one of
    /// the new generation resets the failure count, and, the first time the rollout reaches the
    /// slot, counts as one of its replacements and starts the settle time over. So does one that
    /// fills the slot again after its worker of the new generation crashed: the build is
    /// watched for the settle time again. One that replaces a worker of the new generation
    /// (recycled after its 10 000th request) is that worker's own business. One of an older
    /// generation (it was starting when the rollout began) is replaced in turn.
    pub(in crate::master::policy) fn ready_in_rollout(
        &mut self,
        slot: usize,
        before: Option<Generation>,
        generation: Generation,
        taking: Taking,
        now: Instant,
    ) {
        let Some(r) = &mut self.rollouts.under_way else {
            return;
        };
        if generation >= r.target {
            r.failures = 0;
            if before.is_none_or(|g| g < r.target) {
                r.last_reached = Some(now);
                if let Some(log) = &mut self.rollouts.last {
                    log.replaced += 1;
                }
            } else if taking == Taking::EmptySlot {
                r.last_reached = Some(now);
            }
        } else if r.stage == Stage::Full {
            let target = r.target;
            self.want_replacement(slot, rollout_pending(target));
        }
    }

    /// A worker of `generation` failed to start: enough in a row abort the rollout.
    pub(in crate::master::policy) fn count_failed_start(
        &mut self,
        generation: Generation,
        now: Instant,
    ) {
        self.count_setback(generation, Setback::FailedStart, now);
    }

    /// A new-generation worker that crashes soon after it was ready is a failed deploy, just as
    /// one that never gets ready: enough of them abort the rollout, so that the old workers not
    /// yet replaced stay.
    pub(in crate::master::policy) fn count_early_crash(
        &mut self,
        generation: Generation,
        now: Instant,
    ) {
        self.count_setback(generation, Setback::EarlyCrash, now);
    }

    /// Counts a setback of a worker of `generation` against the rollout under way (not against
    /// an older generation's); at `rollout_failures` of one kind the rollout is aborted.
    fn count_setback(&mut self, generation: Generation, setback: Setback, now: Instant) {
        let limit = self.config.rollout_failures;
        let Some(r) = &mut self.rollouts.under_way else {
            return;
        };
        if generation < r.target {
            return;
        }
        let target = r.target;
        let count = match setback {
            Setback::FailedStart => &mut r.failures,
            Setback::EarlyCrash => &mut r.early_crashes,
        };
        *count += 1;
        let n = *count;
        if n >= limit {
            let why = match setback {
                Setback::FailedStart => {
                    format!("{n} consecutive workers of generation {target} failed to start")
                }
                Setback::EarlyCrash => {
                    format!("{n} workers of generation {target} crashed soon after they were ready")
                }
            };
            self.abort_rollout(why, now);
        }
    }

    /// When the rollout under way may complete: once every slot has run a worker of its
    /// generation to ready and is served by one now (not empty after a crash), the settle time
    /// after the last of them did (a build that crashes soon after it is ready is caught before
    /// it becomes the good one). `None` until every slot is there.
    pub(in crate::master::policy) fn settled_at(&self) -> Option<Instant> {
        // A canary is judged first, whatever the slots run.
        let r = (self.rollouts.under_way.as_ref()).filter(|r| r.stage == Stage::Full)?;
        // A slot whose worker of the target was drained first to be replaced (the memory
        // budget had no room for both) is being replaced, as one whose successor starts beside
        // it: a recycle, which does not hold the rollout back.
        let served = |s: &Slot| {
            let current = s.current.and_then(|c| self.workers.get(&c));
            let refilling = match current {
                None => s.vacating.is_some(),
                Some(w) => {
                    !w.is_ready()
                        && w.spawned_for
                            .as_ref()
                            .is_some_and(|p| p.origin() == Origin::Request)
                }
            };
            current.is_some_and(|w| w.is_ready() && w.generation >= r.target)
                || (refilling && s.reached.is_some_and(|g| g >= r.target))
        };
        if self.slots_reached(r.target) < self.slots.len() || !self.slots.iter().all(served) {
            return None;
        }
        r.last_reached
            .unwrap_or(r.started)
            .checked_add(self.config.rollout_settle)
    }

    /// When the rollout under way is aborted if it has not ended.
    pub(in crate::master::policy) fn rollout_deadline(&self) -> Option<Instant> {
        self.rollouts.under_way.as_ref().and_then(|r| r.deadline)
    }

    /// Slots whose last worker to become ready runs `target` (or a newer generation).
    pub(super) fn slots_reached(&self, target: Generation) -> usize {
        self.slots
            .iter()
            .filter(|s| s.reached.is_some_and(|g| g >= target))
            .count()
    }
}

/// What counts against a rollout, each kind on its own count.
#[derive(Debug, Clone, Copy)]
enum Setback {
    /// A worker of its generation failed to start.
    FailedStart,
    /// A worker of its generation crashed soon after it was ready.
    EarlyCrash,
}
