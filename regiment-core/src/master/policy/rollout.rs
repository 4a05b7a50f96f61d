//! Rolling restarts: a new generation replaces every slot's worker, new before old; it ends
//! done, or aborted when its workers keep failing (rule 2), when its deadline passes, when a
//! newer one supersedes it, or when the master stops.
//!
//! A rollout is done once every slot has run a worker of its generation to ready, is served by
//! one, and the settle time has passed since the last of them did. What happens to a slot after
//! that (its new worker asks to be replaced after its 10 000th request, and its successor runs
//! the same generation) is the worker's own business: it neither restarts the settle clock nor
//! counts as one of the rollout's replacements. Otherwise a service whose workers recycle every
//! few seconds could never finish a deploy. A crash is not a recycle: the slot's respawn is
//! watched for the settle time again.

use std::time::{Duration, Instant};

use super::canary::Stage;
use super::ids::{Generation, WorkerId};
use super::slot::{Cause, Origin, Pending};
use super::{Effect, Policy, WallClock};
use crate::events::{CanaryVerdict, Event, RolloutOutcome, RolloutRecord};

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
    pub(super) stage: Stage,
    started: Instant,
    /// When the last slot the rollout reached got its first ready worker of the generation.
    last_reached: Option<Instant>,
    /// Aborted if still under way then (`None`: so far off that it cannot be written).
    deadline: Option<Instant>,
    /// The time it was given, for the reason it is aborted with.
    timeout: Duration,
}

/// How a worker took its slot, when it became ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Taking {
    /// From the worker it replaces, which drains now.
    FromPredecessor,
    /// An empty slot: the slot's first worker, or the one after a crash.
    EmptySlot,
}

/// The record of a rollout, kept after it ended for the status, on the policy's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RolloutLog {
    pub(super) generation: Generation,
    pub(super) outcome: RolloutOutcome,
    pub(super) why: Option<String>,
    pub(super) replaced: u64,
    pub(super) started: Instant,
    pub(super) ended: Option<Instant>,
    /// How its canary was judged, once it was.
    pub(super) canary: Option<CanaryVerdict>,
}

impl RolloutLog {
    /// The public record, times given by `wall`.
    pub(crate) fn record(&self, wall: WallClock) -> RolloutRecord {
        RolloutRecord {
            generation: self.generation.0,
            outcome: self.outcome,
            why: self.why.clone(),
            replaced: self.replaced,
            started_at_ms: wall.unix_ms(self.started),
            ended_at_ms: self.ended.map(|t| wall.unix_ms(t)),
            canary: self.canary,
        }
    }
}

