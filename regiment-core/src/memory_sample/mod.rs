//! The private memory of a process, from `/proc/PID/smaps_rollup` (Linux 4.14+): what the
//! master samples of each worker and of itself to hold the regiment to its memory budget.
//!
//! [`MemorySampler::read`] gives RSS, PSS, USS and swap of one process in bytes, from one
//! read into a buffer the sampler keeps. A process that has exited is [`SampleError::Exited`],
//! told apart from a kernel without `smaps_rollup` ([`SampleError::Unsupported`]: no fallback
//! to summing `/proc/PID/smaps`, whose text is one block per mapping, tens of kB to read and
//! parse each time, for kernels older than 2017 that cgroup v2 containers do not run on).
//!
//! ```
//! use regiment_core::plumbing::{MemorySampler, SampleError};
//!
//! # #[cfg(target_os = "linux")] {
//! let mut sampler = MemorySampler::new();
//! let me = sampler.read(std::process::id())?;
//! assert!(me.uss <= me.pss && me.pss <= me.rss);
//! // A pid with no process: told apart from a failure to read.
//! assert!(matches!(sampler.read(u32::MAX), Err(SampleError::Exited { .. })));
//! # }
//! # Ok::<(), SampleError>(())
//! ```

mod rollup;
mod sampler;

pub use sampler::MemorySampler;

/// One reading of a process's memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrivateMemory {
    /// Resident set size (`Rss`): every page mapped in, shared ones included in full.
    pub rss: u64,
    /// Proportional set size (`Pss`): each resident page divided by the number of processes
    /// mapping it. Summed over processes, each page counts once. What the budget sums.
    pub pss: u64,
    /// Unique set size (`Private_Clean + Private_Dirty`): the pages no other process maps,
    /// which the process's exit gives back.
    pub uss: u64,
    /// `Shared_Clean + Shared_Dirty`: resident pages other processes map too (`rss - uss`).
    pub shared: u64,
    /// Swapped out (`Swap`); not part of `rss`, nor of a cgroup's `memory.current`.
    pub swap: u64,
    /// Swapped out, shared swap divided as PSS divides pages (`SwapPss`).
    pub swap_pss: u64,
}

/// Why a process's memory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The process has exited (zombies included): nothing to sample, not a failure.
    #[error("process {pid} has exited")]
    Exited {
        /// The process.
        pid: u32,
    },
    /// No `smaps_rollup` here: Linux before 4.14, or no `/proc`.
    #[error(
        "no /proc/self/smaps_rollup on this system: private memory (PSS) needs Linux 4.14 or later with /proc mounted"
    )]
    Unsupported,
    /// Opening or reading failed otherwise (`EACCES`: another user's process, or one that
    /// made itself non-dumpable).
    #[error("cannot read /proc/{pid}/smaps_rollup: {error}")]
    Unreadable {
        /// The process.
        pid: u32,
        /// What the system said.
        error: std::io::Error,
    },
    /// The text is not what the kernel writes: a field this reading needs is missing or not a
    /// number of kB.
    #[error("/proc/{pid}/smaps_rollup: the `{field}` line {problem}")]
    Malformed {
        /// The process.
        pid: u32,
        /// The field, as the kernel names it (`Pss`, `Private_Dirty`, ...).
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

#[cfg(test)]
mod tests;
