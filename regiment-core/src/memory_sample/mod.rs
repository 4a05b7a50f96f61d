//! The private memory of a process, from `/proc/PID/smaps_rollup` (Linux 4.14+): what the
//! master samples of each worker and of itself to hold the regiment to its memory budget.
//!
//! [`MemorySampler::read`] gives RSS, PSS, USS and swap of one process in bytes, from one
//! read into a buffer the sampler keeps. A process that has exited is [`SampleError::Exited`],
//! told apart from a kernel without `smaps_rollup` ([`SampleError::Unsupported`]: no fallback
//! to summing `/proc/PID/smaps`, whose text is one block per mapping, tens of kB to read and
//! parse each time, for kernels older than 2017 that cgroup v2 containers do not run on).
//!
//! **PSS for the budget, measured** (`regiment-bench --section sampling`, BENCHMARKS.md
//! "Sampling private memory"): `hello` with 4 workers at rest sums to 32.9 MB of RSS, 9.2 MB
//! of PSS and 3.9 MB of USS, and holds 10.5 MB of distinct resident pages (pagemap). RSS counts
//! the ~5.8 MB of code and libraries each process maps once per process (3.1x too much); USS
//! leaves out those pages altogether although the regiment holds them (0.37x); the sum of PSS
//! counts each page the regiment shares once (0.87x: the rest is the share of libc pages that
//! other processes of the machine map too). So the budget sums PSS. USS is what replacing a
//! worker frees and about what one more worker adds (its shared pages are already resident):
//! the measure to rank workers and to size a surge; PSS >= USS errs on the safe side there.
//! Leaks are anonymous memory, and a worker (a fresh `exec`, not a fork) shares none of its
//! anonymous pages: `statm`'s `resident - shared` gives them exactly, for 0.6 µs.
//!
//! **Cost**: a reading walks the process's page tables, on the reader's CPU: 41 µs for a
//! `hello` worker (7.5 MB RSS; `statm`: 0.6 µs), 1.0 ms at 200 MiB, 4-9 ms per GiB of 4 KiB
//! pages. Read off any async runtime's threads, at most every second (0.1% of a core per
//! 200 MiB worker), and from `statm` in between.
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
