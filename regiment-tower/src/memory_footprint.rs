//! Replace a worker whose memory grew past a threshold.
//!
//! [`MemoryFootprint::mb(750)`](MemoryFootprint::mb) asks for this worker's replacement once
//! its resident memory exceeds 750 MB (mebibytes, 2<sup>20</sup> bytes, as `top` and `ps`
//! count them). The memory is measured off the request path by the [background
//! sampler](crate::sampler) (one thread per process however many layers exist, started by the
//! first layer to wrap a service; default interval 1 s for RSS, 10 s for PSS and USS, which
//! cost more to read); on each request the layer compares
//! the sampler's last figure, one relaxed atomic load, against its threshold. The sampler also
//! checks after each sample, so a worker that grows while idle is replaced too.
//!
//! The figure compared is RSS by default; on Linux [`Measure::Pss`] or [`Measure::Uss`] count
//! pages shared with other workers (copy-on-write, shared libraries) proportionally or not at
//! all, which RSS counts in full in every worker.
//!
//! It fires once: the reason (`memory-footprint: rss 812 MB > 750 MB`) goes to the layer's
//! [`Replacer`], by default the process-wide one that asks the regiment master. The worker keeps
//! serving every request until the master drains it, once its replacement is ready.
//!
//! Works with any request type: nothing of the request is looked at.
//!
//! ```
//! use std::time::Duration;
//! use regiment_tower::{Measure, MemoryFootprint};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut svc = ServiceBuilder::new()
//!     .layer(MemoryFootprint::mb(750).measure(Measure::Pss).interval(Duration::from_millis(500)))
//!     .service(service_fn(|req: String| async move { Ok::<_, std::convert::Infallible>(req.len()) }));
//!
//! let len = svc.ready().await.unwrap().call("hello".to_string()).await.unwrap();
//! assert_eq!(len, 5);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::Replacer;
use crate::sampler::{self, Job, Measure};

const MIB: u64 = 1 << 20;

/// A layer that asks for this worker's replacement once its memory exceeds a threshold.
///
/// See the [module docs](crate::memory_footprint).
///
/// ```
/// use regiment_tower::MemoryFootprint;
/// let layer = MemoryFootprint::mb(750);
/// assert_eq!(layer.threshold(), 750 * 1024 * 1024);
/// ```
#[derive(Clone)]
pub struct MemoryFootprint {
    watch: Arc<Watch>,
}

struct Watch {
    measure: Measure,
    threshold: u64,
    /// `None`: the measure's default ([`Measure::default_interval`]).
    interval: Option<Duration>,
    replacer: Replacer,
    /// Where the sampler stores the figure of `measure`.
    current: &'static AtomicU64,
    registered: Once,
}

impl MemoryFootprint {
    /// Replace above `mb` mebibytes (`mb * 2^20` bytes) of RSS.
    ///
    /// ```
    /// let layer = regiment_tower::MemoryFootprint::mb(512);
    /// assert_eq!(layer.threshold(), 512 << 20);
    /// ```
    pub fn mb(mb: u64) -> Self {
        Self::bytes(mb.saturating_mul(MIB))
    }

    /// Replace above `bytes` bytes of RSS.
    ///
    /// ```
    /// let layer = regiment_tower::MemoryFootprint::bytes(1_500_000_000);
    /// assert_eq!(layer.threshold(), 1_500_000_000);
    /// ```
    pub fn bytes(bytes: u64) -> Self {
        Self::build(Measure::Rss, bytes, None, Replacer::worker())
    }

    fn build(
        measure: Measure,
        threshold: u64,
        interval: Option<Duration>,
        replacer: Replacer,
    ) -> Self {
        Self {
            watch: Arc::new(Watch {
                measure,
                threshold,
                interval,
                replacer,
                current: sampler::slot(measure),
                registered: Once::new(),
            }),
        }
    }

