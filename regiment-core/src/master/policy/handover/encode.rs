//! The books, written as a [`PolicyState`]: every instant as an offset from `now`.

use std::time::Instant;

use super::super::rollout::{Rollout, RolloutLog, Stage, Tally};
use super::super::slot::{Cause, Pending, Slot};
use super::super::upgrade::{UpgradeLog, UpgradeOutcome, UpgradeStage};
use super::super::worker::{Heartbeats, KillReason, Phase, Worker};
use super::super::{Policy, Stopping};
use super::state::*;

/// The policy's state at `now` (its effects all carried out: see [`Policy::snapshot`]).
pub(super) fn state(p: &Policy, now: Instant) -> PolicyState {
    PolicyState {
        version: STATE_VERSION,
        configured_workers: p.config.workers,
        workers: (p.workers.iter())
            .map(|(id, w)| worker(id.0, w, now))
            .collect(),
        slots: p.slots.iter().map(|s| slot(s, now)).collect(),
        queue: p.queue.iter().copied().collect(),
        next_id: p.next_id,
        rollouts: RolloutsState {
            newest: p.rollouts.newest.0,
            good: p.rollouts.good.0,
            under_way: p.rollouts.under_way.as_ref().map(|r| rollout(r, now)),
            last: p.rollouts.last.as_ref().map(|log| rollout_log(log, now)),
        },
        upgrades: UpgradesState {
            count: p.upgrades.count,
            under_way: p.upgrades.under_way.map(|u| UpgradeState {
                number: u.number,
                stage: match u.stage {
                    UpgradeStage::Handover => UpgradeStageState::Handover,
                    UpgradeStage::Rolling(g) => UpgradeStageState::Rolling { generation: g.0 },
                },
            }),
            last: p.upgrades.last.as_ref().map(|log| upgrade_log(log, now)),
        },
        stopping: p.stopping.map(|s| match s {
            Stopping::Graceful => StoppingState::Graceful,
            Stopping::Forced => StoppingState::Forced,
            Stopping::Done => StoppingState::Done,
        }),
        stats: StatsState {
            rollouts_done: p.stats.rollouts_done,
            rollouts_aborted: p.stats.rollouts_aborted,
            rollouts_superseded: p.stats.rollouts_superseded,
            upgrades_done: p.stats.upgrades_done,
            upgrades_aborted: p.stats.upgrades_aborted,
            upgrades_refused: p.stats.upgrades_refused,
            upgrades_rolled_back: p.stats.upgrades_rolled_back,
            replacements: (p.stats.replacements.iter())
                .map(|(label, n)| ((*label).to_owned(), *n))
                .collect(),
            kills: (p.stats.kills.iter())
                .map(|(why, n)| (kill_reason(*why), *n))
                .collect(),
            oom_kills: p.stats.oom_kills,
            crashes: p.stats.crashes,
            start_failures: p.stats.start_failures,
        },
        memory: MemoryState {
            total: p.memory.total,
            growth: p.memory.growth,
            master: p.memory.master,
            recent_new: p.memory.recent_new.iter().copied().collect(),
            smallest: p.memory.smallest,
            replacing: p.memory.replacing.map(|r| (r.old.0, r.slot)),
        },
    }
}

/// `t` as nanoseconds from `now`, saturated (see [`Offset`]).
pub(super) fn offset(t: Instant, now: Instant) -> Offset {
    let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    if t >= now {
        Offset(nanos(t - now))
    } else {
        Offset(-nanos(now - t))
    }
}

fn worker(id: u64, w: &Worker, now: Instant) -> WorkerState {
    let at = |t: Instant| offset(t, now);
    WorkerState {
        id,
        slot: w.slot,
        generation: w.generation.0,
        pid: w.pid,
        program: w.program.clone(),
        phase: match w.phase {
            // Refused by `Policy::snapshot` before it gets here.
            Phase::Spawning => unreachable!("a snapshot is taken with every spawn answered"),
            Phase::Starting { deadline } => PhaseState::Starting {
                deadline: at(deadline),
            },
            Phase::Ready { since } => PhaseState::Ready { since: at(since) },
            Phase::Draining { since, deadline } => PhaseState::Draining {
                since: at(since),
                deadline: at(deadline),
            },
            Phase::Killed { why, at: t } => PhaseState::Killed {
                why: kill_reason(why),
                at: at(t),
            },
        },
        spawned_at: at(w.spawned_at),
        spawned_for: w.spawned_for.as_ref().map(pending),
        replace_reason: w.replace_reason.clone(),
        replace_criterion: w.replace_criterion.clone(),
        last_heard: at(w.last_heard),
        heartbeats: match w.heartbeats {
            Heartbeats::NoneYet => HeartbeatsState::NoneYet,
            Heartbeats::Seen => HeartbeatsState::Seen,
            Heartbeats::Silent => HeartbeatsState::Silent,
        },
        load: LoadState {
            rss: w.load.rss,
            requests: w.load.requests,
            in_flight: w.load.in_flight,
            responses_5xx: w.load.responses_5xx,
            failures: w.load.failures,
        },
        invalid_messages: w.invalid_messages,
        abandoned_drain: w.abandoned_drain,
        memory: w.memory,
        sized: w.sized,
    }
}

