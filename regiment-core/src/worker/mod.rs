//! The worker side: calls usable from any code in a worker process.
//!
//! A worker is recognised by the variables its master set (see [`crate::worker_vars`]), which
//! [`is_worker`] (and [`crate::role`]) only read. The first other call into this module, or
//! [`crate::listen::take_inherited`], attaches the worker to its master: takes the IPC channel
//! and starts a small thread (`regiment-ipc`) that talks to the master, so these calls work
//! from any thread, inside or outside a tokio runtime. Outside a regiment cluster every call is
//! a harmless no-op, and the first one logs a single warning.
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

// Finds and takes the IPC descriptor it inherited (SAFETY comments there).
#[allow(unsafe_code)]
pub(crate) mod channel;
pub(crate) mod context;
mod drain;
pub(crate) mod in_flight;
mod ipc;
pub(crate) mod memory;
#[cfg(target_os = "linux")]
pub(crate) mod process_name;
mod report;
#[cfg(target_os = "linux")]
mod stacks;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

pub use context::Stats;
use context::WorkerContext;

use crate::Readiness;
use crate::protocol::CriterionKind;

static WARNED_OUTSIDE: AtomicBool = AtomicBool::new(false);

/// Attaches this worker to its master, once, and says whether this process is an attached
/// worker: takes the IPC channel (close-on-exec from then on) and starts the small thread that
/// talks to the master, which reports readiness `started`, sends heartbeats, and drains this
/// worker on the master's word, on its death (EOF on the channel) or on SIGTERM/SIGINT.
/// Idempotent; `false` outside a cluster.
///
/// Every other call of this module but [`is_worker`] attaches, and so do
/// [`crate::listen::take_inherited`] and regiment-axum's server. A worker that serves on
/// sockets it takes some other way, and makes no other worker call, calls this first thing:
/// until it does, its master hears nothing from it (readiness `started` counts from here), and
/// processes it starts inherit the channel.
///
/// ```
/// use regiment_core::{Role, worker};
/// if regiment_core::role() == Role::Worker {
///     // Sockets taken by the application's own code: attach before serving on them.
///     assert!(worker::attach());
/// } else {
///     assert!(!worker::attach()); // a master, or a process run by hand
/// }
/// ```
pub fn attach() -> bool {
    context().is_some()
}

/// The worker's context, attaching first (see [`attach`]); `None` outside a cluster.
pub(crate) fn context() -> Option<&'static WorkerContext> {
    WorkerContext::attach()
}

/// [`context`], with one warning outside a cluster (a debug line in a master, which holds the
/// application too: `serve(app)` gets the router before it knows its role).
fn ctx(call: &'static str) -> Option<&'static WorkerContext> {
    let ctx = context();
    if ctx.is_none() && crate::role::is_supervising() {
        tracing::debug!(call, "worker call in the master ignored");
    } else if ctx.is_none() && !WARNED_OUTSIDE.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            call,
            "not running as a regiment worker: regiment worker calls are no-ops in this process"
        );
    }
    ctx
}

/// True in a process started by a regiment master as one of its workers. It only reads what the
/// master handed the process: it takes nothing and starts nothing.
///
/// ```
/// // A binary run by hand (or by this doctest) is no worker: the same code runs as a master.
/// assert!(!regiment_core::worker::is_worker());
/// ```
pub fn is_worker() -> bool {
    channel::inherited().is_some()
}

/// This worker's slot, `0..workers` (`REGIMENT_WORKER_ID`), or `None` outside a cluster.
///
/// ```
/// // Per-slot resources (a spool directory, a debug port) follow the slot, not the pid.
/// let spool = regiment_core::worker::slot().map(|slot| format!("/var/spool/app/{slot}"));
/// assert_eq!(spool, None); // outside a cluster
/// ```
pub fn slot() -> Option<usize> {
    context().map(|c| c.slot)
}

/// This worker's generation (1 at start, +1 per rolling restart), or `None` outside a cluster.
///
/// ```
/// // Tag logs with the deploy this worker belongs to.
/// let tag = regiment_core::worker::generation().map_or("-".to_string(), |g| format!("gen{g}"));
/// assert_eq!(tag, "-"); // outside a cluster
/// ```
pub fn generation() -> Option<u64> {
    context().map(|c| c.generation)
}

/// The readiness mode the master expects of this worker.
///
/// ```
/// use regiment_core::{Readiness, worker};
/// // Only `manual` workers must call `worker::ready()` themselves.
/// let must_call_ready = worker::readiness() == Some(Readiness::Manual);
/// assert!(!must_call_ready); // outside a cluster there is no mode at all
/// ```
pub fn readiness() -> Option<Readiness> {
    context().map(|c| c.readiness)
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
    request_replacement_for(CriterionKind::Unspecified, reason.into())
}

/// See [`crate::plumbing::request_replacement_for`], its way out of the crate.
pub(crate) fn request_replacement_for(criterion: CriterionKind, reason: String) -> bool {
    match ctx("request_replacement") {
        Some(c) => c.request_replacement(criterion, reason),
        None => false,
    }
}

/// True once [`request_replacement`] has been called in this worker.
///
/// ```
/// use regiment_core::worker;
/// // A criterion checks first, so it does not build a reason it will not send.
/// if !worker::replacement_requested() {
///     worker::request_replacement("rss 812 MB > 750 MB");
/// }
/// assert!(!worker::replacement_requested()); // nothing is sent outside a cluster
/// ```
pub fn replacement_requested() -> bool {
    context().is_some_and(|c| c.replace_requested())
}

