//! The regiment's memory: what the driver reads of the master's and the workers' private
//! memory ([`MemoryReading`]), and the budget rule that keeps their sum under the budget
//! (`budget`), new workers sized from recent ones (`room`).
//!
//! The sum is of PSS (each page the regiment shares counted once: what the regiment holds);
//! workers are ranked, and new ones sized, by USS (what a worker's exit gives back, and about
//! what one more worker adds: its shared pages are resident already). Only workers in the books
//! count: a reading taken just before an exit was booked does not count the exited worker.
//!
//! The rules, when a budget is set:
//! 1. when the sum, or the sum it heads for by the next reading (the processes growing as they
//!    grew since the reading before: a leak), exceeds the budget, the worker with the most private memory is replaced (reason
//!    `memory-budget: ...`); one such replacement at a time, until the worker it replaces has
//!    exited and the new worker of its slot serves;
//! 2. a replacement other than a rollout's starts its new worker first only when the headroom
//!    holds one more worker of the size recent new workers reached; otherwise it drains the
//!    old worker first, and the new one starts in the emptied slot once the old one exited
//!    (the `Draining` event says so). Those drained first count against `max_surge` as new
//!    workers starting do.

mod budget;
mod room;

use std::collections::VecDeque;

use super::Policy;
use super::ids::WorkerId;
use crate::events::ProcessMemory;

pub(crate) use room::Room;

/// One reading of the regiment's memory, by the driver, off the runtime's threads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MemoryReading {
    /// The master's own; `None` where it could not be read.
    pub(crate) master: Option<ProcessMemory>,
    /// Every worker process read (an exited one is left out).
    pub(crate) workers: Vec<(WorkerId, ProcessMemory)>,
}

/// How many recent new workers size the next one.
const RECENT_NEW_WORKERS: usize = 4;

/// What the policy knows of the regiment's memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MemoryBooks {
    /// The sum of PSS at the last reading (master and the workers in the books), bytes.
    pub(crate) total: u64,
    /// How much the processes read at the last reading and at the one before grew in
    /// between, each counted when it grew (a process that shrank gives none back): what the
    /// next reading is expected to add.
    pub(crate) growth: u64,
    /// The master's own at the last reading.
    pub(crate) master: Option<ProcessMemory>,
    /// Private memory (USS) of the last new workers at their first reading once ready, newest
    /// last.
    pub(crate) recent_new: VecDeque<u64>,
    /// The smallest worker of the last reading that read any (USS): the size of a new worker
    /// until one was read once ready.
    pub(crate) smallest: Option<u64>,
    /// The budget replacement under way, if any.
    pub(crate) replacing: Option<BudgetReplacement>,
}

/// A replacement the budget asked for: under way until `old` has exited and a worker of `slot`
/// serves again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BudgetReplacement {
    pub(crate) old: WorkerId,
    pub(crate) slot: usize,
}

impl Policy {
    pub(super) fn on_memory(&mut self, reading: MemoryReading) {
        let mut total = reading.master.map_or(0, |m| m.pss);
        // What the processes read twice grew by: a process that appeared (a spawn) is no
        // growth to expect again.
        let mut growth = grown(self.memory.master, reading.master);
        if let Some(smallest) = reading.workers.iter().map(|(_, m)| m.uss).min() {
            self.memory.smallest = Some(smallest);
        }
        for (id, memory) in reading.workers {
            let Some(w) = self.workers.get_mut(&id) else {
                continue; // its exit was booked after the reading
            };
            growth = growth.saturating_add(grown(w.memory, Some(memory)));
            w.memory = Some(memory);
            total = total.saturating_add(memory.pss);
            if w.is_ready() && !w.sized {
                w.sized = true;
                let recent = &mut self.memory.recent_new;
                recent.push_back(memory.uss);
                if recent.len() > RECENT_NEW_WORKERS {
                    recent.pop_front();
                }
            }
        }
        let books = &mut self.memory;
        books.growth = growth;
        books.total = total;
        books.master = reading.master;
        self.keep_to_budget();
    }

    /// The last reading's sum, plus its growth again: what the next reading is headed for.
    fn headed_for(&self) -> u64 {
        self.memory.total.saturating_add(self.memory.growth)
    }
}

/// How much a process's PSS grew between two readings of it (0 if it shrank, or was not read
/// both times).
fn grown(before: Option<ProcessMemory>, now: Option<ProcessMemory>) -> u64 {
    match (before, now) {
        (Some(before), Some(now)) => now.pss.saturating_sub(before.pss),
        _ => 0,
    }
}

/// `205.3 MB`: bytes as events write them, in MB of 2^20 bytes as `MemoryBudget::mb` and
/// `MemoryFootprint::mb` count them.
pub(super) fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1u64 << 20) as f64)
}
