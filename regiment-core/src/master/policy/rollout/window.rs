//! The canary's window: how a canary is judged, and what each generation answered while it
//! served beside the other.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::super::ids::{Generation, WorkerId};
use super::super::worker::{Load, Worker};
use crate::events::Answers;

/// How a canary is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CanaryConfig {
    pub workers: usize,
    pub window: Duration,
    /// How far above the old generation's failure ratio the canary's may be (0.01: one point).
    pub max_error_ratio: f64,
    pub min_requests: u64,
}

/// The window, open: when it closes, and the tallies it is judged by.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Window {
    pub(crate) until: Instant,
    /// Every worker's figures when the window opened (those draining too: the one the canary
    /// just replaced drains as the window opens), so that only what each answers in the window
    /// counts, whenever it leaves.
    pub(in crate::master::policy) baseline: BTreeMap<WorkerId, Tally>,
    /// What the canary's and the old generation's workers that exited during the window had
    /// answered in it.
    pub(in crate::master::policy) gone: (Tally, Tally),
}

impl Window {
    /// Opens a window that closes at `until`, on every worker's figures now.
    pub(super) fn open(until: Instant, baseline: BTreeMap<WorkerId, Tally>) -> Self {
        Self {
            until,
            baseline,
            gone: Default::default(),
        }
    }

    /// Adds what `w` answered in the window to its generation's tally: the canary's (`target`)
    /// or the good one's. A superseded build still serving is neither.
    pub(super) fn add_share(
        &self,
        (canary, old): &mut (Tally, Tally),
        id: WorkerId,
        w: &Worker,
        target: Generation,
        good: Generation,
    ) {
        let tally = if w.generation == target {
            canary
        } else if w.generation == good {
            old
        } else {
            return;
        };
        let then = self.baseline.get(&id).copied().unwrap_or_default();
        tally.add(Tally::of(w.load).since(then));
    }
}

/// What one generation answered over the window: requests, and those that failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally(pub(in crate::master::policy) Answers);

impl Tally {
    /// A worker's figures, from its heartbeat.
    pub(super) fn of(load: Load) -> Self {
        Self(Answers {
            requests: load.requests,
            responses_5xx: load.responses_5xx,
            failures: load.failures,
        })
    }

    /// What was answered since `earlier`.
    fn since(self, Tally(earlier): Tally) -> Self {
        let Tally(now) = self;
        Self(Answers {
            requests: now.requests.saturating_sub(earlier.requests),
            responses_5xx: now.responses_5xx.saturating_sub(earlier.responses_5xx),
            failures: now.failures.saturating_sub(earlier.failures),
        })
    }

    /// Adds figures reported by a worker: untrusted, so saturating.
    fn add(&mut self, Tally(other): Tally) {
        let Tally(sum) = self;
        sum.requests = sum.requests.saturating_add(other.requests);
        sum.responses_5xx = sum.responses_5xx.saturating_add(other.responses_5xx);
        sum.failures = sum.failures.saturating_add(other.failures);
    }

    pub(super) fn requests(self) -> u64 {
        self.0.requests
    }

    /// Requests answered 5xx or not at all, as a share of the requests.
    pub(super) fn ratio(self) -> f64 {
        if self.0.requests == 0 {
            0.0
        } else {
            self.0.failed() as f64 / self.0.requests as f64
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2}% of {} requests ({} answered 5xx, {} got no answer)",
            self.ratio() * 100.0,
            self.0.requests,
            self.0.responses_5xx,
            self.0.failures
        )
    }
}
