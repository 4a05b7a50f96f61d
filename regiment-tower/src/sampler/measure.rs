//! Which memory figure is compared, and how often each is sampled by default.

use std::fmt;
use std::time::Duration;

/// The default interval between two samples of RSS ([`Measure::default_interval`]).
///
/// ```
/// use regiment_tower::{MemoryFootprint, sampler::DEFAULT_INTERVAL};
/// assert_eq!(MemoryFootprint::mb(750).interval(), DEFAULT_INTERVAL);
/// ```
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// The default interval between two samples of PSS or USS ([`Measure::default_interval`]).
///
/// ```
/// use regiment_tower::{Measure, MemoryFootprint, sampler::DEFAULT_ROLLUP_INTERVAL};
/// assert_eq!(MemoryFootprint::mb(750).with_measure(Measure::Pss).interval(), DEFAULT_ROLLUP_INTERVAL);
/// ```
pub const DEFAULT_ROLLUP_INTERVAL: Duration = Duration::from_secs(10);

/// Which memory figure a [`MemoryFootprint`](crate::MemoryFootprint) compares.
///
/// ```
/// use regiment_tower::{Measure, MemoryFootprint};
/// let layer = MemoryFootprint::mb(750).with_measure(Measure::Pss);
/// assert_eq!(layer.measure(), Measure::Pss);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Measure {
    /// Resident set size: every page of the process in RAM, its shares of shared libraries
    /// and of pages shared copy-on-write with other processes counted in full. What `top`
    /// shows; over-counts memory that several workers share.
    #[default]
    Rss,
    /// Proportional set size (Linux): each shared page counted as its size divided by the
    /// number of processes that map it. The sum over all workers is what they really use.
    Pss,
    /// Unique set size (Linux): private pages only (`Private_Clean + Private_Dirty`), what
    /// the kernel would free if this process exited. The best measure of a leak.
    Uss,
}

impl Measure {
    pub(super) fn index(self) -> usize {
        self as usize
    }

    /// The interval a [`MemoryFootprint`](crate::MemoryFootprint) samples at unless told
    /// otherwise: [`DEFAULT_INTERVAL`] (1 s) for RSS, a `pread` of about 2 µs;
    /// [`DEFAULT_ROLLUP_INTERVAL`] (10 s) for PSS and USS, whose `smaps_rollup` read walks the
    /// page tables and costs about 20 ms per GiB resident on the reference machine
    /// (`BENCHMARKS.md`): 2% of a core at 1 s for a 1 GiB worker, 0.2% at 10 s.
    ///
    /// ```
    /// use regiment_tower::{Measure, sampler};
    /// assert_eq!(Measure::Rss.default_interval(), sampler::DEFAULT_INTERVAL);
    /// assert_eq!(Measure::Uss.default_interval(), sampler::DEFAULT_ROLLUP_INTERVAL);
    /// ```
    pub fn default_interval(self) -> Duration {
        match self {
            Measure::Rss => DEFAULT_INTERVAL,
            Measure::Pss | Measure::Uss => DEFAULT_ROLLUP_INTERVAL,
        }
    }

    /// The lower-case name used in reasons: `rss`, `pss`, `uss`.
    ///
    /// ```
    /// assert_eq!(regiment_tower::Measure::Uss.name(), "uss");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Measure::Rss => "rss",
            Measure::Pss => "pss",
            Measure::Uss => "uss",
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
