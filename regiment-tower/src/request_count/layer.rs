use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tower_layer::Layer;

use super::RequestCountService;
use super::counter::Counter;
use crate::Replacer;

/// A layer that asks for this worker's replacement once it has accepted `n` requests (plus
/// jitter).
///
/// See the [module docs](crate::request_count).
///
/// ```
/// let layer = regiment_tower::RequestCount::new(10_000).jitter(500);
/// assert!((10_000..=10_500).contains(&layer.limit()));
/// ```
#[derive(Clone)]
pub struct RequestCount {
    pub(super) counter: Arc<Counter>,
}

impl RequestCount {
    /// Replace once `n` requests have been accepted (`n` = 0 is taken as 1).
    ///
    /// ```
    /// assert_eq!(regiment_tower::RequestCount::new(1000).limit(), 1000);
    /// ```
    pub fn new(n: u64) -> Self {
        Self::build(n.max(1), 0, Replacer::worker())
    }

    fn build(base: u64, jitter: u64, replacer: Replacer) -> Self {
        let extra = crate::rand::up_to(jitter);
        Self {
            counter: Arc::new(Counter {
                count: AtomicU64::new(0),
                limit: base.saturating_add(extra),
                base,
                extra,
                jitter,
                replacer,
            }),
        }
    }

    /// Adds a random `0..=jitter` to the limit, drawn now, once: each worker process draws its
    /// own, so workers started together do not recycle together.
    ///
    /// ```
    /// let layer = regiment_tower::RequestCount::new(1000).jitter(50);
    /// assert!(layer.limit() >= 1000 && layer.limit() <= 1050);
    /// ```
    pub fn jitter(self, jitter: u64) -> Self {
        Self::build(self.counter.base, jitter, self.counter.replacer.clone())
    }

    /// Fires into `replacer` instead of the process-wide [`Replacer::worker`].
    ///
    /// ```
    /// use regiment_tower::{Replacer, RequestCount};
    /// let layer = RequestCount::new(10).with_replacer(Replacer::new(|reason| println!("{reason}")));
    /// assert!(!layer.replacer().fired());
    /// ```
    pub fn with_replacer(self, replacer: Replacer) -> Self {
        let c = &self.counter;
        Self {
            counter: Arc::new(Counter {
                count: AtomicU64::new(0),
                limit: c.limit,
                base: c.base,
                extra: c.extra,
                jitter: c.jitter,
                replacer,
            }),
        }
    }

    /// The number of accepted requests at which this layer fires: `n` plus the drawn jitter.
    ///
    /// ```
    /// assert_eq!(regiment_tower::RequestCount::new(7).limit(), 7);
    /// ```
    pub fn limit(&self) -> u64 {
        self.counter.limit
    }

    /// The requests accepted so far by the services of this layer.
    ///
    /// ```
    /// assert_eq!(regiment_tower::RequestCount::new(7).count(), 0);
    /// ```
    pub fn count(&self) -> u64 {
        self.counter.count.load(Ordering::Relaxed)
    }

    /// The replacer this layer fires into.
    ///
    /// ```
    /// use regiment_tower::{Replacer, RequestCount};
    /// assert!(RequestCount::new(1).replacer().same_as(&Replacer::worker()));
    /// ```
    pub fn replacer(&self) -> &Replacer {
        &self.counter.replacer
    }
}

impl fmt::Debug for RequestCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counter;
        f.debug_struct("RequestCount")
            .field("count", &self.count())
            .field("limit", &c.limit)
            .field("n", &c.base)
            .field("jitter", &c.jitter)
            .field("replacer", &c.replacer)
            .finish()
    }
}

impl<S> Layer<S> for RequestCount {
    type Service = RequestCountService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestCountService {
            inner,
            counter: self.counter.clone(),
        }
    }
}
