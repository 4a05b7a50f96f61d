//! The regiment's memory: what the driver reads of the master's and the workers' private
//! memory, and the budget rule that keeps their sum under the budget.

use std::time::Instant;

use super::Policy;
use super::ids::WorkerId;
use crate::events::ProcessMemory;

/// One reading of the regiment's memory, by the driver, off the runtime's threads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MemoryReading {
    /// The master's own; `None` where it could not be read.
    pub(crate) master: Option<ProcessMemory>,
    /// Every worker process read (an exited one is left out).
    pub(crate) workers: Vec<(WorkerId, ProcessMemory)>,
}

/// What the policy knows of the regiment's memory.
#[derive(Debug, Default)]
pub(crate) struct MemoryBooks {
    /// The sum of PSS at the last reading (master and the workers in the books), bytes.
    pub(crate) total: u64,
    /// The master's own at the last reading.
    pub(crate) master: Option<ProcessMemory>,
}

impl Policy {
    pub(super) fn on_memory(&mut self, reading: MemoryReading, _now: Instant) {
        let _ = reading;
    }
}
