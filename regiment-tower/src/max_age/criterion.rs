//! [`MaxAge`]: a criterion on running time, ticked by the sampler.

use std::time::{Duration, Instant};

use super::text::{clock, compact};
use crate::criterion::{Criterion, Verdict};

/// Replace this worker once it has run for a time (plus a random splay).
///
/// See the [module docs](crate::max_age).
///
/// ```
/// use std::time::Duration;
/// let age = regiment_tower::MaxAge::hours(6);
/// assert_eq!(age.limit(), Duration::from_secs(6 * 3600));
/// ```
#[derive(Debug, Clone)]
pub struct MaxAge {
    started: Instant,
    max_age: Duration,
    splay: Duration,
    extra: Duration,
}

impl MaxAge {
    /// Replace after `max_age` of running time.
    ///
    /// ```
    /// use std::time::Duration;
    /// let age = regiment_tower::MaxAge::new(Duration::from_secs(90));
    /// assert_eq!(age.max_age(), Duration::from_secs(90));
    /// ```
    pub fn new(max_age: Duration) -> Self {
        Self {
            started: Instant::now(),
            max_age,
            splay: Duration::ZERO,
            extra: Duration::ZERO,
        }
    }

    /// Replace after `hours` hours.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(regiment_tower::MaxAge::hours(2).max_age(), Duration::from_secs(7200));
    /// ```
    pub fn hours(hours: u64) -> Self {
        Self::new(Duration::from_secs(hours.saturating_mul(3600)))
    }

    /// Adds a random extra in `0..=splay` (millisecond steps), drawn now, once.
    ///
    /// ```
    /// use std::time::Duration;
    /// let age = regiment_tower::MaxAge::hours(6).splay(Duration::from_secs(600));
    /// assert!(age.limit() >= age.max_age() && age.limit() <= age.max_age() + Duration::from_secs(600));
    /// ```
    pub fn splay(self, splay: Duration) -> Self {
        let ms = u64::try_from(splay.as_millis()).unwrap_or(u64::MAX);
        Self {
            splay,
            extra: Duration::from_millis(crate::rand::up_to(ms)),
            ..self
        }
    }

    /// Counts the age from `start` rather than from the creation of this value.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let age = regiment_tower::MaxAge::hours(6).since(Instant::now());
    /// assert!(age.age() < Duration::from_secs(3600));
    /// ```
    pub fn since(self, start: Instant) -> Self {
        Self {
            started: start,
            ..self
        }
    }

    /// The running time asked for, without splay.
    ///
    /// ```
    /// use std::time::Duration;
    /// let age = regiment_tower::MaxAge::hours(1).splay(Duration::from_secs(60));
    /// assert_eq!(age.max_age(), Duration::from_secs(3600));
    /// ```
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The age at which this criterion fires: `max_age` plus the drawn splay.
    ///
    /// ```
    /// use std::time::Duration;
    /// let age = regiment_tower::MaxAge::hours(1).splay(Duration::from_secs(60));
    /// assert!(age.limit() >= Duration::from_secs(3600) && age.limit() <= Duration::from_secs(3660));
    /// ```
    pub fn limit(&self) -> Duration {
        self.max_age.saturating_add(self.extra)
    }

    /// The running time so far.
    ///
    /// ```
    /// let age = regiment_tower::MaxAge::hours(1);
    /// assert!(age.age() < age.limit());
    /// ```
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Criterion for MaxAge {
    // Time alone decides: nothing to see in responses, so nothing to carry per request.
    const ON_RESPONSE: bool = false;

    fn on_tick(&self) -> Verdict {
        let up = self.age();
        let limit = self.limit();
        Verdict::replace_if(up >= limit, || {
            if self.splay.is_zero() {
                format!("max-age: up {} >= {}", clock(up), compact(limit))
            } else {
                format!(
                    "max-age: up {} >= {} ({} + splay {} of {})",
                    clock(up),
                    compact(limit),
                    compact(self.max_age),
                    compact(self.extra),
                    compact(self.splay)
                )
            }
        })
    }

    /// A sixtieth of the limit, between 1 ms and 1 s: a second late at worst, for the usual
    /// hours-long ages.
    fn tick_interval(&self) -> Duration {
        (self.limit() / 60).clamp(Duration::from_millis(1), Duration::from_secs(1))
    }
}
