//! Custom criteria: a small trait, and a layer that runs it.
//!
//! A [`Criterion`] sees each request as it arrives, each response as it leaves, and a tick
//! from the [background thread](crate::sampler) for what depends on time rather than traffic.
//! Each hook returns a [`Verdict`]; the first [`Verdict::Replace`] fires the layer's
//! [`Replacer`] (by default the process-wide one that asks the regiment master, a no-op with
//! one warning outside a cluster). All hooks default to [`Verdict::Keep`]: implement only
//! those you need. Hooks take `&self` and run concurrently: keep state in atomics.
//!
//! [`Replace::when(c)`](Replace::when) (or [`CriterionLayer::new`]) makes the layer. Clones of
//! the layer and every service it makes share one criterion value. Once this worker's
//! replacer has fired, the hooks are no longer called: the verdict could change nothing.
//!
//! By convention a reason reads `name: figure vs threshold`, as the built-in ones do
//! (`request-count: 1000 requests >= 1000`): it shows as is in the master's events and status.
//!
//! Replace after 50 consecutive 5xx responses:
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
//! use regiment_tower::{Criterion, Replace, Verdict};
//!
//! #[derive(Default)]
//! struct ServerErrors(AtomicU32);
//!
//! impl Criterion for ServerErrors {
//!     fn on_response<B>(&self, res: &http::Response<B>) -> Verdict {
//!         if !res.status().is_server_error() {
//!             self.0.store(0, Relaxed);
//!             return Verdict::Keep;
//!         }
//!         let n = self.0.fetch_add(1, Relaxed) + 1;
//!         Verdict::replace_if(n >= 50, || format!("server-errors: {n} consecutive 5xx >= 50"))
//!     }
//! }
//!
//! let layer = Replace::when(ServerErrors::default()); // .layer(layer) on a Router
//! # let _ = layer;
//! ```
//!
//! Replace after six hours, checked every minute, even if no request comes:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use regiment_tower::{Criterion, Replace, Verdict};
//!
//! struct SixHours(Instant);
//!
//! impl Criterion for SixHours {
//!     fn tick_interval(&self) -> Duration { Duration::from_secs(60) }
//!     fn on_tick(&self) -> Verdict {
//!         let up = self.0.elapsed().as_secs() / 60;
//!         Verdict::replace_if(up >= 360, || format!("six-hours: up {up} min >= 360 min"))
//!     }
//! }
//!
//! let layer = Replace::when(SixHours(Instant::now()));
//! # let _ = layer;
//! ```
//!
//! (The built-in [`MaxAge`](crate::MaxAge) is that criterion, with a random splay.)
//!
//! The layer wraps HTTP services (`Service<http::Request<B>, Response = http::Response<B2>>`:
//! axum, hyper, tower-http stacks); the response and the error pass through untouched.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Once, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::Replacer;
use crate::sampler::{self, Job, Measure};

/// What a [`Criterion`] hook decides.
///
/// ```
/// use regiment_tower::Verdict;
/// assert_eq!(Verdict::replace_if(false, || unreachable!()), Verdict::Keep);
/// assert_eq!(Verdict::replace("x: 1 >= 1"), Verdict::Replace("x: 1 >= 1".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Verdict {
    /// Keep this worker.
    #[default]
    Keep,
    /// Replace this worker, for this reason (criterion, figure, threshold).
    Replace(String),
}

impl Verdict {
    /// [`Verdict::Replace`] with `reason`.
    ///
    /// ```
    /// let v = regiment_tower::Verdict::replace("queue-depth: 900 >= 800");
    /// assert!(v.is_replace());
    /// ```
    pub fn replace(reason: impl Into<String>) -> Self {
        Verdict::Replace(reason.into())
    }

    /// [`Verdict::Replace`] with the reason `reason()` builds if `cond`, else [`Verdict::Keep`]
    /// (the reason is only formatted when needed).
    ///
    /// ```
    /// use regiment_tower::Verdict;
    /// let n = 12;
    /// assert!(Verdict::replace_if(n >= 10, || format!("n: {n} >= 10")).is_replace());
    /// ```
    pub fn replace_if(cond: bool, reason: impl FnOnce() -> String) -> Self {
        if cond {
            Verdict::Replace(reason())
        } else {
            Verdict::Keep
        }
    }