impl Policy {
    /// Starts a rollout of a new generation, superseding the one under way; none while
    /// stopping.
    pub(super) fn start_rollout(&mut self, now: Instant) -> Option<Generation> {
        if self.stopping.is_some() {
            return None;
        }
        self.generation = self.generation.next();
        let target = self.generation;
        if self.rollout.is_some() {
            // Nobody waits forever for a rollout that will not finish: it ends, superseded.
            // Its workers are not wasted: those starting become ready and are replaced in
            // turn, those ready serve until their replacement is.
            self.end_rollout(
                RolloutOutcome::Superseded,
                format!("superseded by the rolling restart to generation {target}"),
                now,
            );
        }
        let stage = self.first_stage();
        let timeout = self.config.time_allowed_for_rollout(self.slots.len());
        self.rollout = Some(Rollout {
            target,
            failures: 0,
            early_crashes: 0,
            stage,
            started: now,
            last_reached: None,
            deadline: now.checked_add(timeout),
            timeout,
        });
        self.last_rollout = Some(RolloutLog {
            generation: target,
            outcome: RolloutOutcome::InProgress,
            why: None,
            replaced: 0,
            started: now,
            ended: None,
            canary: None,
        });
        self.effects.push_back(Effect::OpenProgram(target));
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
            if s.pending
                .as_ref()
                .is_some_and(|p| p.origin() == Origin::Rollout)
            {
                // Queued by the superseded rollout: this one queues what it deploys.
                s.pending = None;
                self.queue.retain(|q| *q != slot);
            }
        }
        self.queue_rollout(self.rollout_width(stage));
        Some(target)
    }

    /// A worker of `generation` took `slot`, whose last worker to do so ran `before`: one of
    /// the new generation resets the failure count, and, the first time the rollout reaches the
    /// slot, counts as one of its replacements and starts the settle time over. So does one that
    /// fills the slot again after its worker of the new generation crashed: the build is
    /// watched for the settle time again. One that replaces a worker of the new generation
    /// (recycled after its 10 000th request) is that worker's own business. One of an older
    /// generation (it was starting when the rollout began) is replaced in turn.
    pub(super) fn ready_in_rollout(
        &mut self,
        slot: usize,
        before: Option<Generation>,
        generation: Generation,
        taking: Taking,
        now: Instant,
    ) {
        let Some(r) = &mut self.rollout else { return };
        if generation >= r.target {
            r.failures = 0;
            if before.is_none_or(|g| g < r.target) {
                r.last_reached = Some(now);
                if let Some(log) = &mut self.last_rollout {
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

    /// Done once every slot has run a worker of the target generation to ready and the settle
    /// time has passed: its program becomes the good one. Aborted past its deadline.
    pub(super) fn check_rollout_done(&mut self, now: Instant) {
        let Some(r) = self.rollout else { return };
        if self.settled_at().is_some_and(|t| t <= now) {
            self.rollout = None;
            // Rollouts that ended other than done released theirs: the good one's is the only
            // program older than this one.
            self.effects.push_back(Effect::ReleaseProgram(self.good));
            self.good = r.target;
            if let Some(log) = &mut self.last_rollout {
                log.outcome = RolloutOutcome::Done;
                log.ended = Some(now);
            }
            self.emit(Event::RolloutDone {
                generation: r.target.0,
            });
            self.report_rollout_end();
        } else if r.deadline.is_some_and(|t| t <= now) {
            let why = format!(
                "not done within its rollout_timeout of {} (REGIMENT_ROLLOUT_TIMEOUT): {} of {} \
                 slots ran generation {} to ready",
                humantime::format_duration(r.timeout),
                self.slots_reached(r.target),
                self.slots.len(),
                r.target,
            );
            self.abort_rollout(why, now);
        }
    }

    /// When the rollout under way may complete: once every slot has run a worker of its
    /// generation to ready and is served by one now (not empty after a crash), the settle time
    /// after the last of them did (a build that crashes soon after it is ready is caught before
    /// it becomes the good one). `None` until every slot is there.
    pub(super) fn settled_at(&self) -> Option<Instant> {
        // A canary is judged first, whatever the slots run.
        let r = self.rollout.filter(|r| r.stage == Stage::Full)?;
        let served = |s: &super::slot::Slot| {
            s.current
                .and_then(|c| self.workers.get(&c))
                .is_some_and(|w| w.is_ready() && w.generation >= r.target)
        };
        if self.slots_reached(r.target) < self.slots.len() || !self.slots.iter().all(served) {
            return None;
        }
        r.last_reached
            .unwrap_or(r.started)
            .checked_add(self.config.rollout_settle)
    }

    /// When the rollout under way is aborted if it has not ended.
    pub(super) fn rollout_deadline(&self) -> Option<Instant> {
        self.rollout.and_then(|r| r.deadline)
    }

    /// Slots whose last worker to become ready runs `target` (or a newer generation).
    fn slots_reached(&self, target: Generation) -> usize {
        self.slots
            .iter()
            .filter(|s| s.reached.is_some_and(|g| g >= target))
            .count()
    }

    /// Ends a rollout that failed. Its queued replacements are dropped; its workers still
    /// starting are drained (successors: the old workers of those slots stay) and replaced
    /// by the good generation (in an empty slot; or when a worker's own request had taken over
    /// the replacement): from now on no worker of the aborted generation joins.
    pub(super) fn abort_rollout(&mut self, why: String, now: Instant) {
        let Some(r) = self.rollout else { return };
        self.end_rollout(RolloutOutcome::Aborted, why.clone(), now);
        let mut starting = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.pending
                .as_ref()
                .is_some_and(|p| p.origin() == Origin::Rollout)
            {
                s.pending = None;
                self.queue.retain(|q| *q != i);
            }
            // Any generation newer than the good one never completed a rollout: neither this
            // one nor one it superseded may join.
            let good = self.good;
            let unproven = |id: &WorkerId| {
                self.workers
                    .get(id)
                    .is_some_and(|w| w.generation > good && !w.is_ready())
            };
            if let Some(id) = s.successor.filter(unproven) {
                s.successor = None;
                starting.push((i, id));
            }
            if let Some(id) = s.current.filter(unproven) {
                s.current = None;
                starting.push((i, id));
            }
        }
        for (slot, id) in starting {
            let asked = self
                .workers
                .get_mut(&id)
                .and_then(|w| w.spawned_for.take())
                .filter(|p| p.origin() == Origin::Request);
            self.drain(id, &format!("rollout aborted: {why}"), now);
            if let Some(p) = asked {
                self.restore_pending(slot, p);
            }
        }
        if r.stage != Stage::Full {
            // An unjudged canary serves a build that did not prove itself: each of its workers
            // is replaced by the good generation, new before old.
            for slot in 0..self.slots.len() {
                let canary = self.slots[slot]
                    .current
                    .and_then(|c| self.workers.get(&c))
                    .is_some_and(|w| w.generation == r.target && w.is_ready());
                if canary {
                    self.want_replacement(
                        slot,
                        Pending {
                            reason: format!("rollout aborted: {why}"),
                            cause: Cause::RolloutAborted,
                        },
                    );
                }
            }
        }
    }

    /// The master stops: the rollout ends, aborted.
    pub(super) fn end_rollout_for_stop(&mut self, now: Instant) {
        if self.rollout.is_some() {
            self.end_rollout(RolloutOutcome::Aborted, "stopping".into(), now);
        }
    }

    /// Records and reports the end of the rollout under way, other than done.
    fn end_rollout(&mut self, outcome: RolloutOutcome, why: String, now: Instant) {
        let Some(r) = self.rollout.take() else { return };
        if let Some(log) = &mut self.last_rollout {
            log.outcome = outcome;
            log.why = Some(why.clone());
            log.ended = Some(now);
        }
        self.effects.push_back(Effect::ReleaseProgram(r.target));
        self.emit(Event::RolloutAborted {
            generation: r.target.0,
            why,
        });
        self.report_rollout_end();
    }

    /// How the canary of the rollout under way was judged, in its record.
    pub(super) fn record_canary(&mut self, verdict: CanaryVerdict) {
        if let Some(log) = &mut self.last_rollout {
            log.canary = Some(verdict);
        }
    }

    /// The record of the rollout that just ended, for whoever waits for it.
    fn report_rollout_end(&mut self) {
        if let Some(log) = &self.last_rollout {
            self.stats.count_rollout(log.outcome);
            self.effects.push_back(Effect::RolloutEnded(log.clone()));
        }
    }
}

pub(super) fn rollout_pending(target: Generation) -> Pending {
    Pending {
        reason: format!("rolling restart to generation {target}"),
        cause: Cause::Rollout,
    }
}
