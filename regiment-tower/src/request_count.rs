//! Replace a worker after it has accepted a number of requests.
//!
//! [`RequestCount::new(1000)`](RequestCount::new) asks for this worker's replacement when the
//! 1000th request reaches the layer. That request and every later one are served normally: the
//! worker goes on until the master drains it, once its replacement is ready. Per request: one
//! relaxed atomic increment and a compare.
//!
//! Workers started together would all reach the same count together and be recycled in one
//! wave. [`jitter(j)`](RequestCount::jitter) (gunicorn's `max_requests_jitter`) draws each
//! worker's limit once, uniformly in `n..=n + j`.
//!
//! The count belongs to the layer: every service it makes (one per route, with axum) adds to
//! the same count. It fires once: the reason (`request-count: 1000 requests >= 1000`) goes to the
//! layer's [`Replacer`], by default the process-wide one that asks the regiment master.
//!
//! Works with any request type: nothing of the request is looked at.
//!
//! ```
//! use regiment_tower::{Replacer, RequestCount};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let replacer = Replacer::new(|reason| assert_eq!(reason, "request-count: 3 requests >= 3"));
//! let mut svc = ServiceBuilder::new()
//!     .layer(RequestCount::new(3).replacer(replacer.clone()))
//!     .service(service_fn(|x: u32| async move { Ok::<_, std::convert::Infallible>(x + 1) }));
//!
//! for x in 0..5 {
//!     // Every request is served, the third and those after it included.
//!     assert_eq!(svc.ready().await.unwrap().call(x).await.unwrap(), x + 1);
//! }
//! assert!(replacer.fired());
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

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
    counter: Arc<Counter>,
}