    /// True for [`Verdict::Replace`].
    ///
    /// ```
    /// assert!(!regiment_tower::Verdict::Keep.is_replace());
    /// ```
    pub fn is_replace(&self) -> bool {
        matches!(self, Verdict::Replace(_))
    }
}

/// A replacement criterion. Every hook has a default that keeps the worker; a criterion
/// implements the one or two it needs. See the [module docs](crate::criterion) for two complete
/// criteria in ten lines each.
///
/// The hooks run on the request path (`on_request`, `on_response`) or on the sampler thread
/// (`on_tick`): keep them to a few atomic operations, no lock, no I/O.
pub trait Criterion: Send + Sync + 'static {
    /// Whether the layer shows responses to [`on_response`](Criterion::on_response). Leave it
    /// `true` if you implement `on_response`. A criterion that does not can set it to `false`:
    /// the response future then carries no reference to the criterion, which saves an atomic
    /// reference-count increment and decrement per request (about 20 ns on the reference
    /// machine, `BENCHMARKS.md`). [`MaxAge`](crate::MaxAge) does.
    ///
    /// ```
    /// use regiment_tower::{Criterion, Verdict};
    /// struct Idle;
    /// impl Criterion for Idle {
    ///     const ON_RESPONSE: bool = false;
    ///     fn on_tick(&self) -> Verdict { Verdict::Keep }
    /// }
    /// ```
    const ON_RESPONSE: bool = true;

    /// Called as each request reaches the layer, before the inner service sees it.
    ///
    /// ```
    /// use regiment_tower::{Criterion, Verdict};
    /// struct NoTrace;
    /// impl Criterion for NoTrace {
    ///     fn on_request<B>(&self, req: &http::Request<B>) -> Verdict {
    ///         Verdict::replace_if(req.method() == http::Method::TRACE, || "no-trace: got TRACE".into())
    ///     }
    /// }
    /// let req = http::Request::builder().method("TRACE").body(()).unwrap();
    /// assert!(NoTrace.on_request(&req).is_replace());
    /// ```
    fn on_request<B>(&self, req: &http::Request<B>) -> Verdict {
        let _ = req;
        Verdict::Keep
    }

    /// Called with each successful response of the inner service, before it is returned
    /// (unless [`ON_RESPONSE`](Criterion::ON_RESPONSE) is `false`).
    /// (An inner service's `Err` is passed through without a call: with axum and hyper errors
    /// are not responses.)
    ///
    /// ```
    /// use regiment_tower::{Criterion, Verdict};
    /// struct Teapot;
    /// impl Criterion for Teapot {
    ///     fn on_response<B>(&self, res: &http::Response<B>) -> Verdict {
    ///         Verdict::replace_if(res.status().as_u16() == 418, || "teapot: 418".into())
    ///     }
    /// }
    /// let res = http::Response::builder().status(418).body(()).unwrap();
    /// assert!(Teapot.on_response(&res).is_replace());
    /// ```
    fn on_response<B>(&self, res: &http::Response<B>) -> Verdict {
        let _ = res;
        Verdict::Keep
    }

    /// Called from the background thread every [`tick_interval`](Criterion::tick_interval),
    /// with or without traffic, while a service of the layer exists.
    ///
    /// ```
    /// use regiment_tower::{Criterion, Verdict};
    /// struct Always;
    /// impl Criterion for Always {
    ///     fn on_tick(&self) -> Verdict { Verdict::replace("always: 1 >= 1") }
    /// }
    /// assert!(Always.on_tick().is_replace());
    /// ```
    fn on_tick(&self) -> Verdict {
        Verdict::Keep
    }

    /// How often [`on_tick`](Criterion::on_tick) runs. Default: every second.
    ///
    /// ```
    /// use regiment_tower::{Criterion, Verdict};
    /// struct Idle;
    /// impl Criterion for Idle {}
    /// assert_eq!(Idle.tick_interval(), std::time::Duration::from_secs(1));
    /// ```
    fn tick_interval(&self) -> Duration {
        Duration::from_secs(1)
    }
}

