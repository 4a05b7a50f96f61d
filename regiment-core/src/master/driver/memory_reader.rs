//! The driver's side of the memory budget: the master's and every worker's private memory,
//! read about once a second on a blocking thread and handed to the policy
//! ([`Input::Memory`]).
//!
//! A reading walks each process's page tables in the kernel (`/proc/PID/smaps_rollup`): 41 µs
//! for a small worker, about 1 ms per 200 MiB, up to 9 ms per GiB (BENCHMARKS.md "Sampling
//! private memory"). That is why it runs off the runtime's threads, and why the interval
//! stretches to a hundred times the last reading's duration: the master spends at most 1 % of
//! a core on it, however large the workers grow.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::super::policy::{MemoryReading, WorkerId};
use crate::events::ProcessMemory;
use crate::memory_sample::{MemorySampler, PrivateMemory, SampleError};

/// How often the memory is read, at most.
pub(super) const READ_EVERY: Duration = Duration::from_secs(1);

/// A reading may take this share of a core at most: the interval is at least this many times
/// the last reading's duration.
const INTERVAL_PER_READING_TIME: u32 = 100;

/// Reads the regiment's memory in turn: idle until the next reading is due, then reading on a
/// blocking thread.
pub(super) struct MemoryReader {
    state: ReaderState,
}

enum ReaderState {
    /// The next reading is due at `at`.
    Idle { at: Instant, sampler: MemorySampler },
    /// A reading under way on a blocking thread.
    Reading(JoinHandle<Taken>),
    /// No reading any more: this system cannot give one (said once, at the first).
    Off,
}

/// A reading done, and the sampler back for the next one.
pub(super) struct Taken {
    reading: MemoryReading,
    took: Duration,
    sampler: MemorySampler,
    unsupported: bool,
}

impl MemoryReader {
    /// The first reading is due at once.
    pub(super) fn new(now: Instant) -> Self {
        Self {
            state: ReaderState::Idle {
                at: now,
                sampler: MemorySampler::new(),
            },
        }
    }

    /// When the next reading is due, while none is under way.
    pub(super) fn due(&self) -> Option<Instant> {
        match self.state {
            ReaderState::Idle { at, .. } => Some(at),
            ReaderState::Reading(_) | ReaderState::Off => None,
        }
    }

    pub(super) fn is_reading(&self) -> bool {
        matches!(self.state, ReaderState::Reading(_))
    }

    /// Starts a reading of the master and of the `workers` (asked only then) if one is due at
    /// `now`.
    pub(super) fn start_if_due(
        &mut self,
        now: Instant,
        workers: impl FnOnce() -> Vec<(WorkerId, u32)>,
    ) {
        let ReaderState::Idle { at, .. } = self.state else {
            return;
        };
        if at > now {
            return;
        }
        let ReaderState::Idle { sampler, .. } =
            std::mem::replace(&mut self.state, ReaderState::Off)
        else {
            unreachable!("matched above");
        };
        let workers = workers();
        self.state = ReaderState::Reading(tokio::task::spawn_blocking(move || {
            read_all(sampler, &workers)
        }));
    }

    /// The reading under way, once done (pending until then: a branch of the driver's loop,
    /// polled only while [`MemoryReader::is_reading`]). `None` if this system gives none.
    pub(super) async fn finished(&mut self) -> Option<MemoryReading> {
        let ReaderState::Reading(task) = &mut self.state else {
            return std::future::pending().await;
        };
        let done = task.await;
        let now = Instant::now();
        match done {
            Ok(Taken {
                unsupported: true, ..
            }) => {
                tracing::warn!(
                    target: "regiment",
                    "{}; the master reads no memory, and no memory budget is kept",
                    SampleError::Unsupported
                );
                self.state = ReaderState::Off;
                None
            }
            Ok(taken) => {
                let interval = READ_EVERY.max(taken.took * INTERVAL_PER_READING_TIME);
                self.state = ReaderState::Idle {
                    at: now + interval,
                    sampler: taken.sampler,
                };
                Some(taken.reading)
            }
            Err(e) => {
                // A panic in the reading (a bug): the master goes on without readings.
                tracing::error!(target: "regiment", error = %e, "reading memory failed; no more readings");
                self.state = ReaderState::Off;
                None
            }
        }
    }
}

/// Reads the master and `workers`, skipping a process that exited meanwhile.
fn read_all(mut sampler: MemorySampler, workers: &[(WorkerId, u32)]) -> Taken {
    let started = Instant::now();
    let mut unsupported = false;
    let mut read = |pid: u32| match sampler.read(pid) {
        Ok(m) => Some(private(m)),
        Err(SampleError::Exited { .. }) => None,
        Err(SampleError::Unsupported) => {
            unsupported = true;
            None
        }
        Err(e) => {
            tracing::debug!(target: "regiment", error = %e, "memory not read");
            None
        }
    };
    let master = read(std::process::id());
    let workers = workers
        .iter()
        .filter_map(|&(id, pid)| read(pid).map(|m| (id, m)))
        .collect();
    Taken {
        reading: MemoryReading { master, workers },
        took: started.elapsed(),
        sampler,
        unsupported,
    }
}

fn private(m: PrivateMemory) -> ProcessMemory {
    ProcessMemory {
        pss: m.pss,
        uss: m.uss,
    }
}