/// Marks this worker ready by hand, whatever its readiness mode. Meant for readiness `manual`
/// (caches warmed, pools open). Only the first call is sent.
///
/// ```
/// use regiment_core::worker;
/// fn warm_caches() {}
/// // Readiness `manual`: the master waits for this before draining the worker replaced.
/// warm_caches();
/// worker::ready();
/// ```
pub fn ready() {
    if let Some(c) = ctx("ready") {
        c.send_ready();
    }
}

/// Called by a server once it accepts connections: marks the worker ready if its readiness is
/// `listening` (the default), otherwise does nothing.
///
/// ```
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// // Once connections are accepted, not before: a replacement must serve before the old drains.
/// regiment_core::worker::listening();
/// # drop(listener);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn listening() {
    if let Some(c) = context()
        && c.readiness == Readiness::Listening
    {
        c.send_ready();
    }
}

/// This worker's request counters, reported in its heartbeats; the server counts them, and they
/// can be read here. `None` outside a cluster.
///
/// ```
/// // What the master shows in `Handle::status`, as this worker counts it now.
/// let in_flight = regiment_core::worker::stats().map(|s| s.in_flight());
/// assert_eq!(in_flight, None); // outside a cluster there is nothing to count
/// ```
pub fn stats() -> Option<&'static Stats> {
    context().map(|c| &c.stats)
}

/// When the drain started, the instant by which the master kills this worker, as this worker
/// reckons it: the time left that the master measured as it wrote the drain message, counted
/// from when this worker read it. It is therefore late by that message's transit (usually far
/// less than a millisecond, more on a machine short of CPU), and work that must end before the
/// kill should stop a margin before it: regiment-axum's server gives up on its open connections
/// a tenth of the time left (at most 1 s) early, and exits with its own status. For a drain
/// this worker started itself (SIGTERM, or its master gone) it is the drain timeout from then.
///
/// ```
/// use std::time::{Duration, Instant};
/// // Long jobs pick a shorter batch when the kill is near.
/// let deadline = regiment_core::worker::drain_deadline();
/// let near = deadline.is_some_and(|d| d < Instant::now() + Duration::from_secs(5));
/// let batch = if near { 10 } else { 1000 };
/// assert_eq!(batch, 1000); // not draining
/// ```
pub fn drain_deadline() -> Option<Instant> {
    context().and_then(|c| c.drain.deadline())
}

/// True once this worker has been told to drain.
///
/// ```
/// // A queue consumer checks between jobs instead of awaiting `drained()`.
/// let mut jobs = 0;
/// while !regiment_core::worker::is_draining() && jobs < 3 {
///     jobs += 1; // ... take and run one job ...
/// }
/// assert_eq!(jobs, 3);
/// ```
pub fn is_draining() -> bool {
    context().is_some_and(|c| c.drain.began().is_cancelled())
}

/// Resolves when this worker must stop accepting and finish: the master sent `drain`, the
/// master is gone (EOF on the IPC channel), or the worker received SIGTERM or SIGINT.
/// Outside a cluster it never resolves.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// // Outside a cluster it never resolves: a server run by hand stops on its own signals.
/// let drain = tokio::time::timeout(Duration::from_millis(10), regiment_core::worker::drained());
/// assert!(drain.await.is_err());
/// # }
/// ```
pub fn drained() -> Drained {
    Drained {
        inner: ctx("drained").map(|c| Box::pin(c.drain.began().clone().cancelled_owned())),
    }
}

/// The future returned by [`drained`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// // Raced against the accept loop, it ends the loop when the drain comes.
/// tokio::select! {
///     _ = regiment_core::worker::drained() => unreachable!("no master outside a cluster"),
///     _ = tokio::time::sleep(Duration::from_millis(10)) => {}
/// }
/// # }
/// ```
pub struct Drained {
    inner: Option<Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>>,
}

impl std::fmt::Debug for Drained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drained")
            .field("in_a_cluster", &self.inner.is_some())
            .finish()
    }
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

/// How long a worker that gives up its drain waits at most for its last words to be written,
/// when it has no drain deadline (it always has one while draining).
const ABANDON_FLUSH_WITHIN: Duration = Duration::from_secs(1);

/// See [`crate::plumbing::abandon_drain`], its way out of the crate.
pub(crate) async fn abandon_drain(connections: u64) {
    if let Some(c) = context() {
        let by = c
            .drain
            .deadline()
            .unwrap_or_else(|| Instant::now() + ABANDON_FLUSH_WITHIN);
        c.abandon_drain(connections, by).await;
    }
}

/// See [`crate::plumbing::start_heartbeat`], its way out of the crate.
pub(crate) fn start_heartbeat() {
    if let Some(c) = context() {
        c.start_heartbeat();
    }
}

/// The interval of heartbeats configured by the master.
///
/// ```
/// use std::time::Duration;
/// // A watchdog of one's own can use the master's pace.
/// let every = regiment_core::worker::heartbeat_interval().unwrap_or(Duration::from_secs(1));
/// assert_eq!(every, regiment_core::defaults::HEARTBEAT_INTERVAL); // outside a cluster
/// ```
pub fn heartbeat_interval() -> Option<Duration> {
    context().map(|c| c.heartbeat)
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
