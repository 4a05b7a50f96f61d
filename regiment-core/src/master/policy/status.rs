//! The policy's part of the status snapshot: its books, as the public [`crate::Status`] shows
//! them. The driver adds what is its own (the master's pid, the listeners, the admin address).

use std::time::Instant;

use super::upgrade::UpgradeRecord;
use super::{Policy, WallClock, millis};
use crate::events::{ProcessMemory, RolloutRecord, SlotStatus, WorkerStatus};

/// The books at one instant, times given by a [`WallClock`]; the fields of [`crate::Status`]
/// that are the policy's, with the same meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyStatus {
    pub(crate) generation: u64,
    pub(crate) good_generation: u64,
    pub(crate) workers_wanted: usize,
    pub(crate) rollout: Option<u64>,
    pub(crate) last_rollout: Option<RolloutRecord>,
    pub(crate) last_upgrade: Option<UpgradeRecord>,
    pub(crate) stopping: bool,
    pub(crate) workers: Vec<WorkerStatus>,
    pub(crate) slots: Vec<SlotStatus>,
    /// The sum of PSS at the last reading, and the master's own part.
    pub(crate) memory_total: u64,
    pub(crate) master_memory: Option<ProcessMemory>,
}

impl Policy {
    /// A snapshot of the books at `now`, times given by `wall`.
    pub(crate) fn status(&self, now: Instant, wall: WallClock) -> PolicyStatus {
        let mut workers: Vec<WorkerStatus> = self
            .workers
            .values()
            .map(|w| WorkerStatus {
                slot: w.slot,
                pid: w.pid,
                generation: w.generation.0,
                state: w.phase.state(),
                age_ms: millis(now.saturating_duration_since(w.spawned_at)),
                rss: w.load.rss,
                requests: w.load.requests,
                in_flight: w.load.in_flight,
                responses_5xx: w.load.responses_5xx,
                failures: w.load.failures,
                latency_p50_us: w.load.latency.map(|l| l.p50_us),
                latency_p99_us: w.load.latency.map(|l| l.p99_us),
                silent_ms: w.silent_for(now).map(millis),
                replace_reason: w.replace_reason.clone(),
                program: w.program.clone(),
                memory: w.memory,
            })
            .collect();
        workers.sort_by_key(|w| (w.slot, w.pid));
        PolicyStatus {
            generation: self.generation_for(None, None).0,
            good_generation: self.rollouts.good.0,
            workers_wanted: self.slots.len(),
            rollout: self.rollouts.under_way.as_ref().map(|r| r.target.0),
            last_rollout: self.rollouts.last.as_ref().map(|log| log.record(wall)),
            last_upgrade: self.upgrades.last.as_ref().map(|log| log.record(wall)),
            stopping: self.stopping.is_some(),
            workers,
            slots: self
                .slots
                .iter()
                .enumerate()
                .map(|(i, s)| SlotStatus {
                    slot: i,
                    restarts: s.restarts,
                    last_restart_reason: s.last_reason.clone(),
                })
                .collect(),
            memory_total: self.memory.total,
            master_memory: self.memory.master,
        }
    }
}
