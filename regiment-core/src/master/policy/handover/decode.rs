//! A [`PolicyState`] checked whole, then rebuilt into the books on the new master's clock.
//!
//! The checks are those the policy's code relies on: every worker a slot names is in the books
//! and in that slot, once; ids and generations are below the next ones handed out; counters
//! are far from overflowing; every instant exists on this clock. Whatever else a state holds
//! (figures, reasons, programs) is data the policy never indexes by.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::super::backoff::Backoff;
use super::super::ids::{Generation, WorkerId};
use super::super::memory::{BudgetReplacement, MemoryBooks};
use super::super::rollout::{Rollout, RolloutLog, Rollouts, Stage, Tally, Window};
use super::super::slot::{Cause, Pending, Slot, Vacating};
use super::super::stats::REPLACEMENT_LABELS;
use super::super::upgrade::{Upgrade, UpgradeLog, UpgradeOutcome, UpgradeStage, Upgrades};
use super::super::worker::{Heartbeats, KillReason, Load, Phase, Worker};
use super::super::{Policy, PolicyConfig, Stats, Stopping};
use super::error::RestoreError;
use super::state::*;
use crate::limits::MAX_WORKERS;

/// Counts and ids past this are no state a master wrote: it would take centuries to count
/// them, and one more would overflow.
const MOST: u64 = 1 << 62;

type Checked<T> = Result<T, RestoreError>;

fn inconsistent<T>(why: String) -> Checked<T> {
    Err(RestoreError::Inconsistent(why))
}

