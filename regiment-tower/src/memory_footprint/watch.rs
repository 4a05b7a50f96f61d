//! A layer's shared state: its settings, and the check against the sampler's last figure.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use regiment_core::plumbing::CriterionKind;

use crate::Replacer;
use crate::sampler::{Job, Measure};

pub(super) const MIB: u64 = 1 << 20;

/// What one [`MemoryFootprint`](super::MemoryFootprint) watches, shared by its clones and
/// services, and held weakly by the sampler.
pub(super) struct Watch {
    pub(super) measure: Measure,
    pub(super) threshold: u64,
    /// `None`: the measure's default ([`Measure::default_interval`]).
    pub(super) interval: Option<Duration>,
    pub(super) replacer: Replacer,
    /// Where the sampler stores the figure of `measure`.
    pub(super) current: &'static AtomicU64,
    pub(super) registered: Once,
}

impl Watch {
    pub(super) fn interval(&self) -> Duration {
        self.interval
            .unwrap_or_else(|| self.measure.default_interval())
    }

    /// A request is accepted: whether the sampler's last figure is over the threshold (then
    /// [`Watch::fire`] is due), one relaxed load.
    #[inline]
    pub(super) fn accept(&self) -> bool {
        self.current.load(Ordering::Relaxed) > self.threshold
    }

    /// Fires if the sampler's last figure, read again after [`Watch::accept`] found it over the
    /// threshold, still is (a newer figure under it fires nothing), and says that figure.
    pub(super) fn fire(&self) {
        self.check(self.current.load(Ordering::Relaxed));
    }

    #[inline]
    pub(super) fn check(&self, bytes: u64) {
        if bytes > self.threshold {
            self.fire_with(bytes);
        }
    }

    // Out of line: the sampler's `check` keeps only the compare.
    #[cold]
    #[inline(never)]
    fn fire_with(&self, bytes: u64) {
        self.replacer.fire_for(
            || CriterionKind::MemoryFootprint,
            || {
                format!(
                    "memory-footprint: {} {} > {}",
                    self.measure,
                    fmt_mb(bytes),
                    fmt_mb(self.threshold)
                )
            },
        );
    }
}

impl Job for Watch {
    fn measure(&self) -> Option<Measure> {
        Some(self.measure)
    }

    fn run(&self, bytes: u64) {
        self.check(bytes);
    }

    fn done(&self) -> bool {
        self.replacer.fired()
    }
}

/// `812 MB`, or `812.4 MB` when not a whole number of mebibytes.
pub(super) fn fmt_mb(bytes: u64) -> String {
    if bytes.is_multiple_of(MIB) {
        format!("{} MB", bytes / MIB)
    } else {
        format!("{:.1} MB", bytes as f64 / MIB as f64)
    }
}
