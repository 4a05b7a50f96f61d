//! The policy's state as the old master writes it and the new one reads it: format version
//! [`STATE_VERSION`], in JSON.
//!
//! These types mirror the books rather than being the books: the format is a contract between
//! two builds, so a change inside the policy (a field renamed, a phase split) must not change it
//! by accident. Any change to a type here is a change of the format, and bumps the version.
//! Every instant is an [`Offset`] from the snapshot's `now`; every unknown field is refused
//! (a field this build does not know is a format change someone forgot to version).
//!
//! The public types among them ([`ProgramId`], [`CriterionKind`], [`Answers`], ...) are written
//! as the status and the events write them: that form is a public contract already.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::events::{
    AbandonedDrain, Answers, CanaryVerdict, ProcessMemory, ProgramId, RolloutOutcome,
};
use crate::protocol::CriterionKind;

/// The version of the format this build writes. 2 added the memory books (`memory`, and a
/// worker's and a slot's memory fields) and the count of OOM kills.
pub(crate) const STATE_VERSION: u32 = 2;

/// The oldest version this build reads: version 1 is version 2 without the memory fields,
/// which default (nothing read yet, no budget replacement under way).
pub(crate) const OLDEST_READ: u32 = 1;

/// An instant, as nanoseconds from the snapshot's `now`: negative in the past (when a worker
/// became ready), positive in the future (a deadline). Rebuilt on the new master's `now`, so a
/// deadline that had 3 s left still has 3 s left, less the time the handover took. Saturated at
/// about 292 years either way (a deadline that far off is as good as none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Offset(pub(crate) i64);

/// Everything the policy holds, at one instant, with no effect left to carry out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyState {
    /// [`STATE_VERSION`] when written.
    pub(crate) version: u32,
    /// The worker count the old master was configured with; its slots may be more or fewer
    /// (scaled at runtime). A new master configured with another count scales to it.
    pub(crate) configured_workers: usize,
    pub(crate) workers: Vec<WorkerState>,
    pub(crate) slots: Vec<SlotState>,
    /// Slots with a pending replacement, in the order asked.
    pub(crate) queue: Vec<usize>,
    pub(crate) next_id: u64,
    pub(crate) rollouts: RolloutsState,
    pub(crate) upgrades: UpgradesState,
    pub(crate) stopping: Option<StoppingState>,
    pub(crate) stats: StatsState,
    /// Since version 2.
    #[serde(default)]
    pub(crate) memory: MemoryState,
}

/// The memory books (see `policy::memory`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemoryState {
    pub(crate) total: u64,
    pub(crate) growth: u64,
    pub(crate) master: Option<ProcessMemory>,
    pub(crate) recent_new: Vec<u64>,
    pub(crate) smallest: Option<u64>,
    /// The worker a budget replacement replaces, and its slot.
    pub(crate) replacing: Option<(u64, usize)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkerState {
    pub(crate) id: u64,
    pub(crate) slot: usize,
    pub(crate) generation: u64,
    pub(crate) pid: u32,
    pub(crate) program: Option<ProgramId>,
    pub(crate) phase: PhaseState,
    pub(crate) spawned_at: Offset,
    pub(crate) spawned_for: Option<PendingState>,
    pub(crate) replace_reason: Option<String>,
    pub(crate) replace_criterion: CriterionKind,
    pub(crate) last_heard: Offset,
    pub(crate) heartbeats: HeartbeatsState,
    pub(crate) load: LoadState,
    pub(crate) invalid_messages: u64,
    pub(crate) abandoned_drain: Option<AbandonedDrain>,
    /// Since version 2.
    #[serde(default)]
    pub(crate) memory: Option<ProcessMemory>,
    /// Since version 2; a worker of version 1 counts as sized (it is no new worker).
    #[serde(default = "sized_by_default")]
    pub(crate) sized: bool,
}

fn sized_by_default() -> bool {
    true
}