/// The policy the state describes, under `config`, at `now`.
pub(super) fn policy(config: PolicyConfig, s: PolicyState, now: Instant) -> Checked<Policy> {
    let clock = Clock { now };
    bounded("next_id", s.next_id)?;
    bounded("rollouts.newest", s.rollouts.newest)?;
    bounded("upgrades.count", s.upgrades.count)?;
    let newest = s.rollouts.newest;
    let generation = |what: &str, g: u64| -> Checked<Generation> {
        if (1..=newest).contains(&g) {
            Ok(Generation(g))
        } else {
            inconsistent(format!("{what}: generation {g}, not one of 1 to {newest}"))
        }
    };
    if !(1..=MAX_WORKERS).contains(&s.slots.len()) {
        return inconsistent(format!("{} slots, not 1 to {MAX_WORKERS}", s.slots.len()));
    }

    let mut workers = BTreeMap::new();
    for w in s.workers {
        let what = format!("worker #{}", w.id);
        if w.id == 0 || w.id >= s.next_id {
            return inconsistent(format!("{what}: not below the next id, {}", s.next_id));
        }
        let worker = Worker {
            slot: w.slot,
            generation: generation(&what, w.generation)?,
            pid: w.pid,
            program: w.program,
            phase: clock.phase(&what, w.phase)?,
            spawned_at: clock.instant(&what, w.spawned_at)?,
            spawned_for: w.spawned_for.map(pending),
            replace_reason: w.replace_reason,
            replace_criterion: w.replace_criterion,
            last_heard: clock.instant(&what, w.last_heard)?,
            heartbeats: match w.heartbeats {
                HeartbeatsState::NoneYet => Heartbeats::NoneYet,
                HeartbeatsState::Seen => Heartbeats::Seen,
                HeartbeatsState::Silent => Heartbeats::Silent,
            },
            load: Load {
                rss: w.load.rss,
                requests: w.load.requests,
                in_flight: w.load.in_flight,
                responses_5xx: w.load.responses_5xx,
                failures: w.load.failures,
                latency: None,
            },
            invalid_messages: bounded(&what, w.invalid_messages)?,
            abandoned_drain: w.abandoned_drain,
            memory: w.memory,
            sized: w.sized,
        };
        if workers.insert(WorkerId(w.id), worker).is_some() {
            return inconsistent(format!("{what} is listed twice"));
        }
    }

    let mut placed = BTreeSet::new();
    let mut slots = Vec::with_capacity(s.slots.len());
    for (i, st) in s.slots.into_iter().enumerate() {
        let what = format!("slot {i}");
        for id in [st.current, st.successor].into_iter().flatten() {
            match workers.get(&WorkerId(id)) {
                None => {
                    return inconsistent(format!("{what} holds worker #{id}, not in the books"));
                }
                Some(w) if w.slot != i => {
                    return inconsistent(format!("{what} holds worker #{id} of slot {}", w.slot));
                }
                Some(_) if !placed.insert(id) => {
                    return inconsistent(format!("worker #{id} holds two places"));
                }
                Some(_) => {}
            }
        }
        slots.push(Slot {
            current: st.current.map(WorkerId),
            successor: st.successor.map(WorkerId),
            pending: st.pending.map(pending),
            retry_at: st.retry_at.map(|t| clock.instant(&what, t)).transpose()?,
            backoff: Backoff {
                config: config.backoff,
                // The new options bound it from now on.
                next: st.backoff.next.min(config.backoff.max),
                last_retry: (st.backoff.last_retry)
                    .map(|t| clock.instant(&what, t))
                    .transpose()?,
            },
            restarts: bounded(&what, st.restarts)?,
            last_reason: st.last_reason,
            reached: st.reached.map(|g| generation(&what, g)).transpose()?,
            vacating: match st.vacating {
                None => None,
                Some((id, p)) => match workers.get(&WorkerId(id)) {
                    Some(w) if w.slot == i => Some(Vacating {
                        old: WorkerId(id),
                        pending: pending(p),
                    }),
                    _ => {
                        return inconsistent(format!(
                            "{what} is vacated by worker #{id}, not a worker of its own that \
                             left it"
                        ));
                    }
                },
            },
        });
    }

    let mut queued = BTreeSet::new();
    for &slot in &s.queue {
        if slot >= slots.len() || !queued.insert(slot) {
            return inconsistent(format!(
                "the queue {:?}: a slot out of range or twice",
                s.queue
            ));
        }
    }

    let r = s.rollouts;
    let rollouts = Rollouts {
        newest: Generation(newest),
        good: generation("the good generation", r.good)?,
        under_way: r
            .under_way
            .map(|u| clock.rollout(u, &generation))
            .transpose()?,
        last: r
            .last
            .map(|l| clock.rollout_log(l, &generation))
            .transpose()?,
    };

    let u = s.upgrades;
    let count = u.count;
    let number = |n: u64| -> Checked<u64> {
        if (1..=count).contains(&n) {
            Ok(n)
        } else {
            inconsistent(format!("upgrade {n}, not one of 1 to {count}"))
        }
    };
    let upgrades = Upgrades {
        count,
        under_way: (u.under_way)
            .map(|u| -> Checked<Upgrade> {
                Ok(Upgrade {
                    number: number(u.number)?,
                    stage: match u.stage {
                        UpgradeStageState::Handover => UpgradeStage::Handover,
                        UpgradeStageState::Rolling { generation: g } => {
                            UpgradeStage::Rolling(generation("the upgrade", g)?)
                        }
                    },
                })
            })
            .transpose()?,
        last: (u.last)
            .map(|l| -> Checked<UpgradeLog> {
                Ok(UpgradeLog {
                    number: number(l.number)?,
                    outcome: match l.outcome {
                        UpgradeOutcomeState::InProgress => UpgradeOutcome::InProgress,
                        UpgradeOutcomeState::Done => UpgradeOutcome::Done,
                        UpgradeOutcomeState::Aborted => UpgradeOutcome::Aborted,
                        UpgradeOutcomeState::Refused => UpgradeOutcome::Refused,
                        UpgradeOutcomeState::RolledBack => UpgradeOutcome::RolledBack,
                    },
                    why: l.why,
                    started: clock.instant("the last upgrade", l.started)?,
                    ended: (l.ended)
                        .map(|t| clock.instant("the last upgrade", t))
                        .transpose()?,
                    generation: (l.generation)
                        .map(|g| generation("the last upgrade", g))
                        .transpose()?,
                })
            })
            .transpose()?,
    };

    let memory = memory_books(s.memory);
    Ok(Policy {
        config,
        workers,
        slots,
        queue: s.queue.into_iter().collect::<VecDeque<_>>(),
        next_id: s.next_id,
        rollouts,
        upgrades,
        stopping: s.stopping.map(|s| match s {
            StoppingState::Graceful => Stopping::Graceful,
            StoppingState::Forced => Stopping::Forced,
            StoppingState::Done => Stopping::Done,
        }),
        effects: VecDeque::new(),
        // The new master publishes its status first.
        status_changed: true,
        stats: stats(s.stats)?,
        memory,
    })
}

/// The memory books (a budget replacement whose worker has exited lasts until its slot serves
/// again: its worker need not be in the books).
fn memory_books(m: MemoryState) -> MemoryBooks {
    MemoryBooks {
        total: m.total,
        growth: m.growth,
        master: m.master,
        recent_new: m.recent_new.into_iter().collect(),
        smallest: m.smallest,
        replacing: m.replacing.map(|(id, slot)| BudgetReplacement {
            old: WorkerId(id),
            slot,
        }),
    }
}

fn bounded(what: &str, n: u64) -> Checked<u64> {
    if n < MOST {
        Ok(n)
    } else {
        inconsistent(format!("{what}: {n} is no count a master reaches"))
    }
}

fn kill_reason(why: KillReasonState) -> KillReason {
    match why {
        KillReasonState::StartTimeout => KillReason::StartTimeout,
        KillReasonState::DrainDeadline => KillReason::DrainDeadline,
        KillReasonState::ForcedStop => KillReason::ForcedStop,
        KillReasonState::IpcSetupFailed => KillReason::IpcSetupFailed,
        KillReasonState::Unresponsive => KillReason::Unresponsive,
    }
}

