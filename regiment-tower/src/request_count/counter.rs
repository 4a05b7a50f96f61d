//! A layer's shared state: the count, the limit drawn once, and the firing at the limit.

use std::sync::atomic::{AtomicU64, Ordering};

use regiment_core::plumbing::CriterionKind;

use crate::Replacer;

/// What one [`RequestCount`](super::RequestCount) counts, shared by its clones and services.
pub(super) struct Counter {
    pub(super) count: AtomicU64,
    /// `base + extra`, chosen when the layer is built.
    pub(super) limit: u64,
    pub(super) base: u64,
    pub(super) extra: u64,
    pub(super) jitter: u64,
    pub(super) replacer: Replacer,
}

impl Counter {
    /// A request is accepted: counts it, and says whether it is the one that reaches the
    /// limit (then [`Counter::fire`] is due).
    #[inline]
    pub(super) fn accept(&self) -> bool {
        // Exactly one request sees the limit itself: this fires once per layer without a
        // flag, and the replacer's once covers other layers.
        self.count.fetch_add(1, Ordering::Relaxed) + 1 == self.limit
    }

    #[cold]
    #[inline(never)]
    pub(super) fn fire(&self) {
        self.replacer.fire_for(
            || CriterionKind::RequestCount,
            || {
                if self.jitter == 0 {
                    format!("request-count: {} requests >= {}", self.limit, self.limit)
                } else {
                    format!(
                        "request-count: {} requests >= {} ({} + jitter {} of {})",
                        self.limit, self.limit, self.base, self.extra, self.jitter
                    )
                }
            },
        );
    }
}
