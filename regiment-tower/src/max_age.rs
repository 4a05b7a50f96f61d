//! Replace a worker after a running time, with a random splay.
//!
//! [`MaxAge`] is a [`Criterion`] like any custom one: it implements only
//! [`on_tick`](Criterion::on_tick), so it costs nothing per request and fires even in a worker
//! that gets no traffic. [`splay`](MaxAge::splay) adds a random extra, drawn once per worker, so
//! that workers started together are not all replaced together.
//!
//! The age is counted from when the `MaxAge` is made (in practice, when the app is built at
//! worker start), or from the instant given to [`since`](MaxAge::since). The reason reads
//! `max-age: up 6h 0m >= 6h`.
//!
//! ```
//! use std::time::Duration;
//! use regiment_tower::{MaxAge, Replace, Replacer, sampler};
//! use tower::{Layer, service_fn};
//!
//! let replacer = Replacer::new(|reason| println!("{reason}"));
//! let layer = Replace::with_replacer(MaxAge::hours(6).splay(Duration::from_secs(1800)), replacer.clone());
//! assert!(layer.criterion().limit() >= Duration::from_secs(6 * 3600));
//! let _svc = layer.layer(service_fn(|req: http::Request<()>| async move {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(()))
//! }));
//! sampler::run_now(); // what the background thread does each second
//! assert!(!replacer.fired()); // six hours have not passed
//! ```

use std::time::{Duration, Instant};

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

/// A running time with its two leading units: `6h 0m`, `12m 5s`, `42s`, `350ms`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        3600.. => format!("{}h {}m", s / 3600, s % 3600 / 60),
        60.. => format!("{}m {}s", s / 60, s % 60),
        1.. => format!("{s}s"),
        0 => format!("{}ms", d.as_millis()),
    }
}

/// A duration without its zero units: `6h`, `6h 12m`, `1m 30s`, `0s`.
fn compact(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 && d.subsec_millis() > 0 {
        return format!("{}ms", d.subsec_millis());
    }
    let parts: Vec<String> = [(s / 3600, "h"), (s % 3600 / 60, "m"), (s % 60, "s")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::criterion::CriterionLayer;
    use crate::test_support::{Recorder, memory_lock};
    use tower::{Layer, service_fn};

    #[test]
    fn fires_at_its_age_and_not_before() {
        assert_eq!(MaxAge::hours(1).on_tick(), Verdict::Keep);
        let Some(two_seconds_ago) = Instant::now().checked_sub(Duration::from_secs(2)) else {
            return; // a clock that started under 2 s ago: nothing to test against
        };
        let old = MaxAge::new(Duration::from_secs(1)).since(two_seconds_ago);
        match old.on_tick() {
            Verdict::Replace(reason) => {
                assert!(reason.starts_with("max-age: up "), "{reason}");
                assert!(reason.ends_with("s >= 1s"), "{reason}");
            }
            Verdict::Keep => panic!("2 s >= 1 s"),
        }
        // Not yet, with a splay that pushes the limit past the age.
        let splayed = MaxAge::new(Duration::from_secs(1))
            .splay(Duration::from_secs(3600))
            .since(two_seconds_ago);
        assert_eq!(
            splayed.on_tick().is_replace(),
            splayed.age() >= splayed.limit()
        );
    }

    #[test]
    fn splay_stays_in_its_bounds_and_spreads() {
        let base = Duration::from_secs(6 * 3600);
        let limits: Vec<Duration> = (0..500)
            .map(|_| MaxAge::new(base).splay(Duration::from_secs(60)).limit())
            .collect();
        assert!(
            limits
                .iter()
                .all(|l| *l >= base && *l <= base + Duration::from_secs(60))
        );
        let distinct: std::collections::HashSet<_> = limits.iter().collect();
        assert!(distinct.len() > 400, "{} distinct limits", distinct.len());
    }

    #[test]
    fn the_layer_fires_from_the_sampler_thread_schedule_once() {
        let _serial = memory_lock();
        let rec = Recorder::new();
        let layer = CriterionLayer::with_replacer(MaxAge::new(Duration::ZERO), rec.replacer());
        let _svc = layer.layer(service_fn(|_req: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        }));
        crate::sampler::run_now();
        crate::sampler::run_now();
        assert_eq!(rec.calls(), 1);
        assert!(rec.reason().unwrap().starts_with("max-age: up "));
        assert!(rec.reason().unwrap().ends_with(">= 0s"));
    }

    #[test]
    fn formats_durations() {
        assert_eq!(clock(Duration::from_secs(6 * 3600 + 59)), "6h 0m");
        assert_eq!(clock(Duration::from_secs(725)), "12m 5s");
        assert_eq!(clock(Duration::from_millis(350)), "350ms");
        assert_eq!(compact(Duration::from_secs(6 * 3600)), "6h");
        assert_eq!(compact(Duration::from_secs(6 * 3600 + 720)), "6h 12m");
        assert_eq!(compact(Duration::from_secs(90)), "1m 30s");
        assert_eq!(compact(Duration::ZERO), "0s");
    }
}