    /// Compares `measure` instead of RSS (PSS and USS: Linux only; elsewhere a warning is
    /// logged once and the layer never fires). PSS and USS cost far more to read than RSS,
    /// and more the bigger the process (5 ms with 256 MiB resident on the reference
    /// machine), so their default interval is 10 s rather than 1 s; see
    /// [`Measure::default_interval`].
    ///
    /// ```
    /// use regiment_tower::{Measure, MemoryFootprint};
    /// let layer = MemoryFootprint::mb(300).measure(Measure::Uss);
    /// assert_eq!(layer.get_measure(), Measure::Uss);
    /// ```
    pub fn measure(self, measure: Measure) -> Self {
        let w = &self.watch;
        Self::build(measure, w.threshold, w.interval, w.replacer.clone())
    }

    /// Samples every `interval` instead of the measure's default (1 s for RSS, 10 s for PSS
    /// and USS; at least 1 ms). Several layers on one measure share its samples, taken at the
    /// shortest of their intervals.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = regiment_tower::MemoryFootprint::mb(750).interval(Duration::from_secs(5));
    /// assert_eq!(layer.get_interval(), Duration::from_secs(5));
    /// ```
    pub fn interval(self, interval: Duration) -> Self {
        let w = &self.watch;
        Self::build(w.measure, w.threshold, Some(interval), w.replacer.clone())
    }

    /// Fires into `replacer` instead of the process-wide [`Replacer::worker`].
    ///
    /// ```
    /// use regiment_tower::{MemoryFootprint, Replacer};
    /// let layer = MemoryFootprint::mb(750).replacer(Replacer::new(|reason| println!("{reason}")));
    /// assert!(!layer.get_replacer().fired());
    /// ```
    pub fn replacer(self, replacer: Replacer) -> Self {
        let w = &self.watch;
        Self::build(w.measure, w.threshold, w.interval, replacer)
    }

    /// The threshold in bytes.
    ///
    /// ```
    /// assert_eq!(regiment_tower::MemoryFootprint::mb(1).threshold(), 1 << 20);
    /// ```
    pub fn threshold(&self) -> u64 {
        self.watch.threshold
    }

    /// The measure compared.
    ///
    /// ```
    /// use regiment_tower::{Measure, MemoryFootprint};
    /// assert_eq!(MemoryFootprint::mb(1).get_measure(), Measure::Rss);
    /// ```
    pub fn get_measure(&self) -> Measure {
        self.watch.measure
    }

    /// The sampling interval.
    ///
    /// ```
    /// use std::time::Duration;
    /// use regiment_tower::{Measure, MemoryFootprint};
    /// assert_eq!(MemoryFootprint::mb(1).get_interval(), Duration::from_secs(1));
    /// assert_eq!(MemoryFootprint::mb(1).measure(Measure::Pss).get_interval(), Duration::from_secs(10));
    /// ```
    pub fn get_interval(&self) -> Duration {
        self.watch.interval()
    }

    /// The replacer this layer fires into.
    ///
    /// ```
    /// use regiment_tower::{MemoryFootprint, Replacer};
    /// assert!(MemoryFootprint::mb(1).get_replacer().same_as(&Replacer::worker()));
    /// ```
    pub fn get_replacer(&self) -> &Replacer {
        &self.watch.replacer
    }
}

impl fmt::Debug for MemoryFootprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryFootprint")
            .field("measure", &self.watch.measure)
            .field("threshold", &self.watch.threshold)
            .field("interval", &self.watch.interval())
            .field("replacer", &self.watch.replacer)
            .finish()
    }
}

impl Watch {
    fn interval(&self) -> Duration {
        self.interval
            .unwrap_or_else(|| self.measure.default_interval())
    }

    #[inline]
    fn check(&self, bytes: u64) {
        if bytes > self.threshold {
            self.fire(bytes);
        }
    }