/// Shorthand for the criterion layer: `Replace::when(criterion)`.
///
/// ```
/// use regiment_tower::{MaxAge, Replace};
/// use std::time::Duration;
/// let layer = Replace::when(MaxAge::new(Duration::from_secs(6 * 3600)));
/// assert_eq!(layer.criterion().max_age(), Duration::from_secs(6 * 3600));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Replace;

impl Replace {
    /// A layer that replaces this worker when `criterion` says so:
    /// [`CriterionLayer::new(criterion)`](CriterionLayer::new).
    ///
    /// ```
    /// use regiment_tower::{Criterion, Replace};
    /// struct Never;
    /// impl Criterion for Never {}
    /// let _layer = Replace::when(Never);
    /// ```
    pub fn when<C: Criterion>(criterion: C) -> CriterionLayer<C> {
        CriterionLayer::new(criterion)
    }

    /// A layer that fires `replacer` when `criterion` says so:
    /// [`CriterionLayer::with_replacer`].
    ///
    /// ```
    /// use regiment_tower::{MaxAge, Replace, Replacer};
    /// let layer = Replace::with_replacer(MaxAge::hours(6), Replacer::new(|r| eprintln!("{r}")));
    /// assert!(!layer.get_replacer().fired());
    /// ```
    pub fn with_replacer<C: Criterion>(criterion: C, replacer: Replacer) -> CriterionLayer<C> {
        CriterionLayer::with_replacer(criterion, replacer)
    }
}

/// A layer that runs a [`Criterion`] and fires its replacer on the first
/// [`Verdict::Replace`].
///
/// ```
/// use regiment_tower::{CriterionLayer, Criterion, Replacer, Verdict};
/// struct Never;
/// impl Criterion for Never {}
/// let layer = CriterionLayer::with_replacer(Never, Replacer::new(|_| {}));
/// assert!(!layer.get_replacer().fired());
/// ```
pub struct CriterionLayer<C> {
    shared: Arc<Shared<C>>,
}

struct Shared<C> {
    criterion: C,
    replacer: Replacer,
    ticking: Once,
}

impl<C> Clone for CriterionLayer<C> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<C: Criterion> CriterionLayer<C> {
    /// A layer running `criterion`, firing into the process-wide [`Replacer::worker`].
    ///
    /// ```
    /// use regiment_tower::{CriterionLayer, Criterion};
    /// struct Never;
    /// impl Criterion for Never {}
    /// let _layer = CriterionLayer::new(Never);
    /// ```
    pub fn new(criterion: C) -> Self {
        Self::with_replacer(criterion, Replacer::worker())
    }

    /// A layer running `criterion`, firing into `replacer`.
    ///
    /// ```
    /// use regiment_tower::{CriterionLayer, Criterion, Replacer};
    /// struct Never;
    /// impl Criterion for Never {}
    /// let _layer = CriterionLayer::with_replacer(Never, Replacer::new(|r| eprintln!("{r}")));
    /// ```
    pub fn with_replacer(criterion: C, replacer: Replacer) -> Self {
        Self {
            shared: Arc::new(Shared {
                criterion,
                replacer,
                ticking: Once::new(),
            }),
        }
    }

    /// The criterion (shared by every service of this layer).
    ///
    /// ```
    /// use regiment_tower::{CriterionLayer, Criterion};
    /// struct Named(&'static str);
    /// impl Criterion for Named {}
    /// assert_eq!(CriterionLayer::new(Named("x")).criterion().0, "x");
    /// ```
    pub fn criterion(&self) -> &C {
        &self.shared.criterion
    }

    /// The replacer this layer fires into.
    ///
    /// ```
    /// use regiment_tower::{CriterionLayer, Criterion, Replacer};
    /// struct Never;
    /// impl Criterion for Never {}
    /// assert!(CriterionLayer::new(Never).get_replacer().same_as(&Replacer::worker()));
    /// ```
    pub fn get_replacer(&self) -> &Replacer {
        &self.shared.replacer
    }
}

impl<C: fmt::Debug> fmt::Debug for CriterionLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CriterionLayer")
            .field("criterion", &self.shared.criterion)
            .field("replacer", &self.shared.replacer)
            .finish()
    }
}

impl<C: Criterion> Shared<C> {
    #[inline]
    fn live(&self) -> bool {
        !self.replacer.fired()
    }

    #[inline]
    fn judge(&self, verdict: Verdict) {
        if let Verdict::Replace(reason) = verdict {
            self.replacer.fire(|| reason);
        }
    }
}

