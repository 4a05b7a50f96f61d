//! What the policy counted since it started, for the metrics (quinn-proto's `ConnectionStats`):
//! the policy counts as it decides, the driver hands [`Stats`] to the metrics, which never look
//! inside an effect.

use std::collections::BTreeMap;

use super::slot::{Cause, Pending};
use super::upgrade::UpgradeOutcome;
use super::worker::KillReason;
use crate::events::RolloutOutcome;
use crate::protocol::CriterionKind;

/// The policy's counters. Every key comes from a fixed set (a replacement's label, a kill's
/// reason): free text never becomes one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Rollouts that completed.
    pub(crate) rollouts_done: u64,
    /// Rollouts aborted (failed, refused canary, deadline, stop).
    pub(crate) rollouts_aborted: u64,
    /// Rollouts a newer one took over.
    pub(crate) rollouts_superseded: u64,
    /// Upgrades of the master that ended so ([`UpgradeOutcome`]).
    pub(crate) upgrades_done: u64,
    pub(crate) upgrades_aborted: u64,
    pub(crate) upgrades_refused: u64,
    pub(crate) upgrades_rolled_back: u64,
    /// Workers that took their slot from the worker they replaced, by
    /// [`replacement_label`].
    pub(crate) replacements: BTreeMap<&'static str, u64>,
    /// SIGKILLs the policy asked for, by reason.
    pub(crate) kills: BTreeMap<KillReason, u64>,
    /// Workers the kernel's OOM killer killed (as the driver found out), whatever their phase.
    pub(crate) oom_kills: u64,
    /// Ready workers that exited unasked.
    pub(crate) crashes: u64,
    /// New workers that failed before they were ready (or could not be spawned).
    pub(crate) start_failures: u64,
}

impl Stats {
    /// A worker took its slot from the one it replaced, for `pending`.
    pub(crate) fn count_replacement(&mut self, pending: &Pending) {
        *self
            .replacements
            .entry(replacement_label(pending))
            .or_default() += 1;
    }

    pub(crate) fn count_kill(&mut self, why: KillReason) {
        *self.kills.entry(why).or_default() += 1;
    }

    pub(crate) fn count_oom_kill(&mut self) {
        self.oom_kills += 1;
    }

    pub(crate) fn count_crash(&mut self) {
        self.crashes += 1;
    }

    pub(crate) fn count_start_failure(&mut self) {
        self.start_failures += 1;
    }

    /// A rollout ended so (one still in progress is no end).
    pub(crate) fn count_rollout(&mut self, outcome: RolloutOutcome) {
        match outcome {
            RolloutOutcome::Done => self.rollouts_done += 1,
            RolloutOutcome::Aborted => self.rollouts_aborted += 1,
            RolloutOutcome::Superseded => self.rollouts_superseded += 1,
            RolloutOutcome::InProgress => {}
        }
    }

    /// An upgrade ended so (one still in progress is no end).
    pub(crate) fn count_upgrade(&mut self, outcome: UpgradeOutcome) {
        match outcome {
            UpgradeOutcome::Done => self.upgrades_done += 1,
            UpgradeOutcome::Aborted => self.upgrades_aborted += 1,
            UpgradeOutcome::Refused => self.upgrades_refused += 1,
            UpgradeOutcome::RolledBack => self.upgrades_rolled_back += 1,
            UpgradeOutcome::InProgress => {}
        }
    }
}

/// Every value [`replacement_label`] gives: the labels the metrics list.
pub(crate) const REPLACEMENT_LABELS: [&str; 10] = [
    "rollout",
    "rollout_aborted",
    "unresponsive",
    "operator",
    "worker",
    "request_count",
    "memory",
    "max_age",
    "custom",
    "memory_budget",
];

/// The label of a replacement, as `regiment_replacements_total{reason}` shows it: its cause;
/// for a worker's own request, the criterion it named: `worker` when it named none (the
/// application asked by itself), `custom` for any of the application's own criteria, whatever
/// it calls them (a name a worker chose never becomes a label). One of the fixed values the
/// metrics list.
pub(crate) fn replacement_label(pending: &Pending) -> &'static str {
    match &pending.cause {
        Cause::Rollout => "rollout",
        Cause::RolloutAborted => "rollout_aborted",
        Cause::Unresponsive => "unresponsive",
        Cause::Operator => "operator",
        Cause::MemoryBudget => "memory_budget",
        Cause::Worker(criterion) => match criterion {
            CriterionKind::RequestCount => "request_count",
            CriterionKind::MemoryFootprint => "memory",
            CriterionKind::MaxAge => "max_age",
            CriterionKind::Custom { .. } => "custom",
            CriterionKind::Unspecified => "worker",
        },
    }
}