    // Out of line: the request path keeps only the load and the compare.
    #[cold]
    #[inline(never)]
    fn fire(&self, bytes: u64) {
        self.replacer.fire(|| {
            format!(
                "memory-footprint: {} {} > {}",
                self.measure,
                fmt_mb(bytes),
                fmt_mb(self.threshold)
            )
        });
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
fn fmt_mb(bytes: u64) -> String {
    if bytes.is_multiple_of(MIB) {
        format!("{} MB", bytes / MIB)
    } else {
        format!("{:.1} MB", bytes as f64 / MIB as f64)
    }
}

impl<S> Layer<S> for MemoryFootprint {
    type Service = MemoryFootprintService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        // Registered with the sampler when first used, not when built: a layer reconfigured
        // by the builder methods, or never applied, starts nothing.
        let watch = &self.watch;
        watch.registered.call_once(|| {
            let job: Weak<dyn Job> = Arc::downgrade(watch) as Weak<dyn Job>;
            sampler::register(job, Some(watch.measure), watch.interval());
        });
        MemoryFootprintService {
            inner,
            watch: self.watch.clone(),
        }
    }
}

/// The service made by [`MemoryFootprint`]: compares the last memory sample on each request.
///
/// ```
/// use regiment_tower::MemoryFootprint;
/// use tower::{Layer, service_fn};
/// let svc = MemoryFootprint::mb(750).layer(service_fn(|x: u8| async move { Ok::<_, ()>(x) }));
/// assert_eq!(svc.layer().threshold(), 750 << 20);
/// ```
#[derive(Clone)]
pub struct MemoryFootprintService<S> {
    inner: S,
    watch: Arc<Watch>,
}

impl<S> MemoryFootprintService<S> {
    /// The layer's settings, as a layer (it shares this service's watch).
    ///
    /// ```
    /// use tower::{Layer, service_fn};
    /// let svc = regiment_tower::MemoryFootprint::mb(750).layer(service_fn(|r: u8| async move { Ok::<_, ()>(r) }));
    /// assert_eq!(svc.layer().threshold(), 750 << 20);
    /// ```
    pub fn layer(&self) -> MemoryFootprint {
        MemoryFootprint {
            watch: self.watch.clone(),
        }
    }

    /// The wrapped service.
    ///
    /// ```
    /// use tower::{Layer, service_fn};
    /// let svc = regiment_tower::MemoryFootprint::mb(750).layer(service_fn(|r: u8| async move { Ok::<_, ()>(r) }));
    /// let _inner = svc.get_ref();
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// use tower::{Layer, service_fn};
    /// let mut svc = regiment_tower::MemoryFootprint::mb(750).layer(service_fn(|r: u8| async move { Ok::<_, ()>(r) }));
    /// let _inner = svc.get_mut();
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    ///
    /// ```
    /// use tower::{Layer, service_fn};
    /// let svc = regiment_tower::MemoryFootprint::mb(750).layer(service_fn(|r: u8| async move { Ok::<_, ()>(r) }));
    /// let _inner = svc.into_inner();
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for MemoryFootprintService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryFootprintService")
            .field("inner", &self.inner)
            .field("layer", &self.layer())
            .finish()
    }
}