fn pending(p: PendingState) -> Pending {
    Pending {
        reason: p.reason,
        cause: match p.cause {
            CauseState::Rollout => Cause::Rollout,
            CauseState::RolloutAborted => Cause::RolloutAborted,
            CauseState::Worker { criterion } => Cause::Worker(criterion),
            CauseState::Unresponsive => Cause::Unresponsive,
            CauseState::Operator => Cause::Operator,
            CauseState::MemoryBudget => Cause::MemoryBudget,
        },
    }
}

fn stats(s: StatsState) -> Checked<Stats> {
    let mut replacements = BTreeMap::new();
    for (label, n) in s.replacements {
        let Some(label) = REPLACEMENT_LABELS.iter().find(|l| **l == label) else {
            return inconsistent(format!(
                "replacements counted as {label:?}, not one of {REPLACEMENT_LABELS:?}"
            ));
        };
        replacements.insert(*label, bounded("replacements", n)?);
    }
    let mut kills = BTreeMap::new();
    for (why, n) in s.kills {
        kills.insert(kill_reason(why), bounded("kills", n)?);
    }
    Ok(Stats {
        rollouts_done: bounded("rollouts_done", s.rollouts_done)?,
        rollouts_aborted: bounded("rollouts_aborted", s.rollouts_aborted)?,
        rollouts_superseded: bounded("rollouts_superseded", s.rollouts_superseded)?,
        upgrades_done: bounded("upgrades_done", s.upgrades_done)?,
        upgrades_aborted: bounded("upgrades_aborted", s.upgrades_aborted)?,
        upgrades_refused: bounded("upgrades_refused", s.upgrades_refused)?,
        upgrades_rolled_back: bounded("upgrades_rolled_back", s.upgrades_rolled_back)?,
        replacements,
        kills,
        oom_kills: bounded("oom_kills", s.oom_kills)?,
        crashes: bounded("crashes", s.crashes)?,
        start_failures: bounded("start_failures", s.start_failures)?,
    })
}

/// Offsets back to instants, on the new master's clock.
struct Clock {
    now: Instant,
}

impl Clock {
    fn instant(&self, what: &str, Offset(nanos): Offset) -> Checked<Instant> {
        let d = Duration::from_nanos(nanos.unsigned_abs());
        let t = if nanos >= 0 {
            self.now.checked_add(d)
        } else {
            self.now.checked_sub(d)
        };
        t.map_or_else(
            || inconsistent(format!("{what}: {nanos} ns from now is beyond this clock")),
            Ok,
        )
    }

    fn phase(&self, what: &str, phase: PhaseState) -> Checked<Phase> {
        let at = |t| self.instant(what, t);
        Ok(match phase {
            PhaseState::Starting { deadline } => Phase::Starting {
                deadline: at(deadline)?,
            },
            PhaseState::Ready { since } => Phase::Ready { since: at(since)? },
            PhaseState::Draining { since, deadline } => Phase::Draining {
                since: at(since)?,
                deadline: at(deadline)?,
            },
            PhaseState::Killed { why, at: t } => Phase::Killed {
                why: kill_reason(why),
                at: at(t)?,
            },
        })
    }

    fn rollout(
        &self,
        r: RolloutState,
        generation: &impl Fn(&str, u64) -> Checked<Generation>,
    ) -> Checked<Rollout> {
        let what = "the rollout under way";
        let at = |t| self.instant(what, t);
        let counted = |n: u32| {
            if n < u32::MAX / 2 {
                Ok(n)
            } else {
                inconsistent(format!("{what}: {n} setbacks"))
            }
        };
        Ok(Rollout {
            target: generation(what, r.target)?,
            failures: counted(r.failures)?,
            early_crashes: counted(r.early_crashes)?,
            stage: match r.stage {
                StageState::Canary => Stage::Canary,
                StageState::Window {
                    until,
                    baseline,
                    gone_canary,
                    gone_good,
                } => Stage::Window(Window {
                    until: at(until)?,
                    baseline: (baseline.into_iter())
                        .map(|(id, answers)| (WorkerId(id), Tally(answers)))
                        .collect(),
                    gone: (Tally(gone_canary), Tally(gone_good)),
                }),
                StageState::Full => Stage::Full,
            },
            started: at(r.started)?,
            last_reached: r.last_reached.map(at).transpose()?,
            deadline: r.deadline.map(at).transpose()?,
            timeout: r.timeout,
        })
    }

    fn rollout_log(
        &self,
        l: RolloutLogState,
        generation: &impl Fn(&str, u64) -> Checked<Generation>,
    ) -> Checked<RolloutLog> {
        let what = "the last rollout";
        Ok(RolloutLog {
            generation: generation(what, l.generation)?,
            outcome: l.outcome,
            why: l.why,
            replaced: l.replaced,
            started: self.instant(what, l.started)?,
            ended: l.ended.map(|t| self.instant(what, t)).transpose()?,
            canary: l.canary,
        })
    }
}
