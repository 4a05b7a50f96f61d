//! The worker side: calls usable from any code in a worker process.
//!
//! A worker is recognised by the variables its master set (see [`crate::env`]); the first call
//! into this module takes the IPC channel and starts a small thread (`regiment-ipc`) that talks
//! to the master, so these calls work from any thread, inside or outside a tokio runtime.
//! Outside a regiment cluster every call is a harmless no-op, and the first one logs a single
//! warning.
//!
//! ```no_run
//! use regiment_core::worker;
//!
//! # async fn serve_until_drained() {
//! if let Some(slot) = worker::slot() {
//!     println!("worker in slot {slot}, generation {:?}", worker::generation());
//! }
//! // ... start accepting on regiment_core::listen::take_inherited() ...
//! worker::listening(); // readiness `listening`: tell the master we accept
//! # let cache_is_corrupt = false;
//! if cache_is_corrupt {
//!     worker::request_replacement("cache corrupt"); // idempotent
//! }
//! worker::drained().await; // the master (or SIGTERM, or its death) asks us to stop
//! # }
//! ```

mod context;
mod ipc;
pub mod memory;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

pub use context::Stats;
use context::WorkerContext;

use crate::Readiness;

static WARNED_OUTSIDE: AtomicBool = AtomicBool::new(false);

/// Set once this process builds a [`crate::Supervisor`]: a master holds the application too
/// (`serve(app)` gets the router before it knows its role), and a criterion firing there is
/// expected, not a misconfiguration worth a warning.
pub(crate) static SUPERVISING: AtomicBool = AtomicBool::new(false);

fn ctx(call: &'static str) -> Option<&'static WorkerContext> {
    let ctx = WorkerContext::get();
    if ctx.is_none() && SUPERVISING.load(Ordering::Relaxed) {
        tracing::debug!(call, "worker call in the master ignored");
    } else if ctx.is_none() && !WARNED_OUTSIDE.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            call,
            "not running as a regiment worker: regiment worker calls are no-ops in this process"
        );
    }
    ctx
}

/// True in a process started by a regiment master as one of its workers.
pub fn is_worker() -> bool {
    WorkerContext::get().is_some()
}

/// This worker's slot, `0..workers` (`REGIMENT_WORKER_ID`), or `None` outside a cluster.
pub fn slot() -> Option<usize> {
    WorkerContext::get().map(|c| c.slot)
}

/// This worker's generation (1 at start, +1 per rolling restart), or `None` outside a cluster.
pub fn generation() -> Option<u64> {
    WorkerContext::get().map(|c| c.generation)
}

/// The readiness mode the master expects of this worker.
pub fn readiness() -> Option<Readiness> {
    WorkerContext::get().map(|c| c.readiness)
}

/// Asks the master to replace this worker: it starts a replacement in the same slot and drains
/// this one once the replacement is ready. Only the first call of a process is sent (the master
/// ignores repeats too); this worker keeps serving normally until it is told to drain.
///
/// Returns `true` if this call was the one sent.
///
/// ```
/// // Outside a cluster this is a no-op that warns once.
/// assert!(!regiment_core::worker::request_replacement("rss 812 MB > 750 MB"));
/// ```
pub fn request_replacement(reason: impl Into<String>) -> bool {
    match ctx("request_replacement") {
        Some(c) => c.request_replacement(reason.into()),
        None => false,
    }
}

/// True once [`request_replacement`] has been called in this worker.
pub fn replacement_requested() -> bool {
    WorkerContext::get().is_some_and(|c| c.replace_requested())
}

/// Marks this worker ready by hand, whatever its readiness mode. Meant for readiness `manual`
/// (caches warmed, pools open). Only the first call is sent.
pub fn ready() {
    if let Some(c) = ctx("ready") {
        c.send_ready();
    }
}

/// Called by a server once it accepts connections: marks the worker ready if its readiness is
/// `listening` (the default), otherwise does nothing.
pub fn listening() {
    if let Some(c) = WorkerContext::get()
        && c.readiness == Readiness::Listening
    {
        c.send_ready();
    }
}

/// The per-worker counters reported in heartbeats; servers update them.
pub fn stats() -> Option<&'static Stats> {
    WorkerContext::get().map(|c| &c.stats)
}

/// When the drain started, the instant by which the master kills this worker.
pub fn drain_deadline() -> Option<Instant> {
    WorkerContext::get().and_then(|c| c.drain_deadline())
}

/// True once this worker has been told to drain.
pub fn is_draining() -> bool {
    WorkerContext::get().is_some_and(|c| c.drain.is_cancelled())
}

/// Resolves when this worker must stop accepting and finish: the master sent `drain`, the
/// master is gone (EOF on the IPC channel), or the worker received SIGTERM or SIGINT.
/// Outside a cluster it never resolves.
pub fn drained() -> Drained {
    Drained {
        inner: ctx("drained").map(|c| Box::pin(c.drain.clone().cancelled_owned())),
    }
}

/// The future returned by [`drained`].
pub struct Drained {
    inner: Option<Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>>,
}

impl Future for Drained {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        match self.inner.as_mut() {
            Some(f) => f.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

/// Starts sending heartbeats (RSS and [`Stats`]) from the calling tokio runtime, so that a
/// blocked runtime shows as silence to the master. Servers call this once; further calls and
/// calls outside a cluster do nothing.
pub fn start_heartbeat() {
    if let Some(c) = WorkerContext::get() {
        c.start_heartbeat();
    }
}

/// The interval of heartbeats configured by the master.
pub fn heartbeat_interval() -> Option<Duration> {
    WorkerContext::get().map(|c| c.heartbeat)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test process is not a worker: every call is a harmless no-op.
    #[tokio::test]
    async fn outside_a_cluster_every_call_is_a_no_op() {
        assert!(!is_worker());
        assert_eq!((slot(), generation(), readiness()), (None, None, None));
        assert!(!request_replacement("first"));
        assert!(!request_replacement("second"));
        assert!(!replacement_requested());
        ready();
        listening();
        start_heartbeat();
        assert!(stats().is_none() && drain_deadline().is_none() && !is_draining());
        // The drain signal never comes.
        let pending = tokio::time::timeout(Duration::from_millis(20), drained()).await;
        assert!(pending.is_err());
    }
}
