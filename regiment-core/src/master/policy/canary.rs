//! Canary rollouts: a rollout first replaces a few workers, lets them serve beside the old
//! generation for a window, and goes on only if their failure ratio (5xx answers and requests
//! that got no answer at all: a panic, a service or body error) is no worse than the old
//! generation's by more than a margin (and they answered enough requests to tell). Otherwise it
//! is aborted, and the canary workers are replaced by the good generation, new before old.
//!
//! While the canary is unproven, no more of its generation serve than the canary count: every
//! spawn that is not one of the canary's own runs the good generation.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::ids::{Generation, WorkerId};
use super::slot::{Cause, Origin, Pending};
use super::worker::{Load, Worker};
use super::{Policy, rollout};
use crate::events::{Answers, CanaryVerdict, Event};

/// How a canary is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CanaryConfig {
    pub workers: usize,
    pub window: Duration,
    /// How far above the old generation's failure ratio the canary's may be (0.01: one point).
    pub max_error_ratio: f64,
    pub min_requests: u64,
}

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Stage {
    /// Replacing the canary's workers, and no other.
    Canary,
    /// The canary serves beside the old generation until `until`.
    Window { until: Instant },
    /// Every slot.
    Full,
}

/// What one generation answered over the window: requests, and those that failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Tally(Answers);

impl Tally {
    /// A worker's figures, from its heartbeat.
    fn of(load: Load) -> Self {
        Self(Answers {
            requests: load.requests,
            responses_5xx: load.responses_5xx,
            failures: load.failures,
        })
    }

    /// What was answered since `earlier`.
    fn since(self, Tally(earlier): Tally) -> Self {
        let Tally(now) = self;
        Self(Answers {
            requests: now.requests.saturating_sub(earlier.requests),
            responses_5xx: now.responses_5xx.saturating_sub(earlier.responses_5xx),
            failures: now.failures.saturating_sub(earlier.failures),
        })
    }

    /// Adds figures reported by a worker: untrusted, so saturating.
    fn add(&mut self, Tally(other): Tally) {
        let Tally(sum) = self;
        sum.requests = sum.requests.saturating_add(other.requests);
        sum.responses_5xx = sum.responses_5xx.saturating_add(other.responses_5xx);
        sum.failures = sum.failures.saturating_add(other.failures);
    }

    fn requests(self) -> u64 {
        self.0.requests
    }