impl<C: Criterion> Job for Shared<C> {
    fn measure(&self) -> Option<Measure> {
        None
    }

    fn run(&self, _bytes: u64) {
        if self.live() {
            self.judge(self.criterion.on_tick());
        }
    }

    fn done(&self) -> bool {
        !self.live()
    }
}

impl<S, C: Criterion> Layer<S> for CriterionLayer<C> {
    type Service = CriterionService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        // Ticked from when the layer is first used; the sampler holds it weakly, so it stops
        // when the layer and its services are gone.
        let shared = &self.shared;
        shared.ticking.call_once(|| {
            let job: Weak<dyn Job> = Arc::downgrade(shared) as Weak<dyn Job>;
            sampler::register(job, None, shared.criterion.tick_interval());
        });
        CriterionService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`CriterionLayer`].
///
/// ```
/// use regiment_tower::{Criterion, Replace};
/// use tower::{Layer, service_fn};
/// struct Never;
/// impl Criterion for Never {}
/// let svc = Replace::when(Never).layer(service_fn(|req: http::Request<()>| async move {
///     Ok::<_, std::convert::Infallible>(http::Response::new(()))
/// }));
/// # let _ = svc;
/// ```
pub struct CriterionService<S, C> {
    inner: S,
    shared: Arc<Shared<C>>,
}

impl<S: Clone, C> Clone for CriterionService<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S, C> CriterionService<S, C> {
    /// The wrapped service.
    ///
    /// ```
    /// use tower::{Layer, service_fn};
    /// struct Never;
    /// impl regiment_tower::Criterion for Never {}
    /// let svc = regiment_tower::Replace::when(Never).layer(service_fn(|_: http::Request<()>| async {
    ///     Ok::<_, ()>(http::Response::new(()))
    /// }));
    /// let _inner = svc.get_ref();
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// use tower::{Layer, service_fn};
    /// struct Never;
    /// impl regiment_tower::Criterion for Never {}
    /// let mut svc = regiment_tower::Replace::when(Never).layer(service_fn(|_: http::Request<()>| async {
    ///     Ok::<_, ()>(http::Response::new(()))
    /// }));
    /// let _inner = svc.get_mut();
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    ///
    /// ```
    /// use tower::{Layer, service_fn};
    /// struct Never;
    /// impl regiment_tower::Criterion for Never {}
    /// let svc = regiment_tower::Replace::when(Never).layer(service_fn(|_: http::Request<()>| async {
    ///     Ok::<_, ()>(http::Response::new(()))
    /// }));
    /// let _inner = svc.into_inner();
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug, C: fmt::Debug> fmt::Debug for CriterionService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CriterionService")
            .field("inner", &self.inner)
            .field("criterion", &self.shared.criterion)
            .finish()
    }
}

impl<S, C, ReqBody, ResBody> Service<http::Request<ReqBody>> for CriterionService<S, C>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    C: Criterion,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        // Once fired, the future carries nothing and the criterion is not asked again.
        let watch = if shared.live() {
            shared.judge(shared.criterion.on_request(&req));
            (C::ON_RESPONSE && shared.live()).then(|| shared.clone())
        } else {
            None
        };
        ResponseFuture {
            inner: self.inner.call(req),
            shared: watch,
        }
    }
}

pin_project! {
    /// The response future of [`CriterionService`]: shows the response to the criterion.
    ///
    /// ```
    /// use regiment_tower::{Criterion, Replace, criterion::ResponseFuture};
    /// use tower::{Layer, Service, service_fn};
    /// struct Never;
    /// impl Criterion for Never {}
    /// let mut svc = Replace::when(Never).layer(service_fn(|_: http::Request<()>| async {
    ///     Ok::<_, ()>(http::Response::new(()))
    /// }));
    /// let _future: ResponseFuture<_, Never> = svc.call(http::Request::new(()));
    /// ```
    pub struct ResponseFuture<F, C> {
        #[pin]
        inner: F,
        shared: Option<Arc<Shared<C>>>,
    }
}

impl<F, C, ResBody, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    C: Criterion,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let (Ok(res), Some(shared)) = (&result, this.shared.take())
            && shared.live()
        {
            shared.judge(shared.criterion.on_response(res));
        }
        Poll::Ready(result)
    }
}