struct Counter {
    count: AtomicU64,
    /// `base + extra`, chosen when the layer is built.
    limit: u64,
    base: u64,
    extra: u64,
    jitter: u64,
    replacer: Replacer,
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
    /// let layer = RequestCount::new(10).replacer(Replacer::new(|reason| println!("{reason}")));
    /// assert!(!layer.get_replacer().fired());
    /// ```
    pub fn replacer(self, replacer: Replacer) -> Self {
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
    /// assert!(RequestCount::new(1).get_replacer().same_as(&Replacer::worker()));
    /// ```
    pub fn get_replacer(&self) -> &Replacer {
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

impl Counter {
    #[inline]
    fn accept(&self) {
        // Exactly one request sees the limit itself: this fires once per layer without a
        // flag, and the replacer's once covers other layers.
        if self.count.fetch_add(1, Ordering::Relaxed) + 1 == self.limit {
            self.fire();
        }
    }

    #[cold]
    #[inline(never)]
    fn fire(&self) {
        self.replacer.fire(|| {
            if self.jitter == 0 {
                format!("request-count: {} requests >= {}", self.limit, self.limit)
            } else {
                format!(
                    "request-count: {} requests >= {} ({} + jitter {} of {})",
                    self.limit, self.limit, self.base, self.extra, self.jitter
                )
            }
        });
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

/// The service made by [`RequestCount`]: counts each request it accepts.
///
/// ```
/// use regiment_tower::RequestCount;
/// use tower::{Layer, service_fn};
/// let svc = RequestCount::new(100).layer(service_fn(|x: u8| async move { Ok::<_, ()>(x) }));
/// assert_eq!(svc.layer().limit(), 100);
/// ```
#[derive(Clone)]
pub struct RequestCountService<S> {
    inner: S,
    counter: Arc<Counter>,
}

impl<S> RequestCountService<S> {
    /// The layer this service counts for (sharing its count).
    ///
    /// ```
    /// use tower::{Layer, service_fn};
    /// let svc = regiment_tower::RequestCount::new(100).layer(service_fn(|r: u8| async move { Ok::<_, ()>(r) }));
    /// assert_eq!(svc.layer().count(), 0);
    /// ```
    pub fn layer(&self) -> RequestCount {
        RequestCount {
            counter: self.counter.clone(),
        }
    }

    /// The wrapped service.
    ///
    /// ```
    /// use tower::{Layer, service_fn};
    /// let svc = regiment_tower::RequestCount::new(100).layer(service_fn(|r: u8| async move { Ok::<_, ()>(r) }));
    /// let _inner = svc.get_ref();
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// use tower::{Layer, service_fn};
    /// let mut svc = regiment_tower::RequestCount::new(100).layer(service_fn(|r: u8| async move { Ok::<_, ()>(r) }));
    /// let _inner = svc.get_mut();
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    ///
    /// ```
    /// use tower::{Layer, service_fn};
    /// let svc = regiment_tower::RequestCount::new(100).layer(service_fn(|r: u8| async move { Ok::<_, ()>(r) }));
    /// let _inner = svc.into_inner();
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for RequestCountService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestCountService")
            .field("inner", &self.inner)
            .field("layer", &self.layer())
            .finish()
    }
}

impl<S, R> Service<R> for RequestCountService<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    // Nothing happens after the call: a newtype over the inner future, with no field of its
    // own, so it costs nothing (tests/no_allocation.rs).
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: R) -> Self::Future {
        self.counter.accept();
        ResponseFuture {
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    /// The response future of [`RequestCountService`]: the inner service's future, passed
    /// through as is (the layer's work is done when the request is accepted; the response
    /// and the error are untouched). A named type, as in tower-http, so that the future can
    /// be named in signatures and the layer can look at responses later without a breaking
    /// change. It adds nothing to the inner future's size.
    ///
    /// ```
    /// use regiment_tower::request_count::ResponseFuture;
    /// use tower::{Layer, Service, service_fn};
    /// let mut svc = regiment_tower::RequestCount::new(100).layer(service_fn(|x: u8| async move { Ok::<_, ()>(x) }));
    /// let _future: ResponseFuture<_> = svc.call(1);
    /// ```
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for ResponseFuture<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

impl<F: fmt::Debug> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Recorder;
    use std::convert::Infallible;
    use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};

    fn echo() -> impl Service<u32, Response = u32, Error = Infallible, Future: Send> + Clone {
        service_fn(|x: u32| async move { Ok::<_, Infallible>(x) })
    }

    #[tokio::test]
    async fn fires_exactly_at_the_nth_request_and_keeps_serving() {
        let rec = Recorder::new();
        let layer = RequestCount::new(5).replacer(rec.replacer());
        let mut svc = layer.layer(echo());
        for i in 1..=4u32 {
            assert_eq!(svc.ready().await.unwrap().call(i).await.unwrap(), i);
            assert_eq!(rec.calls(), 0, "not before the 5th (at {i})");
        }
        assert_eq!(svc.ready().await.unwrap().call(5).await.unwrap(), 5);
        assert_eq!(rec.calls(), 1, "at the 5th");
        for i in 6..=50u32 {
            assert_eq!(svc.ready().await.unwrap().call(i).await.unwrap(), i);
        }
        assert_eq!(rec.calls(), 1, "once");
        assert_eq!(layer.count(), 50);
        assert_eq!(rec.reason().unwrap(), "request-count: 5 requests >= 5");
    }

    #[tokio::test]
    async fn services_of_one_layer_share_the_count() {
        let rec = Recorder::new();
        let layer = RequestCount::new(4).replacer(rec.replacer());
        let mut a = layer.layer(echo());
        let mut b = layer.layer(echo());
        let mut c = a.clone();
        for svc in [&mut a, &mut b, &mut c] {
            svc.ready().await.unwrap().call(0).await.unwrap();
        }
        assert_eq!(rec.calls(), 0);
        b.ready().await.unwrap().call(0).await.unwrap();
        assert_eq!(rec.calls(), 1);
        assert_eq!(layer.count(), 4);
    }

    #[test]
    fn counts_concurrent_requests_exactly() {
        let rec = Recorder::new();
        let layer = RequestCount::new(4000).replacer(rec.replacer());
        std::thread::scope(|s| {
            for _ in 0..4 {
                let svc = layer.layer(echo());
                s.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let mut svc = svc;
                        for i in 0..1000 {
                            svc.ready().await.unwrap().call(i).await.unwrap();
                        }
                    });
                });
            }
        });
        assert_eq!(layer.count(), 4000);
        assert_eq!(rec.calls(), 1);
    }

    #[tokio::test]
    async fn two_layers_fire_their_shared_replacer_once() {
        let rec = Recorder::new();
        let mut svc = ServiceBuilder::new()
            .layer(RequestCount::new(2).replacer(rec.replacer()))
            .layer(RequestCount::new(3).replacer(rec.replacer()))
            .service(echo());
        for i in 0..10 {
            svc.ready().await.unwrap().call(i).await.unwrap();
        }
        assert_eq!(rec.calls(), 1);
        assert_eq!(rec.reason().unwrap(), "request-count: 2 requests >= 2");
    }

    #[test]
    fn jitter_stays_in_its_bounds_and_spreads() {
        let limits: Vec<u64> = (0..500)
            .map(|_| RequestCount::new(1000).jitter(20).limit())
            .collect();
        assert!(limits.iter().all(|l| (1000..=1020).contains(l)));
        // Both ends and spread: 500 draws over 21 values.
        assert!(limits.contains(&1000) && limits.contains(&1020));
        let distinct: std::collections::HashSet<_> = limits.iter().collect();
        assert!(distinct.len() > 15, "{} distinct limits", distinct.len());
        assert_eq!(RequestCount::new(1000).jitter(0).limit(), 1000);
    }

    #[tokio::test]
    async fn jittered_layer_fires_at_its_drawn_limit_and_says_so() {
        let rec = Recorder::new();
        let layer = RequestCount::new(10).jitter(5).replacer(rec.replacer());
        let limit = layer.limit();
        let mut svc = layer.layer(echo());
        for i in 1..limit {
            svc.ready().await.unwrap().call(i as u32).await.unwrap();
        }
        assert_eq!(rec.calls(), 0);
        svc.ready().await.unwrap().call(0).await.unwrap();
        assert_eq!(rec.calls(), 1);
        let reason = rec.reason().unwrap();
        assert_eq!(
            reason,
            format!(
                "request-count: {limit} requests >= {limit} (10 + jitter {} of 5)",
                limit - 10
            )
        );
    }

    #[test]
    fn the_response_future_is_the_inner_one_and_no_bigger() {
        type Inner = std::future::Ready<Result<[u8; 24], ()>>;
        assert_eq!(
            std::mem::size_of::<ResponseFuture<Inner>>(),
            std::mem::size_of::<Inner>()
        );
    }

    #[tokio::test]
    async fn poll_ready_and_errors_pass_through() {
        let rec = Recorder::new();
        let failing = service_fn(|x: u32| async move { if x == 0 { Err("zero") } else { Ok(x) } });
        let mut svc = RequestCount::new(1).replacer(rec.replacer()).layer(failing);
        assert_eq!(svc.ready().await.unwrap().call(0).await, Err("zero"));
        assert_eq!(svc.ready().await.unwrap().call(3).await, Ok(3));
        // tower's ConcurrencyLimit is not ready while its one permit is out: neither are we.
        let mut limited = RequestCount::new(100)
            .replacer(rec.replacer())
            .layer(tower::limit::ConcurrencyLimit::new(echo(), 1));
        let fut = limited.ready().await.unwrap().call(1);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(limited.poll_ready(&mut cx).is_pending());
        assert_eq!(fut.await.unwrap(), 1);
        assert!(limited.poll_ready(&mut cx).is_ready());
    }
}
