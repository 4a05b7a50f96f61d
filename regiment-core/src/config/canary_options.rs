//! The options of a canary rollout ([`Canary`], given to [`crate::Builder::canary`]).

use std::time::Duration;

use crate::defaults;
use crate::error::{Error, Result};
use crate::limits::MAX_DURATION;
use crate::master::policy::CanaryConfig;

/// A rollout that first replaces a few workers (the canary), lets them serve beside the old
/// generation for a window, and replaces the others only if the canary's failure ratio is no
/// worse than the old generation's by more than a margin, and it answered enough requests to
/// tell. A request fails when it is answered with a 5xx status or not at all (its handler
/// panicked, the service or the response body failed). Otherwise the rollout is aborted, the
/// canary's workers are replaced by the good generation (at once, when they failed requests and
/// the old generation serves), and the abort reason carries both ratios; the rollout's record
/// keeps the figures ([`crate::events::CanaryVerdict`]). The figures come from the workers'
/// heartbeats (regiment-axum counts every request).
///
/// Defaults: 1 worker, a 30 s window, a margin of 1 point, at least 20 requests. Each can be
/// overridden at start: `REGIMENT_CANARY_WORKERS`, `REGIMENT_CANARY_WINDOW`,
/// `REGIMENT_CANARY_MAX_ERROR_RATIO` (a fraction: `0.01`), `REGIMENT_CANARY_MIN_REQUESTS`; any
/// of them turns the canary on.
///
/// ```
/// use std::time::Duration;
/// use regiment_core::{Builder, Canary, EnvOverrides};
/// // Two workers of the new build serve for a minute, and must not fail more than half a
/// // point more of their requests than the old build does.
/// let canary = Canary::new()
///     .workers(2)
///     .window(Duration::from_secs(60))
///     .max_error_ratio(0.005)
///     .min_requests(200);
/// let builder = Builder::new().workers(8).canary(canary);
/// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
/// // A ratio is a fraction of the requests: 1.5 is refused.
/// let builder = Builder::new().canary(Canary::new().max_error_ratio(1.5));
/// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Canary {
    pub(crate) workers: usize,
    pub(crate) window: Duration,
    pub(crate) max_error_ratio: f64,
    pub(crate) min_requests: u64,
}

impl Default for Canary {
    fn default() -> Self {
        Self::new()
    }
}

impl Canary {
    /// The defaults: 1 worker, 30 s, 0.01, 20 requests (see [`crate::defaults`]).
    pub fn new() -> Self {
        Self {
            workers: defaults::CANARY_WORKERS,
            window: defaults::CANARY_WINDOW,
            max_error_ratio: defaults::CANARY_MAX_ERROR_RATIO,
            min_requests: defaults::CANARY_MIN_REQUESTS,
        }
    }

    /// How many workers the canary replaces (at least 1; a canary of every worker is the whole
    /// rollout, with no window).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// How long the canary serves before it is judged.
    pub fn window(mut self, d: Duration) -> Self {
        self.window = d;
        self
    }

    /// How far above the old generation's failure ratio the canary's may be, as a fraction of
    /// the requests (0.01: one point).
    pub fn max_error_ratio(mut self, r: f64) -> Self {
        self.max_error_ratio = r;
        self
    }

    /// How many requests the canary must answer in its window to be judged at all.
    pub fn min_requests(mut self, n: u64) -> Self {
        self.min_requests = n;
        self
    }

    /// Checked, for the policy.
    pub(crate) fn check(self) -> Result<CanaryConfig> {
        if self.workers == 0 {
            return Err(Error::invalid(
                "canary",
                "workers(0)",
                "at least 1 canary worker",
            ));
        }
        if self.window.is_zero() || self.window > MAX_DURATION {
            return Err(Error::invalid(
                "canary",
                format!("window({})", humantime::format_duration(self.window)),
                "a window above zero and at most 365 days, such as 30s",
            ));
        }
        if !(0.0..=1.0).contains(&self.max_error_ratio) {
            return Err(Error::invalid(
                "canary",
                format!("max_error_ratio({})", self.max_error_ratio),
                "a fraction of the requests from 0 to 1, such as 0.01",
            ));
        }
        Ok(CanaryConfig {
            workers: self.workers,
            window: self.window,
            max_error_ratio: self.max_error_ratio,
            min_requests: self.min_requests,
        })
    }
}
