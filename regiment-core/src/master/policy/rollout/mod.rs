//! Rolling restarts: a new generation replaces every slot's worker, new before old; it ends
//! done, or aborted when its workers keep failing (rule 2), when its canary is refused, when its
//! deadline passes, when a newer one supersedes it, or when the master stops.
//!
//! A rollout may start with a canary ([`CanaryConfig`]): a few workers of the new generation
//! serve beside the old one for a window, and the rollout goes on to every slot only if they
//! failed no more requests than the old generation by more than a margin.
//!
//! A rollout is done once every slot has run a worker of its generation to ready, is served by
//! one, and the settle time has passed since the last of them did. What happens to a slot after
//! that (its new worker asks to be replaced after its 10 000th request, and its successor runs
//! the same generation) is the worker's own business: it neither restarts the settle clock nor
//! counts as one of the rollout's replacements. Otherwise a service whose workers recycle every
//! few seconds could never finish a deploy. A crash is not a recycle: the slot's respawn is
//! watched for the settle time again.
//!
//! This file holds the books ([`Rollouts`]: the good generation, the rollout under way and its
//! stage, the record of the last one); `log.rs` the record, `window.rs` the canary's window and
//! its tallies. The rules are the policy's methods: `start_end.rs` (a rollout starts, completes,
//! is aborted), `progress.rs` (it reaches the slots), `canary_stage.rs` (its canary is judged).
//! The books import none of the rules' files, so the policy holds them without an import
//! circle.

mod canary_stage;
mod log;
mod progress;
mod start_end;
mod window;

use std::time::{Duration, Instant};

use super::ids::Generation;
use super::slot::{Cause, Pending};
pub(crate) use log::RolloutLog;
pub(crate) use window::CanaryConfig;
pub(crate) use window::{Tally, Window};

/// The rollouts' books.
#[derive(Debug)]
pub(crate) struct Rollouts {
    /// The newest generation number handed out.
    pub(crate) newest: Generation,
    /// The last generation whose rollout completed: what every spawn runs outside a rollout.
    pub(crate) good: Generation,
    pub(crate) under_way: Option<Rollout>,
    /// The last one started, under way or ended, for the status.
    pub(crate) last: Option<RolloutLog>,
}

impl Rollouts {
    /// Before any rollout: the first generation is the good one.
    pub(crate) fn new() -> Self {
        Self {
            newest: Generation::FIRST,
            good: Generation::FIRST,
            under_way: None,
            last: None,
        }
    }

    /// The rollout under way's target and canary window, while the window is open.
    pub(in crate::master::policy) fn window_mut(&mut self) -> Option<(Generation, &mut Window)> {
        match &mut self.under_way {
            Some(Rollout {
                target,
                stage: Stage::Window(window),
                ..
            }) => Some((*target, window)),
            _ => None,
        }
    }
}

/// A rolling restart under way.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rollout {
    pub(crate) target: Generation,
    /// Consecutive failed starts of target-generation workers.
    pub(in crate::master::policy) failures: u32,
    /// Target-generation workers that crashed soon after they were ready (within the backoff's
    /// healthy period). Not reset by a later ready: a binary that dies a second after it is
    /// ready would otherwise replace every old worker with a crash loop.
    pub(in crate::master::policy) early_crashes: u32,
    pub(crate) stage: Stage,
    pub(in crate::master::policy) started: Instant,
    /// When the last slot the rollout reached got its first ready worker of the generation.
    pub(in crate::master::policy) last_reached: Option<Instant>,
    /// Aborted if still under way then (`None`: so far off that it cannot be written).
    pub(in crate::master::policy) deadline: Option<Instant>,
    /// The time it was given, for the reason it is aborted with.
    pub(in crate::master::policy) timeout: Duration,
}

/// Where a rollout is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stage {
    /// Replacing the canary's workers, and no other.
    Canary,
    /// The canary serves beside the old generation until the window closes.
    Window(Window),
    /// Every slot.
    Full,
}

/// How a worker took its slot, when it became ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taking {
    /// From the worker it replaces, which drains now.
    FromPredecessor,
    /// An empty slot: the slot's first worker, or the one after a crash.
    EmptySlot,
}

/// A rollout's own replacement, deploying `target`.
pub(crate) fn rollout_pending(target: Generation) -> Pending {
    Pending {
        reason: format!("rolling restart to generation {target}"),
        cause: Cause::Rollout,
    }
}