fn kill_reason(why: KillReason) -> KillReasonState {
    match why {
        KillReason::StartTimeout => KillReasonState::StartTimeout,
        KillReason::DrainDeadline => KillReasonState::DrainDeadline,
        KillReason::ForcedStop => KillReasonState::ForcedStop,
        KillReason::IpcSetupFailed => KillReasonState::IpcSetupFailed,
        KillReason::Unresponsive => KillReasonState::Unresponsive,
    }
}

fn pending(p: &Pending) -> PendingState {
    PendingState {
        reason: p.reason.clone(),
        cause: match &p.cause {
            Cause::Rollout => CauseState::Rollout,
            Cause::RolloutAborted => CauseState::RolloutAborted,
            Cause::Worker(criterion) => CauseState::Worker {
                criterion: criterion.clone(),
            },
            Cause::Unresponsive => CauseState::Unresponsive,
            Cause::Operator => CauseState::Operator,
            Cause::MemoryBudget => CauseState::MemoryBudget,
        },
    }
}

fn slot(s: &Slot, now: Instant) -> SlotState {
    SlotState {
        current: s.current.map(|id| id.0),
        successor: s.successor.map(|id| id.0),
        pending: s.pending.as_ref().map(pending),
        retry_at: s.retry_at.map(|t| offset(t, now)),
        backoff: BackoffState {
            next: s.backoff.next,
            last_retry: s.backoff.last_retry.map(|t| offset(t, now)),
        },
        restarts: s.restarts,
        last_reason: s.last_reason.clone(),
        reached: s.reached.map(|g| g.0),
        vacating: s.vacating.as_ref().map(|v| (v.old.0, pending(&v.pending))),
    }
}

fn rollout(r: &Rollout, now: Instant) -> RolloutState {
    let at = |t: Instant| offset(t, now);
    RolloutState {
        target: r.target.0,
        failures: r.failures,
        early_crashes: r.early_crashes,
        stage: match &r.stage {
            Stage::Canary => StageState::Canary,
            Stage::Window(w) => {
                let (Tally(gone_canary), Tally(gone_good)) = w.gone;
                StageState::Window {
                    until: at(w.until),
                    baseline: (w.baseline.iter())
                        .map(|(id, Tally(answers))| (id.0, *answers))
                        .collect(),
                    gone_canary,
                    gone_good,
                }
            }
            Stage::Full => StageState::Full,
        },
        started: at(r.started),
        last_reached: r.last_reached.map(at),
        deadline: r.deadline.map(at),
        timeout: r.timeout,
    }
}

fn rollout_log(log: &RolloutLog, now: Instant) -> RolloutLogState {
    RolloutLogState {
        generation: log.generation.0,
        outcome: log.outcome,
        why: log.why.clone(),
        replaced: log.replaced,
        started: offset(log.started, now),
        ended: log.ended.map(|t| offset(t, now)),
        canary: log.canary,
    }
}

fn upgrade_log(log: &UpgradeLog, now: Instant) -> UpgradeLogState {
    UpgradeLogState {
        number: log.number,
        outcome: match log.outcome {
            UpgradeOutcome::InProgress => UpgradeOutcomeState::InProgress,
            UpgradeOutcome::Done => UpgradeOutcomeState::Done,
            UpgradeOutcome::Aborted => UpgradeOutcomeState::Aborted,
            UpgradeOutcome::Refused => UpgradeOutcomeState::Refused,
            UpgradeOutcome::RolledBack => UpgradeOutcomeState::RolledBack,
        },
        why: log.why.clone(),
        started: offset(log.started, now),
        ended: log.ended.map(|t| offset(t, now)),
        generation: log.generation.map(|g| g.0),
    }
}