impl<S, R> Service<R> for MemoryFootprintService<S>
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
        self.watch.check(self.watch.current.load(Ordering::Relaxed));
        ResponseFuture {
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    /// The response future of [`MemoryFootprintService`]: the inner service's future, passed
    /// through as is (the layer's work is done when the request is accepted; the response
    /// and the error are untouched). A named type, as in tower-http, so that the future can
    /// be named in signatures and the layer can look at responses later without a breaking
    /// change. It adds nothing to the inner future's size.
    ///
    /// ```
    /// use regiment_tower::memory_footprint::ResponseFuture;
    /// use tower::{Layer, Service, service_fn};
    /// let mut svc = regiment_tower::MemoryFootprint::mb(750).layer(service_fn(|x: u8| async move { Ok::<_, ()>(x) }));
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
    use crate::test_support::{Recorder, call_now, memory_lock, wait_until};
    use std::convert::Infallible;
    use tower::{ServiceBuilder, service_fn};

    fn echo() -> impl Service<u32, Response = u32, Error = Infallible, Future: Send> + Clone {
        service_fn(|x: u32| async move { Ok::<_, Infallible>(x) })
    }

    /// RSS right now, sampled through the sampler as the layers see it.
    fn rss_now() -> u64 {
        sampler::run_now();
        sampler::current(Measure::Rss).expect("a layer registered RSS")
    }

    #[test]
    fn fires_once_past_the_threshold_and_not_below() {
        let _serial = memory_lock();
        let rec = Recorder::new();
        // Keep the thread out of it: an hour between its samples, so only run_now samples.
        let hour = Duration::from_secs(3600);
        let _probe = MemoryFootprint::bytes(u64::MAX)
            .interval(hour)
            .replacer(Recorder::new().replacer())
            .layer(echo());
        let threshold = rss_now() + 64 * MIB;
        let mut svc = MemoryFootprint::bytes(threshold)
            .interval(hour)
            .replacer(rec.replacer())
            .layer(echo());
        for i in 0..10 {
            assert_eq!(call_now(&mut svc, i).unwrap(), i);
        }
        assert_eq!(rec.calls(), 0, "below the threshold: no fire");

        // Grow by 128 MiB of touched pages, then sample. black_box: the ballast is never read,
        // and a release build could otherwise drop the allocation or never touch its pages.
        let ballast = std::hint::black_box(vec![7u8; 128 << 20]);
        assert!(rss_now() > threshold, "the ballast is resident");
        for i in 0..10 {
            assert_eq!(call_now(&mut svc, i).unwrap(), i);
        }
        assert_eq!(rec.calls(), 1, "fired exactly once");
        let reason = rec.reason().unwrap();
        assert!(reason.starts_with("memory-footprint: rss "), "{reason}");
        assert!(
            reason.ends_with(&format!("> {}", fmt_mb(threshold))),
            "{reason}"
        );
        drop(std::hint::black_box(ballast));
    }

    #[test]
    fn the_request_path_fires_without_the_sampler() {
        let _serial = memory_lock();
        let rec = Recorder::new();
        // Registration samples RSS once; the thread will not sample again for an hour, and
        // nothing here calls run_now: only the request can fire.
        let mut svc = ServiceBuilder::new()
            .layer(
                MemoryFootprint::bytes(1)
                    .interval(Duration::from_secs(3600))
                    .replacer(rec.replacer()),
            )
            .service(echo());
        assert_eq!(rec.calls(), 0);
        assert_eq!(call_now(&mut svc, 1).unwrap(), 1);
        assert_eq!(rec.calls(), 1);
        assert!(rec.reason().unwrap().ends_with("> 0.0 MB"));
    }

    #[test]
    fn the_sampler_fires_an_idle_worker() {
        let _serial = memory_lock();
        let rec = Recorder::new();
        let _svc = MemoryFootprint::mb(1)
            .interval(Duration::from_secs(3600))
            .replacer(rec.replacer())
            .layer(echo());
        assert_eq!(rec.calls(), 0, "registration alone does not fire");
        sampler::run_now();
        assert_eq!(rec.calls(), 1);
        sampler::run_now();
        assert_eq!(rec.calls(), 1);
    }

    #[test]
    fn several_layers_fire_one_replacer_once() {
        let _serial = memory_lock();
        let rec = Recorder::new();
        let layer = |m| {
            MemoryFootprint::bytes(1)
                .measure(m)
                .replacer(rec.replacer())
        };
        let mut svc = ServiceBuilder::new()
            .layer(layer(Measure::Rss))
            .layer(layer(Measure::Rss))
            .layer(layer(Measure::Pss))
            .layer(layer(Measure::Uss))
            .service(echo());
        for i in 0..100 {
            call_now(&mut svc, i).unwrap();
        }
        sampler::run_now();
        assert_eq!(rec.calls(), 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn pss_and_uss_are_sampled_on_linux() {
        let _serial = memory_lock();
        let _svc = MemoryFootprint::mb(u64::MAX >> 20)
            .measure(Measure::Uss)
            .replacer(Recorder::new().replacer())
            .layer(echo());
        let _svc2 = MemoryFootprint::mb(u64::MAX >> 20)
            .measure(Measure::Pss)
            .replacer(Recorder::new().replacer())
            .layer(echo());
        sampler::run_now();
        let uss = sampler::current(Measure::Uss).unwrap();
        let pss = sampler::current(Measure::Pss).unwrap();
        assert!(uss > 0 && uss <= pss, "uss {uss} pss {pss}");
    }

    #[tokio::test]
    async fn poll_ready_and_errors_pass_through() {
        use tower::ServiceExt;
        let rec = Recorder::new();
        let failing = service_fn(|x: u32| async move { if x == 0 { Err("zero") } else { Ok(x) } });
        let mut svc = MemoryFootprint::bytes(u64::MAX)
            .replacer(rec.replacer())
            .layer(failing);
        assert_eq!(svc.ready().await.unwrap().call(0).await, Err("zero"));
        assert_eq!(svc.ready().await.unwrap().call(3).await, Ok(3));
        // tower's ConcurrencyLimit is not ready while its one permit is out: neither are we.
        let mut limited = MemoryFootprint::bytes(u64::MAX)
            .replacer(rec.replacer())
            .layer(tower::limit::ConcurrencyLimit::new(echo(), 1));
        let fut = limited.ready().await.unwrap().call(1);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(limited.poll_ready(&mut cx).is_pending());
        assert_eq!(fut.await.unwrap(), 1);
        assert!(limited.poll_ready(&mut cx).is_ready());
        assert_eq!(rec.calls(), 0);
    }

    #[test]
    fn the_sampler_forgets_a_watch_once_its_layers_and_services_are_dropped() {
        // What a master relies on: it drops the app it was given, and its sampler thread must
        // then stop sampling for it (and park once nothing is left).
        let _serial = memory_lock();
        let rec = Recorder::new();
        let layer = MemoryFootprint::bytes(u64::MAX)
            .interval(Duration::from_millis(1))
            .replacer(rec.replacer());
        let svc = layer.layer(echo());
        // The weak reference keeps the allocation, so its address cannot be reused by a job
        // registered later by another test.
        let watch = Arc::downgrade(&layer.watch);
        assert!(sampler::is_scheduled(watch.as_ptr()));
        drop((layer, svc));
        assert!(watch.upgrade().is_none());
        // The thread wakes within a millisecond for this watch's interval, and prunes it.
        wait_until("the dropped watch left the schedule", || {
            !sampler::is_scheduled(watch.as_ptr())
        });
        assert_eq!(rec.calls(), 0);
    }

    #[test]
    fn a_fired_watch_leaves_the_schedule_while_its_layer_lives() {
        let _serial = memory_lock();
        let rec = Recorder::new();
        let layer = MemoryFootprint::bytes(1)
            .interval(Duration::from_millis(1))
            .replacer(rec.replacer());
        let svc = layer.layer(echo());
        let watch = Arc::downgrade(&layer.watch);
        // The thread fires it (1 byte: always above), then drops it from its schedule.
        wait_until("the watch fired and left the schedule", || {
            rec.calls() > 0 && !sampler::is_scheduled(watch.as_ptr())
        });
        assert_eq!(rec.calls(), 1);
        // Left for having fired, not for having been dropped.
        assert!(watch.upgrade().is_some());
        drop((layer, svc));
    }

    #[test]
    fn the_response_future_is_the_inner_one_and_no_bigger() {
        type Inner = std::future::Ready<Result<[u8; 24], ()>>;
        assert_eq!(
            std::mem::size_of::<ResponseFuture<Inner>>(),
            std::mem::size_of::<Inner>()
        );
    }

    #[test]
    fn formats_megabytes() {
        assert_eq!(fmt_mb(750 * MIB), "750 MB");
        assert_eq!(fmt_mb(812 * MIB + MIB / 2), "812.5 MB");
    }
}
