//! Slots: the places for workers. A replacement takes the slot of the worker it replaces, so
//! `REGIMENT_WORKER_ID` stays 0..N-1.

use std::time::Instant;

use super::backoff::Backoff;
use super::ids::{Generation, WorkerId};
use crate::protocol::CriterionKind;

/// One place for a worker.
#[derive(Debug)]
pub(crate) struct Slot {
    /// The worker serving this slot, or starting to when the slot was empty.
    pub(crate) current: Option<WorkerId>,
    /// A replacement starting for `current`; it takes the slot when ready.
    pub(crate) successor: Option<WorkerId>,
    /// A replacement wanted but not started yet.
    pub(crate) pending: Option<Pending>,
    /// No spawn in this slot before then (the backoff timer). Cleared when it has passed.
    pub(crate) retry_at: Option<Instant>,
    pub(crate) backoff: Backoff,
    pub(crate) restarts: u64,
    pub(crate) last_reason: Option<String>,
    /// The generation of the last worker that took this slot (became ready in it), kept while
    /// the slot is empty after a crash: whether a rollout has reached this slot.
    pub(crate) reached: Option<Generation>,
    /// The worker drained before its replacement starts, because the memory budget has no room
    /// for both: the slot stays empty until it has exited.
    pub(crate) vacating: Option<Vacating>,
}

/// A replacement that drains the old worker first (see `memory`): the worker leaves its slot at
/// once, and the replacement starts in the empty slot once the worker has exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Vacating {
    pub(crate) old: WorkerId,
    /// What the replacement is for: counted, and spawned, when `old` has exited.
    pub(crate) pending: Pending,
}

/// What a worker is to its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotRole {
    /// The slot's worker: serving, or starting in an empty slot.
    Current,
    /// Starting to replace the current worker.
    Successor,
    /// On its way out (draining, killed, not needed, or its slot is gone).
    Leaving,
}

/// A replacement wanted in a slot but not started yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) reason: String,
    pub(crate) cause: Cause,
}

impl Pending {
    /// Who wants it: a rollout's own replacement, or a request that stands.
    pub(crate) fn origin(&self) -> Origin {
        match self.cause {
            Cause::Rollout => Origin::Rollout,
            Cause::RolloutAborted
            | Cause::Worker(_)
            | Cause::Unresponsive
            | Cause::Operator
            | Cause::MemoryBudget => Origin::Request,
        }
    }
}

/// Why a replacement is wanted, from a fixed set (the reason is free text): the metrics count
/// replacements by cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cause {
    /// A rolling restart deploys a new generation.
    Rollout,
    /// An aborted rollout's canary makes way for the good generation.
    RolloutAborted,
    /// The worker asked, for the reason it gave, on the criterion it named.
    Worker(CriterionKind),
    /// It stopped sending heartbeats.
    Unresponsive,
    /// An operator asked ([`crate::Handle::replace`]).
    Operator,
    /// The regiment's memory is over its budget, and this worker holds the most.
    MemoryBudget,
}

/// Who wants a replacement, as its [`Cause`] tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A rolling restart: dropped if the rollout is aborted.
    Rollout,
    /// The worker itself, the heartbeat timeout or an operator: stands until carried out.
    Request,
}

impl Slot {
    pub(crate) fn new(backoff: Backoff) -> Self {
        Self {
            current: None,
            successor: None,
            pending: None,
            retry_at: None,
            backoff,
            restarts: 0,
            last_reason: None,
            reached: None,
            vacating: None,
        }
    }

    /// Its backoff has passed, and no worker drained first is still leaving it.
    pub(crate) fn may_spawn(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|t| t <= now) && self.vacating.is_none()
    }

    pub(crate) fn role_of(&self, id: WorkerId) -> SlotRole {
        if self.current == Some(id) {
            SlotRole::Current
        } else if self.successor == Some(id) {
            SlotRole::Successor
        } else {
            SlotRole::Leaving
        }
    }
}
