//! A rollout starts (superseding the one under way), completes (its program becomes the good
//! one), or is aborted (its workers still starting leave, an unjudged canary is replaced); each
//! end is recorded and reported.

use std::time::Instant;

use super::super::ids::{Generation, WorkerId};
use super::super::slot::{Cause, Origin, Pending};
use super::super::{Effect, Policy};
use super::{Rollout, RolloutLog, Stage};
use crate::events::{CanaryVerdict, Event, RolloutOutcome};

impl Policy {
    /// Starts a rollout of a new generation, superseding the one under way; none while
    /// stopping.
    pub(in crate::master::policy) fn start_rollout(&mut self, now: Instant) -> Option<Generation> {
        if self.stopping.is_some() {
            return None;
        }
        self.rollouts.newest = self.rollouts.newest.next();
        let target = self.rollouts.newest;
        if self.rollouts.under_way.is_some() {
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
        let width = self.rollout_width(&stage);
        let timeout = self.config.time_allowed_for_rollout(self.slots.len());
        self.rollouts.under_way = Some(Rollout {
            target,
            failures: 0,
            early_crashes: 0,
            stage,
            started: now,
            last_reached: None,
            deadline: now.checked_add(timeout),
            timeout,
        });
        self.rollouts.last = Some(RolloutLog::started(target, now));
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
        self.queue_rollout(width);
        Some(target)
    }

    /// Done once every slot has run a worker of the target generation to ready and the settle
    /// time has passed: its program becomes the good one. Aborted past its deadline.
    pub(in crate::master::policy) fn check_rollout_done(&mut self, now: Instant) {
        let Some(r) = &self.rollouts.under_way else {
            return;
        };
        let (target, deadline, timeout) = (r.target, r.deadline, r.timeout);
        if self.settled_at().is_some_and(|t| t <= now) {
            self.rollouts.under_way = None;
            // Rollouts that ended other than done released theirs: the good one's is the only
            // program older than this one.
            self.effects
                .push_back(Effect::ReleaseProgram(self.rollouts.good));
            self.rollouts.good = target;
            if let Some(log) = &mut self.rollouts.last {
                log.outcome = RolloutOutcome::Done;
                log.ended = Some(now);
            }
            self.emit(Event::RolloutDone {
                generation: target.0,
            });
            self.report_rollout_end(now);
        } else if deadline.is_some_and(|t| t <= now) {
            let why = format!(
                "not done within its rollout_timeout of {} (REGIMENT_ROLLOUT_TIMEOUT): {} of {} \
                 slots ran generation {} to ready",
                humantime::format_duration(timeout),
                self.slots_reached(target),
                self.slots.len(),
                target,
            );
            self.abort_rollout(why, now);
        }
    }

    /// Ends a rollout that failed. Its queued replacements are dropped; its workers still
    /// starting are drained (successors: the old workers of those slots stay) and replaced
    /// by the good generation (in an empty slot; or when a worker's own request had taken over
    /// the replacement): from now on no worker of the aborted generation joins.
    pub(in crate::master::policy) fn abort_rollout(&mut self, why: String, now: Instant) {
        let Some(r) = &self.rollouts.under_way else {
            return;
        };
        let (target, canary_unjudged) = (r.target, r.stage != Stage::Full);
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
            let good = self.rollouts.good;
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
        if canary_unjudged {
            // An unjudged canary serves a build that did not prove itself: each of its workers
            // is replaced by the good generation, new before old.
            for slot in 0..self.slots.len() {
                let canary = self.slots[slot]
                    .current
                    .and_then(|c| self.workers.get(&c))
                    .is_some_and(|w| w.generation == target && w.is_ready());
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
    pub(in crate::master::policy) fn end_rollout_for_stop(&mut self, now: Instant) {
        if self.rollouts.under_way.is_some() {
            self.end_rollout(RolloutOutcome::Aborted, "stopping".into(), now);
        }
    }

    /// Records and reports the end of the rollout under way, other than done.
    fn end_rollout(&mut self, outcome: RolloutOutcome, why: String, now: Instant) {
        let Some(r) = self.rollouts.under_way.take() else {
            return;
        };
        if let Some(log) = &mut self.rollouts.last {
            log.outcome = outcome;
            log.why = Some(why.clone());
            log.ended = Some(now);
        }
        self.effects.push_back(Effect::ReleaseProgram(r.target));
        self.emit(Event::RolloutAborted {
            generation: r.target.0,
            why,
        });
        self.report_rollout_end(now);
    }

    /// How the canary of the rollout under way was judged, in its record.
    pub(super) fn record_canary(&mut self, verdict: CanaryVerdict) {
        if let Some(log) = &mut self.rollouts.last {
            log.canary = Some(verdict);
        }
    }

    /// The record of the rollout that just ended, for whoever waits for it.
    /// An upgrade that rolls this rollout out ends with it.
    fn report_rollout_end(&mut self, now: Instant) {
        if let Some(log) = self.rollouts.last.clone() {
            self.stats.count_rollout(log.outcome);
            self.effects.push_back(Effect::RolloutEnded(log.clone()));
            self.upgrade_follows(&log, now);
        }
    }
}