impl<F: fmt::Debug, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Recorder, memory_lock, wait_until};
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    #[derive(Default)]
    struct ServerErrors(AtomicU32);

    impl Criterion for ServerErrors {
        fn on_response<B>(&self, res: &http::Response<B>) -> Verdict {
            if !res.status().is_server_error() {
                self.0.store(0, Relaxed);
                return Verdict::Keep;
            }
            let n = self.0.fetch_add(1, Relaxed) + 1;
            Verdict::replace_if(n >= 3, || {
                format!("server-errors: {n} consecutive 5xx >= 3")
            })
        }
    }

    /// Answers with the status in the request's path: `/503` -> 503.
    fn status_echo()
    -> impl Service<
        http::Request<()>,
        Response = http::Response<()>,
        Error = Infallible,
        Future: Send,
    > + Clone {
        service_fn(|req: http::Request<()>| async move {
            let code: u16 = req.uri().path()[1..].parse().unwrap();
            Ok::<_, Infallible>(http::Response::builder().status(code).body(()).unwrap())
        })
    }

    fn get(path: &str) -> http::Request<()> {
        http::Request::get(path).body(()).unwrap()
    }

    #[tokio::test]
    async fn on_response_sees_statuses_and_fires_once_on_the_streak() {
        let rec = Recorder::new();
        let mut svc = CriterionLayer::with_replacer(ServerErrors::default(), rec.replacer())
            .layer(status_echo());
        for path in ["/500", "/502", "/200", "/500", "/503"] {
            svc.ready().await.unwrap().call(get(path)).await.unwrap();
        }
        assert_eq!(rec.calls(), 0, "a 200 broke the streak");
        let res = svc.ready().await.unwrap().call(get("/504")).await.unwrap();
        assert_eq!(
            res.status(),
            504,
            "the response is passed through untouched"
        );
        assert_eq!(rec.calls(), 1);
        assert_eq!(
            rec.reason().unwrap(),
            "server-errors: 3 consecutive 5xx >= 3"
        );
        for _ in 0..10 {
            svc.ready().await.unwrap().call(get("/500")).await.unwrap();
        }
        assert_eq!(rec.calls(), 1);
    }

    struct CountCalls {
        requests: AtomicUsize,
        responses: AtomicUsize,
    }

    impl Criterion for CountCalls {
        fn on_request<B>(&self, req: &http::Request<B>) -> Verdict {
            self.requests.fetch_add(1, Relaxed);
            Verdict::replace_if(req.uri().path() == "/418", || {
                "teapot: asked for 418".into()
            })
        }
        fn on_response<B>(&self, _res: &http::Response<B>) -> Verdict {
            self.responses.fetch_add(1, Relaxed);
            Verdict::Keep
        }
    }

    #[tokio::test]
    async fn on_request_fires_and_then_the_criterion_rests() {
        let rec = Recorder::new();
        let layer = CriterionLayer::with_replacer(
            CountCalls {
                requests: AtomicUsize::new(0),
                responses: AtomicUsize::new(0),
            },
            rec.replacer(),
        );
        let mut svc = ServiceBuilder::new()
            .layer(layer.clone())
            .service(status_echo());
        svc.ready().await.unwrap().call(get("/200")).await.unwrap();
        let res = svc.ready().await.unwrap().call(get("/418")).await.unwrap();
        assert_eq!(res.status(), 418, "the request that fires is still served");
        assert_eq!(rec.calls(), 1);
        assert_eq!(rec.reason().unwrap(), "teapot: asked for 418");
        for _ in 0..5 {
            svc.ready().await.unwrap().call(get("/200")).await.unwrap();
        }
        let c = layer.criterion();
        assert_eq!(c.requests.load(Relaxed), 2, "not asked once fired");
        assert_eq!(
            c.responses.load(Relaxed),
            1,
            "only the one before the firing"
        );
    }

    #[tokio::test]
    async fn errors_pass_through_without_on_response() {
        let rec = Recorder::new();
        let failing =
            service_fn(|_req: http::Request<()>| async { Err::<http::Response<()>, _>("boom") });
        let mut svc =
            CriterionLayer::with_replacer(ServerErrors::default(), rec.replacer()).layer(failing);
        for _ in 0..5 {
            assert_eq!(
                svc.ready().await.unwrap().call(get("/")).await.unwrap_err(),
                "boom"
            );
        }
        assert_eq!(rec.calls(), 0);
    }

    struct NoResponses;

    impl Criterion for NoResponses {
        const ON_RESPONSE: bool = false;
        fn on_response<B>(&self, _res: &http::Response<B>) -> Verdict {
            panic!("ON_RESPONSE is false: responses are not shown");
        }
    }

    #[tokio::test]
    async fn on_response_false_skips_responses() {
        let mut svc = CriterionLayer::with_replacer(NoResponses, Recorder::new().replacer())
            .layer(status_echo());
        for _ in 0..3 {
            let res = svc.ready().await.unwrap().call(get("/503")).await.unwrap();
            assert_eq!(res.status(), 503);
        }
    }

    struct TickAfter(AtomicU32, u32);

    impl Criterion for TickAfter {
        fn tick_interval(&self) -> Duration {
            Duration::from_secs(3600)
        }
        fn on_tick(&self) -> Verdict {
            let n = self.0.fetch_add(1, Relaxed) + 1;
            Verdict::replace_if(n >= self.1, || format!("ticks: {n} >= {}", self.1))
        }
    }

    #[test]
    fn on_tick_fires_without_any_request() {
        let _serial = memory_lock();
        let rec = Recorder::new();
        let layer = CriterionLayer::with_replacer(TickAfter(AtomicU32::new(0), 2), rec.replacer());
        assert_eq!(
            layer.criterion().0.load(Relaxed),
            0,
            "not ticked before use"
        );
        let _svc = layer.layer(status_echo());
        crate::sampler::run_now();
        assert_eq!(rec.calls(), 0);
        crate::sampler::run_now();
        assert_eq!(rec.calls(), 1);
        assert_eq!(rec.reason().unwrap(), "ticks: 2 >= 2");
        crate::sampler::run_now();
        assert_eq!(
            layer.criterion().0.load(Relaxed),
            2,
            "not ticked once fired"
        );
    }

    #[tokio::test]
    async fn poll_ready_is_delegated() {
        let rec = Recorder::new();
        // tower's ConcurrencyLimit is not ready while its one permit is out: neither are we.
        let mut limited = CriterionLayer::with_replacer(ServerErrors::default(), rec.replacer())
            .layer(tower::limit::ConcurrencyLimit::new(status_echo(), 1));
        let fut = limited.ready().await.unwrap().call(get("/200"));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(limited.poll_ready(&mut cx).is_pending());
        assert_eq!(fut.await.unwrap().status(), 200);
        assert!(limited.poll_ready(&mut cx).is_ready());
        assert_eq!(rec.calls(), 0);
    }

    #[test]
    fn a_fired_criterion_leaves_the_sampler_schedule() {
        // MaxAge of zero ticks every millisecond: once fired it must not keep waking the
        // sampler thread for the rest of the process.
        let rec = Recorder::new();
        let layer =
            CriterionLayer::with_replacer(crate::MaxAge::new(Duration::ZERO), rec.replacer());
        let svc = layer.layer(status_echo());
        // The weak reference keeps the allocation, so its address cannot be reused by a job
        // registered later by another test.
        let job = Arc::downgrade(&layer.shared);
        wait_until("the criterion fired and left the schedule", || {
            rec.calls() > 0 && !sampler::is_scheduled(job.as_ptr())
        });
        assert_eq!(rec.calls(), 1);
        assert!(rec.reason().unwrap().starts_with("max-age: up "));
        // Left for having fired, not for having been dropped.
        assert!(job.upgrade().is_some());
        drop((layer, svc));
    }

    #[tokio::test]
    async fn works_on_an_axum_router() {
        let rec = Recorder::new();
        let app = axum::Router::new()
            .route(
                "/",
                axum::routing::get(|| async { http::StatusCode::INTERNAL_SERVER_ERROR }),
            )
            .layer(CriterionLayer::with_replacer(
                ServerErrors::default(),
                rec.replacer(),
            ));
        for _ in 0..3 {
            let req = http::Request::get("/")
                .body(axum::body::Body::empty())
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), 500);
        }
        assert_eq!(rec.calls(), 1);
    }
}
