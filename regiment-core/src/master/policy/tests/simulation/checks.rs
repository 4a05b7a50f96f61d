//! The lifecycle rules, checked after every step of a history.

use super::*;
use crate::events::RolloutOutcome;
use crate::master::policy::slot::Cause;
use crate::master::policy::upgrade::UpgradeOutcome;

impl World {
    /// Every rule, after a step.
    pub(super) fn check(
        &mut self,
        before: &Before,
        lowers: Lowers,
        step: &Step,
    ) -> Result<(), Violation> {
        let effects: Vec<Effect> = self.h.log[before.log_len..]
            .iter()
            .map(|(_, e)| e.clone())
            .collect();
        // A canary refused for the requests it failed leaves at once while others serve: the
        // one exception to new before old, for a worker that gives no capacity.
        let withdrawn = effects.iter().find_map(|e| match e {
            Effect::Event(Event::RolloutAborted { generation, why })
                if why.ends_with("points worse") =>
            {
                Some(Generation(*generation))
            }
            _ => None,
        });
        for e in &effects {
            let p = &self.h.policy;
            let config = p.config;
            match e {
                Effect::Spawn {
                    id,
                    replaces,
                    generation,
                    ..
                } => {
                    // A spawn runs the rollout's generation, else the last good one: never
                    // one whose rollout ended without completing.
                    // During a canary, the canary's own replacements run the rolling
                    // generation and everything else the good one (the count of the canary's
                    // generation is checked below).
                    let expected = match self.rolling {
                        Some(_) if self.canary_stage && generation.0 == self.good => self.good,
                        Some(g) => g,
                        None => self.good,
                    };
                    if generation.0 != expected {
                        return broken(
                            "spawns run the good or the rolling generation",
                            format!(
                                "{id} spawned with generation {generation}, not {expected} \
                                 (good {}, rolling {:?})",
                                self.good, self.rolling
                            ),
                        );
                    }
                    if !self.programs.contains(generation) {
                        return broken(
                            "a spawn finds its generation's program open",
                            format!(
                                "{id} spawned with generation {generation}, programs open: {:?}",
                                self.programs
                            ),
                        );
                    }
                    // Once stopping, nothing is spawned.
                    if self.stopping {
                        return broken(
                            "nothing spawned while stopping",
                            format!("{id} spawned while stopping"),
                        );
                    }
                    if replaces.is_some() {
                        // Workers drained first make way as surges do.
                        let starting = (p.slots.iter())
                            .filter(|s| s.successor.is_some() || s.vacating.is_some())
                            .count();
                        let budget = config.surge(p.slots.len());
                        if starting > budget {
                            return broken(
                                "surge bounded",
                                format!(
                                    "{starting} replacements starting at once, max_surge {budget}"
                                ),
                            );
                        }
                        // No replacement but a deploy's starts beside its old worker unless the
                        // budget holds one more new worker on top of the sum the policy saw.
                        // (While a rollout is under way, a request may take over one of its
                        // replacements after it started, in the same step: not checked then.)
                        let deployed = (p.workers.get(id))
                            .and_then(|w| w.spawned_for.as_ref())
                            .is_none_or(|pending| {
                                matches!(pending.cause, Cause::Rollout | Cause::RolloutAborted)
                            });
                        if let Some(budget) = config.memory_budget
                            && !deployed
                            && self.rolling.is_none()
                            && p.rollouts.under_way.is_none()
                        {
                            let headed = p.memory.total + p.memory.growth;
                            if headed + NEW_WORKER > budget {
                                return broken(
                                    "no surge past the memory budget",
                                    format!(
                                        "{id} started beside its old worker with {headed} bytes \
                                         in use or coming, a budget of {budget}"
                                    ),
                                );
                            }
                        }
                    }
                }
                Effect::Drain { id, .. } => {
                    // New before old: a serving worker drains only once its successor serves;
                    // unless the memory budget has no room for both, which drains it first.
                    let canary_withdrawn = withdrawn.is_some() && h_generation(p, *id) == withdrawn;
                    let drained_first = drained_first(p, *id);
                    if drained_first && config.memory_budget.is_none() {
                        return broken(
                            "drained first only for a memory budget",
                            format!("{id} drained first with no budget"),
                        );
                    }
                    if before.ready.contains(id)
                        && !canary_withdrawn
                        && !drained_first
                        && !self.stopping
                        && !matches!(step, Step::Stop | Step::ForcedStop)
                    {
                        let slot = before.workers[id].0;
                        if slot < p.slots.len() {
                            let s = &p.slots[slot];
                            // (Or it did, and was itself drained first in the same step, for a
                            // replacement it had asked for before it was ready.)
                            let successor_serves = s
                                .current
                                .filter(|c| c != id)
                                .and_then(|c| p.workers.get(&c))
                                .is_some_and(|w| w.is_ready())
                                || s.vacating.as_ref().is_some_and(|v| v.old != *id);
                            if !successor_serves {
                                return broken(
                                    "new before old",
                                    format!(
                                        "{id} (slot {slot}) told to drain before a successor was ready"
                                    ),
                                );
                            }
                        }
                    }
                }
                Effect::OpenProgram(generation) => {
                    self.programs.insert(*generation);
                }
                Effect::ReleaseProgram(generation) => {
                    self.programs.remove(generation);
                }
                Effect::Event(ev) => self.check_event(ev, before)?,
                Effect::Kill { .. }
                | Effect::StatusChanged
                | Effect::RolloutEnded(_)
                | Effect::Upgrade { .. } => {}
                // An upgrade ends as the rollout of its build ends, in the same step; refused,
                // it rolled nothing out.
                Effect::UpgradeEnded(log) => {
                    let rollout = effects.iter().find_map(|e| match e {
                        Effect::RolloutEnded(r) if Some(r.generation) == log.generation => {
                            Some(r.outcome)
                        }
                        _ => None,
                    });
                    let expected = match log.outcome {
                        UpgradeOutcome::Done => Some(RolloutOutcome::Done),
                        UpgradeOutcome::Aborted => Some(RolloutOutcome::Aborted),
                        UpgradeOutcome::Refused
                        | UpgradeOutcome::RolledBack
                        | UpgradeOutcome::InProgress => None,
                    };
                    if log.outcome == UpgradeOutcome::InProgress || rollout != expected {
                        return broken(
                            "an upgrade ends as its rollout ends",
                            format!("{log:?} ended, its rollout: {rollout:?}"),
                        );
                    }
                }
            }
        }

        // Open: the good generation's program and the rolling one's, no other.
        let wanted: BTreeSet<Generation> = [Some(self.good), self.rolling]
            .into_iter()
            .flatten()
            .map(Generation)
            .collect();
        if self.programs != wanted {
            return broken(
                "the good and the rolling generation's programs are open, no other",
                format!(
                    "programs open: {:?}; good {}, rolling {:?}",
                    self.programs, self.good, self.rolling
                ),
            );
        }

        let h = &self.h;
        let p = &h.policy;
        let now = h.now;
        // While nothing crashes (and no stop or scale-down), the ready workers never decrease.
        let ready_now = h.ready_count();
        let drained_first = effects
            .iter()
            .filter(|e| matches!(e, Effect::Drain { id, .. } if drained_first(p, *id)))
            .count();
        if lowers == Lowers::No
            && withdrawn.is_none()
            && ready_now + drained_first < before.ready.len()
        {
            return broken(
                "ready workers never drop",
                format!(
                    "ready workers went from {} to {ready_now} with nothing crashing",
                    before.ready.len()
                ),
            );
        }

        // While a canary is unproven, no more of its generation serve than the canary count.
        if let (Some(r), Some(c)) = (&p.rollouts.under_way, p.config.canary)
            && r.stage != Stage::Full
        {
            let serving = p
                .workers
                .values()
                .filter(|w| w.generation == r.target && w.is_ready())
                .count();
            if serving > c.workers {
                return broken(
                    "an unproven canary stays within its count",
                    format!(
                        "{serving} ready workers of generation {} during its canary of {}",
                        r.target, c.workers
                    ),
                );
            }
        }

        // A forced stop kills every worker at once.
        let forced = effects
            .iter()
            .any(|e| matches!(e, Effect::Event(Event::Stopping { forced: true })));
        if (forced || matches!(step, Step::ForcedStop))
            && let Some((id, _)) = p
                .workers
                .iter()
                .find(|(_, w)| !matches!(w.phase, Phase::Killed { .. }))
        {
            return broken(
                "forced stop kills every worker",
                format!("forced stop left {id} unkilled"),
            );
        }

        // Every process spawned is in the books until its exit; the books hold nothing else.
        let books: Vec<WorkerId> = p.workers.keys().copied().collect();
        let live: Vec<WorkerId> = h.processes.keys().copied().collect();
        if books != live {
            return broken(
                "books hold every live process",
                format!("books {books:?} but live processes {live:?}"),
            );
        }
        // Every deadline is enforced, and no timer is left due.
        for (id, w) in &p.workers {
            match w.phase {
                Phase::Starting { deadline } | Phase::Draining { deadline, .. }
                    if deadline <= now =>
                {
                    return broken(
                        "deadlines enforced",
                        format!("{id} is past its deadline in {:?}", w.phase),
                    );
                }
                _ => {}
            }
        }
        // A worker that sends heartbeats and went silent for longer than the timeout has been
        // judged, whatever else it asked for.
        if let Some(timeout) = p.config.heartbeat_timeout {
            for (id, w) in &p.workers {
                if w.is_ready()
                    && w.heartbeats == Heartbeats::Seen
                    && now.saturating_duration_since(w.last_heard) > timeout
                {
                    return broken(
                        "deadlines enforced",
                        format!("{id} silent for {:?} and not judged", now - w.last_heard),
                    );
                }
            }
        }
        // Every rollout ends, done or aborted, by its deadline.
        if let Some((generation, deadline)) = self.rollouts.iter().find(|(_, t)| **t <= now) {
            return broken(
                "every rollout ends by its deadline",
                format!(
                    "the rollout to generation {generation} is under way {:?} past its deadline",
                    now - *deadline
                ),
            );
        }
        if let Some(t) = p.poll_timeout()
            && t <= now
        {
            return broken(
                "deadlines enforced",
                format!("a timer due {:?} ago was not handled", now - t),
            );
        }
        // Stopped exactly when stopping and every worker has exited.
        if p.is_stopped() != (self.stopping && p.workers.is_empty()) {
            return broken(
                "stop ends when every worker exited",
                format!(
                    "stopped: {}, stopping: {}, workers: {}",
                    p.is_stopped(),
                    self.stopping,
                    p.workers.len()
                ),
            );
        }
        if !self.stopping {
            for (i, s) in p.slots.iter().enumerate() {
                // No slot stays empty unless it backs off.
                let filled = s.current.is_some() || s.successor.is_some();
                if let Some(v) = &s.vacating
                    && !p.workers.contains_key(&v.old)
                {
                    return broken(
                        "no slot stays empty",
                        format!("slot {i} waits for {} to exit, which has exited", v.old),
                    );
                }
                if !filled && s.vacating.is_none() && s.retry_at.is_none_or(|t| t <= now) {
                    return broken(
                        "no slot stays empty",
                        format!("slot {i} is empty and waits for nothing"),
                    );
                }
                // A successor replaces the slot's worker of the moment.
                if let Some(succ) = s.successor
                    && h.processes.get(&succ).and_then(|p| p.replaces) != s.current
                    && s.current.is_some()
                    && h.processes[&succ].replaces.is_some()
                {
                    // The current worker changed only if it exited (the successor then takes
                    // the slot when ready): it must be gone from the books.
                    let replaced = h.processes[&succ].replaces.expect("checked");
                    if p.workers.contains_key(&replaced) {
                        return broken(
                            "a successor replaces its slot's worker",
                            format!(
                                "slot {i}: successor {succ} replaces {replaced}, which is not the slot's worker"
                            ),
                        );
                    }
                }
            }
            // One queue entry per slot, and only for a slot that wants a replacement.
            let queued: BTreeSet<usize> = p.queue.iter().copied().collect();
            if queued.len() != p.queue.len() {
                return broken(
                    "one queue entry per slot",
                    format!("a slot is queued twice: {:?}", p.queue),
                );
            }
        }
        Ok(())
    }

