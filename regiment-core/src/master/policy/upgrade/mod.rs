//! The master upgrades itself in place (issue 23): it re-executes its own new binary, same pid,
//! keeping its listeners, its workers and their channels. This is the policy's half, a stage
//! like a rollout:
//!
//! 1. [`Policy::begin_upgrade`] (one at a time, none while stopping) asks the driver for the
//!    handover ([`super::Effect::Upgrade`]). The driver checks the new binary (its preflight),
//!    takes [`Policy::snapshot`] and executes it; if it cannot, [`Policy::upgrade_refused`] ends
//!    the stage, refused, and the old master goes on as before.
//! 2. The new master rebuilds the policy with [`Policy::restore`]: the upgrade is still under
//!    way in its books. [`Policy::upgraded`] then rolls the workers to the new build by a
//!    rolling restart, with every gate of one (canary, health, last good program).
//! 3. The upgrade ends as that rollout ends (done, or aborted: the workers keep running the last
//!    good program). A rolling restart that supersedes it deploys the same new build: the
//!    upgrade follows the newer rollout.
//!
//! The books ([`Upgrades`]) are here; the rules in `stage.rs`.

mod stage;

use std::time::Instant;

use super::ids::Generation;
use super::wall_clock::WallClock;
pub(crate) use crate::events::{UpgradeOutcome, UpgradeRecord};

/// The upgrades' books.
#[derive(Debug, Default)]
pub(crate) struct Upgrades {
    /// The number of the last upgrade begun (0: none yet), carried from master to master.
    pub(crate) count: u64,
    pub(crate) under_way: Option<Upgrade>,
    /// The last one begun, under way or ended, for the status.
    pub(crate) last: Option<UpgradeLog>,
}

/// An upgrade under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Upgrade {
    pub(crate) number: u64,
    pub(crate) stage: UpgradeStage,
}

/// Where an upgrade is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpgradeStage {
    /// Asked of the driver: its preflight, the snapshot, the exec. Still so in the new master's
    /// books until [`Policy::upgraded`] is called.
    ///
    /// [`Policy::upgraded`]: super::Policy::upgraded
    Handover,
    /// The new master rolls the workers to its build: the rollout to this generation.
    Rolling(Generation),
}

/// The record of an upgrade, on the policy's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpgradeLog {
    pub(crate) number: u64,
    pub(crate) outcome: UpgradeOutcome,
    pub(crate) why: Option<String>,
    pub(crate) started: Instant,
    pub(crate) ended: Option<Instant>,
    /// The generation the new master rolls out, once it does.
    pub(crate) generation: Option<Generation>,
}

impl UpgradeLog {
    /// The record the status shows, times given by `wall`.
    pub(crate) fn record(&self, wall: WallClock) -> UpgradeRecord {
        UpgradeRecord {
            number: self.number,
            outcome: self.outcome,
            why: self.why.clone(),
            generation: self.generation.map(|g| g.0),
            started_at_ms: wall.unix_ms(self.started),
            ended_at_ms: self.ended.map(|t| wall.unix_ms(t)),
        }
    }
}
