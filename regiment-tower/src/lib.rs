//! # regiment-tower
//!
//! Replacement criteria for regiment workers, as tower layers. Each layer watches one thing
//! and, when its threshold is crossed, asks the regiment master to replace this worker. The
//! master starts a replacement, waits for it to be ready, then drains this worker: no request
//! is dropped, and this worker serves every request normally until then.
//!
//! - [`MemoryFootprint`]: resident memory (RSS, or PSS/USS on Linux) above a threshold,
//!   sampled off the request path by one background thread.
//! - [`RequestCount`]: a number of accepted requests, with optional jitter.
//! - [`Criterion`] + [`Replace::when`]: your own criterion in about ten lines, seeing requests,
//!   responses and a periodic tick. [`MaxAge`] (running time, with splay) is one.
//!
//! On the request path the layers do relaxed atomic loads and increments only: no syscall, no
//! lock, no allocation (`BENCHMARKS.md` at the workspace root has the figures). They follow
//! tower-http's conventions: `poll_ready` is delegated, response and error types are those of
//! the inner service, and they work with `tower::ServiceBuilder`, axum and
//! plain tower services.
//!
//! Each criterion fires at most once per worker, however many layers fire, and its reason
//! (`memory-footprint: rss 812 MB > 750 MB`) travels to the master, which shows it in its events
//! and status. Outside a regiment cluster firing is a no-op that logs one warning, so an app
//! keeps its layers when run on its own. To observe or redirect firings (tests, metrics), give
//! a layer a [`Replacer`] of your own.
//!
//! ```
//! use axum::{Router, routing::get};
//! use regiment_tower::{MemoryFootprint, RequestCount};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let routes = Router::new().route("/", get(|| async { "hello" }));
//! // Around the whole app: `Router::layer` would wrap (and box) each route on its own.
//! let app = ServiceBuilder::new()
//!     .layer(MemoryFootprint::mb(750))      // replace this worker above 750 MB RSS
//!     .layer(RequestCount::new(10_000))     // replace after 10 000 requests
//!     .service(routes);
//! // regiment_axum::serve(app).await?;      // master: supervise; worker: serve
//!
//! let res = app.oneshot(http::Request::get("/").body(axum::body::Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(res.status(), 200);
//! # }
//! ```

#[macro_use]
mod macros;

pub mod criterion;
pub mod fire;
pub mod max_age;
pub mod memory_footprint;
mod rand;
pub mod request_count;
pub mod sampler;

pub use criterion::{Criterion, CriterionLayer, CriterionService, Replace, Verdict};
pub use fire::Replacer;
pub use max_age::MaxAge;
pub use memory_footprint::{MemoryFootprint, MemoryFootprintService};
/// regiment-core, re-exported so that code using the layers can reach the worker-side calls
/// (`worker::request_replacement`, `worker::slot`, ...) and the events with the same version
/// the layers fire through, without a dependency of its own.
///
/// ```
/// // Outside a cluster: not a worker, no slot.
/// assert!(!regiment_tower::regiment_core::worker::is_worker());
/// assert_eq!(regiment_tower::regiment_core::worker::slot(), None);
/// ```
pub use regiment_core;
pub use request_count::{RequestCount, RequestCountService};
pub use sampler::Measure;

#[cfg(test)]
mod test_support {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

    use crate::Replacer;

    /// Serialises the tests that sample memory or call `sampler::run_now` (which runs every
    /// registered job, other tests' included), so a test's "not yet" cannot be broken by
    /// another test's ballast or forced run.
    pub(crate) fn memory_lock() -> MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls a service that is ready at once and answers at once (service_fn over an async
    /// block that does not wait), without a runtime: tests that hold `memory_lock` stay sync.
    pub(crate) fn call_now<S: tower::Service<R>, R>(
        svc: &mut S,
        req: R,
    ) -> Result<S::Response, S::Error> {
        use std::task::{Context, Poll, Waker};
        let mut cx = Context::from_waker(Waker::noop());
        match svc.poll_ready(&mut cx) {
            Poll::Ready(r) => r?,
            Poll::Pending => panic!("the service is not ready at once"),
        }
        match std::pin::pin!(svc.call(req)).poll(&mut cx) {
            Poll::Ready(r) => r,
            Poll::Pending => panic!("the service does not answer at once"),
        }
    }

    /// Waits until `done` holds, polling every millisecond. No timing is asserted: the ceiling
    /// (two minutes) only turns a sampler thread that never gets there into a failure naming
    /// `what`, rather than a hang.
    pub(crate) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !done() {
            assert!(
                std::time::Instant::now() < give_up,
                "timed out waiting until {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// A replacer of its own that records what reaches it.
    pub(crate) struct Recorder {
        calls: Arc<AtomicUsize>,
        reason: Arc<OnceLock<String>>,
        replacer: Replacer,
    }

    impl Recorder {
        pub(crate) fn new() -> Self {
            let calls = Arc::new(AtomicUsize::new(0));
            let reason = Arc::new(OnceLock::new());
            let (c, r) = (calls.clone(), reason.clone());
            let replacer = Replacer::new(move |why| {
                c.fetch_add(1, Ordering::SeqCst);
                let _ = r.set(why.to_string());
            });
            Self {
                calls,
                reason,
                replacer,
            }
        }

        pub(crate) fn replacer(&self) -> Replacer {
            self.replacer.clone()
        }

        /// How many times the callback ran (the replacer's own flag aside).
        pub(crate) fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }

        pub(crate) fn reason(&self) -> Option<String> {
            self.reason.get().cloned()
        }
    }
}
