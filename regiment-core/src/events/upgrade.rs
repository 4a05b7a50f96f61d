//! Upgrades of the master in place as the status and `regiment upgrade --wait` report them.

use serde::{Deserialize, Serialize};

/// An upgrade of the master in place: its number, how it went, and when.
///
/// ```no_run
/// # async fn upgrade(handle: regiment_core::Handle) {
/// use regiment_core::events::UpgradeOutcome;
/// // Asked of a running master: the number of the upgrade begun, or why none began.
/// match handle.upgrade().await {
///     Ok(number) => println!("upgrade {number} begun"),
///     Err(why) => eprintln!("no upgrade: {why}"),
/// }
/// // Its outcome, once known, is the status's last upgrade (of this master or the new one).
/// if let Some(u) = handle.status().last_upgrade {
///     assert!(u.outcome != UpgradeOutcome::Done || u.why.is_none());
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UpgradeRecord {
    /// The number of the upgrade, counted from the master's start across upgrades (1, 2, ...).
    pub number: u64,
    /// Under way, or how it ended.
    pub outcome: UpgradeOutcome,
    /// Why it was refused, rolled back or aborted.
    pub why: Option<String>,
    /// The generation the new master rolls out to its workers, once it does.
    pub generation: Option<u64>,
    /// When it began, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// When it ended, in milliseconds since the Unix epoch.
    pub ended_at_ms: Option<u64>,
}

/// How an upgrade went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeOutcome {
    /// Under way: the preflight, the exec, or the new master's rollout.
    InProgress,
    /// The new master runs, and every worker runs its build.
    Done,
    /// The new master runs, but the rollout of its build was aborted (a failing canary, workers
    /// that do not start, its deadline, a stop): the workers run the last good program.
    Aborted,
    /// The old master goes on untouched: the new program failed its preflight, the exec
    /// failed, or the master began stopping first.
    Refused,
    /// The new program was executed but could not take over (its options were refused, the
    /// handover could not be read, it panicked first): the master executed its previous
    /// program again, with the same state, and goes on as before.
    RolledBack,
}

impl UpgradeOutcome {
    /// The outcome as the metrics label it (`regiment_upgrades_total{outcome="rolled_back"}`).
    pub(crate) fn label(self) -> &'static str {
        match self {
            UpgradeOutcome::InProgress => "in_progress",
            UpgradeOutcome::Done => "done",
            UpgradeOutcome::Aborted => "aborted",
            UpgradeOutcome::Refused => "refused",
            UpgradeOutcome::RolledBack => "rolled_back",
        }
    }
}
