//! The record of a rollout, kept after it ended for the status and for whoever waits for it.

use std::time::Instant;

use super::super::ids::Generation;
use super::super::wall_clock::WallClock;
use crate::events::{CanaryVerdict, RolloutOutcome, RolloutRecord};

/// The record of a rollout, on the policy's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RolloutLog {
    pub(crate) generation: Generation,
    pub(crate) outcome: RolloutOutcome,
    pub(crate) why: Option<String>,
    pub(crate) replaced: u64,
    pub(crate) started: Instant,
    pub(crate) ended: Option<Instant>,
    /// How its canary was judged, once it was.
    pub(crate) canary: Option<CanaryVerdict>,
}

impl RolloutLog {
    /// A rollout to `generation` that started at `started`.
    pub(crate) fn started(generation: Generation, started: Instant) -> Self {
        Self {
            generation,
            outcome: RolloutOutcome::InProgress,
            why: None,
            replaced: 0,
            started,
            ended: None,
            canary: None,
        }
    }

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