    /// Requests answered 5xx or not at all, as a share of the requests.
    fn ratio(self) -> f64 {
        if self.0.requests == 0 {
            0.0
        } else {
            self.0.failed() as f64 / self.0.requests as f64
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2}% of {} requests ({} answered 5xx, {} got no answer)",
            self.ratio() * 100.0,
            self.0.requests,
            self.0.responses_5xx,
            self.0.failures
        )
    }
}

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
    pub(super) fn rollout_width(&self, stage: Stage) -> usize {
        match (stage, self.config.canary) {
            (Stage::Canary | Stage::Window { .. }, Some(c)) => c.workers,
            _ => usize::MAX,
        }
    }

    /// The generation a spawn for `pending`, replacing a worker of `replaced`, gets: a
    /// rollout's own replacements run the rolling generation; so does the replacement a canary
    /// worker asked for (recycled after its 10 000th request, it is still the canary: replaced
    /// by the good generation, it would leave the window without a canary); anything else does
    /// too once the rollout is past its canary, else the good one.
    pub(super) fn generation_for(
        &self,
        pending: Option<&Pending>,
        replaced: Option<Generation>,
    ) -> Generation {
        let Some(r) = self.rollout else {
            return self.good;
        };
        let rollout_own = pending.is_some_and(|p| p.origin() == Origin::Rollout);
        let recycled_canary = replaced == Some(r.target) && pending.is_some();
        if r.stage == Stage::Full || rollout_own || recycled_canary {
            r.target
        } else {
            self.good
        }
    }

    /// After every input: the canary's workers serving start the window (topped up if one was
    /// lost); the window's end judges it.
    pub(super) fn advance_canary(&mut self, now: Instant) {
        let Some(r) = self.rollout else { return };
        let Some(c) = self.config.canary else { return };
        match r.stage {
            Stage::Full => {}
            Stage::Canary => {
                let serving = self.serving_of(r.target);
                let coming = self
                    .slots
                    .iter()
                    .filter(|s| rollout_under_way(self, s))
                    .count();
                if serving >= c.workers && coming == 0 {
                    self.canary_baseline = self.tallies_now();
                    self.canary_gone = Default::default();
                    if let Some(r) = &mut self.rollout {
                        r.stage = Stage::Window {
                            until: now + c.window,
                        };
                    }
                } else if serving + coming < c.workers {
                    self.queue_rollout(c.workers - serving - coming);
                }
            }
            Stage::Window { until } if until <= now => self.judge_canary(c, now),
            Stage::Window { .. } => {}
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

    /// Queues rollout replacements for up to `n` slots still on an older generation: first those
    /// whose worker serves, then those that are empty or whose worker is not ready (a crash
    /// loop the rollout may fix: its next spawn there runs the rolling generation).
    pub(super) fn queue_rollout(&mut self, mut n: usize) {
        let Some(r) = self.rollout else { return };
        for serving_first in [true, false] {
            for slot in 0..self.slots.len() {
                if n == 0 {
                    return;
                }
                let s = &self.slots[slot];
                let current = s.current.and_then(|c| self.workers.get(&c));
                let wanted = match current {
                    Some(w) => w.generation < r.target && w.is_ready() == serving_first,
                    None => !serving_first,
                };
                if wanted && s.pending.is_none() && s.successor.is_none() {
                    self.want_replacement(slot, rollout::rollout_pending(r.target));
                    n -= 1;
                }
            }
        }
    }

    /// What a worker answered since the window opened: its figures less those it had then.
    fn window_share(&self, id: WorkerId, load: Load) -> Tally {
        let then = self.canary_baseline.get(&id).copied().unwrap_or_default();
        Tally::of(load).since(then)
    }

    /// A worker exits during the window: what it answered still counts for its generation.
    pub(super) fn canary_worker_gone(&mut self, id: WorkerId, w: &Worker) {
        let Some(r) = self.rollout else { return };
        if !matches!(r.stage, Stage::Window { .. }) {
            return;
        }
        let mut gone = std::mem::take(&mut self.canary_gone);
        self.add_share(&mut gone, id, w, r.target);
        self.canary_gone = gone;
    }

    /// Adds what `w` answered in the window to its generation's tally, the canary's or the good
    /// one's. A superseded build still serving is neither.
    fn add_share(
        &self,
        (canary, old): &mut (Tally, Tally),
        id: WorkerId,
        w: &Worker,
        target: Generation,
    ) {
        let tally = if w.generation == target {
            canary
        } else if w.generation == self.good {
            old
        } else {
            return;
        };
        tally.add(self.window_share(id, w.load));
    }

    /// Every worker's figures now, by worker: those draining too (the one the canary just
    /// replaced drains as the window opens), so that only what each answers in the window
    /// counts, whenever it leaves.
    fn tallies_now(&self) -> BTreeMap<WorkerId, Tally> {
        self.workers
            .iter()
            .map(|(id, w)| (*id, Tally::of(w.load)))
            .collect()
    }

    /// The window is over: the rollout goes on, or is aborted with both figures.
    fn judge_canary(&mut self, c: CanaryConfig, now: Instant) {
        let Some(r) = self.rollout else { return };
        // Those that left in the window, and every one still in the books, draining ones too
        // (a recycled canary drains while its successor serves): each counted once.
        let mut tallies = std::mem::take(&mut self.canary_gone);
        for (id, w) in &self.workers {
            self.add_share(&mut tallies, *id, w, r.target);
        }
        let (canary, old) = tallies;
        self.canary_baseline.clear();
        let target = r.target;
        let good = self.good;
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
            if let Some(r) = &mut self.rollout {
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
fn rollout_under_way(policy: &Policy, s: &super::slot::Slot) -> bool {
    let Some(r) = policy.rollout else {
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