/// A worker's phase. There is no `spawning`: a snapshot is taken with every spawn answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum PhaseState {
    Starting { deadline: Offset },
    Ready { since: Offset },
    Draining { since: Offset, deadline: Offset },
    Killed { why: KillReasonState, at: Offset },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum KillReasonState {
    StartTimeout,
    DrainDeadline,
    ForcedStop,
    IpcSetupFailed,
    /// Since version 2.
    Unresponsive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum HeartbeatsState {
    NoneYet,
    Seen,
    Silent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoadState {
    pub(crate) rss: u64,
    pub(crate) requests: u64,
    pub(crate) in_flight: u64,
    pub(crate) responses_5xx: u64,
    pub(crate) failures: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PendingState {
    pub(crate) reason: String,
    pub(crate) cause: CauseState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum CauseState {
    Rollout,
    RolloutAborted,
    Worker { criterion: CriterionKind },
    Unresponsive,
    Operator,
    MemoryBudget,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SlotState {
    pub(crate) current: Option<u64>,
    pub(crate) successor: Option<u64>,
    pub(crate) pending: Option<PendingState>,
    pub(crate) retry_at: Option<Offset>,
    pub(crate) backoff: BackoffState,
    pub(crate) restarts: u64,
    pub(crate) last_reason: Option<String>,
    pub(crate) reached: Option<u64>,
    /// Since version 2: the worker drained first, and the replacement it makes way for.
    #[serde(default)]
    pub(crate) vacating: Option<(u64, PendingState)>,
}

/// Where a slot's backoff is (its bounds are the new master's options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackoffState {
    pub(crate) next: Duration,
    pub(crate) last_retry: Option<Offset>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RolloutsState {
    pub(crate) newest: u64,
    pub(crate) good: u64,
    pub(crate) under_way: Option<RolloutState>,
    pub(crate) last: Option<RolloutLogState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RolloutState {
    pub(crate) target: u64,
    pub(crate) failures: u32,
    pub(crate) early_crashes: u32,
    pub(crate) stage: StageState,
    pub(crate) started: Offset,
    pub(crate) last_reached: Option<Offset>,
    /// `None`: so far off that it could not be written (as in the books).
    pub(crate) deadline: Option<Offset>,
    pub(crate) timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum StageState {
    Canary,
    Window {
        until: Offset,
        /// Every worker's figures when the window opened, by worker id.
        baseline: Vec<(u64, Answers)>,
        /// What the canary's workers that exited in the window had answered in it.
        gone_canary: Answers,
        /// Likewise, the good generation's.
        gone_good: Answers,
    },
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RolloutLogState {
    pub(crate) generation: u64,
    pub(crate) outcome: RolloutOutcome,
    pub(crate) why: Option<String>,
    pub(crate) replaced: u64,
    pub(crate) started: Offset,
    pub(crate) ended: Option<Offset>,
    pub(crate) canary: Option<CanaryVerdict>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpgradesState {
    pub(crate) count: u64,
    pub(crate) under_way: Option<UpgradeState>,
    pub(crate) last: Option<UpgradeLogState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpgradeState {
    pub(crate) number: u64,
    pub(crate) stage: UpgradeStageState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum UpgradeStageState {
    Handover,
    Rolling { generation: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpgradeLogState {
    pub(crate) number: u64,
    pub(crate) outcome: UpgradeOutcomeState,
    pub(crate) why: Option<String>,
    pub(crate) started: Offset,
    pub(crate) ended: Option<Offset>,
    pub(crate) generation: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum UpgradeOutcomeState {
    InProgress,
    Done,
    Aborted,
    Refused,
    RolledBack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum StoppingState {
    Graceful,
    Forced,
    Done,
}

/// The policy's counters: the new master's metrics go on from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatsState {
    pub(crate) rollouts_done: u64,
    pub(crate) rollouts_aborted: u64,
    pub(crate) rollouts_superseded: u64,
    pub(crate) upgrades_done: u64,
    pub(crate) upgrades_aborted: u64,
    pub(crate) upgrades_refused: u64,
    pub(crate) upgrades_rolled_back: u64,
    /// By the labels of `regiment_replacements_total{reason}`.
    pub(crate) replacements: BTreeMap<String, u64>,
    pub(crate) kills: BTreeMap<KillReasonState, u64>,
    /// Since version 2 (0 from a version 1 state: that build counted none).
    #[serde(default)]
    pub(crate) oom_kills: u64,
    pub(crate) crashes: u64,
    pub(crate) start_failures: u64,
}