    fn check_event(&mut self, ev: &Event, before: &Before) -> Result<(), Violation> {
        let config = self.h.policy.config;
        let backoff = config.backoff;
        let in_bounds =
            |d: u64| d >= backoff.initial.as_millis() as u64 && d <= backoff.max.as_millis() as u64;
        if let Event::Exited { pid, .. } | Event::Crashed { pid, .. } = ev {
            self.budget_victims.remove(pid);
        }
        match ev {
            Event::ReplaceRequested { pid, reason, .. } if reason.starts_with("memory-budget") => {
                if config.memory_budget.is_none() {
                    return broken("budget replacements need a budget", reason.clone());
                }
                if let Some(other) = self.budget_victims.first() {
                    return broken(
                        "one budget replacement at a time",
                        format!("pid {pid} chosen while pid {other} is still replaced"),
                    );
                }
                self.budget_victims.insert(*pid);
                let Some(id) = (before.workers.iter())
                    .find(|(_, (_, p, _))| p == pid)
                    .map(|(id, _)| *id)
                else {
                    return broken("events name started processes", format!("{ev:?}"));
                };
                if let Some(larger) =
                    (before.replaceable.iter()).find(|other| self.size(**other) > self.size(id))
                {
                    return broken(
                        "the largest goes first",
                        format!(
                            "{id} ({} bytes) chosen over {larger} ({} bytes)",
                            self.size(id),
                            self.size(*larger)
                        ),
                    );
                }
            }
            // Events name processes that were started.
            Event::Ready { pid: 0, .. }
            | Event::Draining { pid: 0, .. }
            | Event::Killed { pid: 0, .. }
            | Event::Unresponsive { pid: 0, .. }
            | Event::Crashed { pid: 0, .. } => {
                return broken("events name started processes", format!("{ev:?}"));
            }
            Event::Stopping { .. } => self.stopping = true,
            Event::Stopped => {
                if self.stopped {
                    return broken("stop ends when every worker exited", "stopped twice");
                }
                self.stopped = true;
            }
            Event::RolloutStarted { generation }
                if self.rollouts.contains_key(generation) || self.ended.contains(generation) =>
            {
                return broken(
                    "every rollout ends once",
                    format!("rollout {generation} started twice"),
                );
            }
            Event::RolloutDone { generation } | Event::RolloutAborted { generation, .. }
                if self.rollouts.remove(generation).is_none()
                    || !self.ended.insert(*generation) =>
            {
                return broken(
                    "every rollout ends once",
                    format!("rollout {generation} ended without being under way"),
                );
            }
            Event::RolloutStarted { generation } => {
                self.rolling = Some(*generation);
                let p = &self.h.policy;
                let allowed = config.time_allowed_for_rollout(p.slots.len());
                self.rollouts.insert(*generation, self.h.now + allowed);
                self.canary_stage = p.config.canary.is_some_and(|c| c.workers < p.slots.len());
            }
            Event::CanaryPassed { generation, why } => {
                self.canary_stage = false;
                // A canary that fails every request (5xx, or no answer), beside workers that
                // fail none, never passes a margin below 100 % once it had to answer anything.
                let p = &self.h.policy;
                let c = p.config.canary.expect("a canary was configured");
                // Compared with the good generation: unless it fails too.
                let others_clean = !self.fails_every_request(p.rollouts.good);
                if self.fails_every_request(Generation(*generation))
                    && others_clean
                    && c.min_requests > 0
                    && c.max_error_ratio < 1.0
                {
                    return broken(
                        "a canary worse than the margin is refused",
                        format!("generation {generation} passed: {why}"),
                    );
                }
            }
            Event::RolloutAborted { generation, why } => {
                self.rolling = None;
                if !why.starts_with("superseded") {
                    self.aborted.insert(*generation, why.clone());
                }
            }
            Event::RolloutDone { generation } => {
                self.rolling = None;
                self.good = *generation;
                if self.h.policy.rollouts.good.0 != *generation {
                    return broken(
                        "a completed rollout's generation is the good one",
                        format!(
                            "rollout {generation} done, good generation {}",
                            self.h.policy.rollouts.good
                        ),
                    );
                }
            }
            Event::StartFailed {
                retry_in_ms, slot, ..
            } => {
                let expected_zero = self.stopping || *slot >= self.h.policy.slots.len();
                if expected_zero != (*retry_in_ms == 0)
                    || (!expected_zero && !in_bounds(*retry_in_ms))
                {
                    return broken(
                        "backoff within bounds",
                        format!("retry_in_ms {retry_in_ms} outside the backoff {backoff:?}"),
                    );
                }
            }
            Event::ReplacementDelayed { wait_ms, .. } if !in_bounds(*wait_ms) => {
                return broken(
                    "backoff within bounds",
                    format!("wait_ms {wait_ms} outside the backoff {backoff:?}"),
                );
            }
            Event::Crashed {
                respawn_in_ms, pid, ..
            } => {
                if *respawn_in_ms != 0 && !in_bounds(*respawn_in_ms) {
                    return broken(
                        "backoff within bounds",
                        format!("respawn_in_ms {respawn_in_ms} outside the backoff {backoff:?}"),
                    );
                }
                // A worker that stayed ready for a healthy period starts the backoff over.
                let crashed = before.workers.values().find(|(_, p, _)| p == pid);
                if let Some((_, _, Phase::Ready { since })) = crashed
                    && self.h.now.saturating_duration_since(*since) >= backoff.reset_after
                    && *respawn_in_ms != 0
                    && *respawn_in_ms != backoff.initial.as_millis() as u64
                {
                    return broken(
                        "backoff resets after a healthy period",
                        format!(
                            "a worker healthy for {:?} crashed and its slot waits {respawn_in_ms} ms",
                            self.h.now - *since
                        ),
                    );
                }
            }
            Event::Ready {
                pid, generation, ..
            } if self.aborted.contains_key(generation) => {
                return broken(
                    "no worker of an aborted rollout joins",
                    format!("pid {pid} of aborted generation {generation} became ready"),
                );
            }
            Event::Ready { pid, .. } => {
                // Any number of requests for one slot make one replacement.
                let replaces = self
                    .h
                    .processes
                    .values()
                    .find(|p| p.pid == *pid)
                    .and_then(|p| p.replaces);
                if let Some(old) = replaces {
                    let n = self.took_over.entry(old).or_default();
                    *n += 1;
                    if *n > 1 {
                        return broken(
                            "one replacement per request",
                            format!("{old} was replaced by {n} workers"),
                        );
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The generation of a worker in the books.
/// `id` was drained before its replacement started, for lack of memory.
fn drained_first(p: &super::super::super::Policy, id: WorkerId) -> bool {
    p.slots
        .iter()
        .any(|s| s.vacating.as_ref().is_some_and(|v| v.old == id))
}

fn h_generation(p: &super::super::super::Policy, id: WorkerId) -> Option<Generation> {
    p.workers.get(&id).map(|w| w.generation)
}
