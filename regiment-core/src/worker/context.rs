//! The state of this worker process, built once from the environment its master set, when the
//! worker attaches.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::drain::Drain;
use super::in_flight::{InFlightRegistry, InFlightSnapshot, ListedMethod, Ticket, VersionCode};
use super::ipc::Outgoing;
use crate::Readiness;
use crate::latency::{self, BUCKETS, Histogram};
use crate::protocol::{CriterionKind, WorkerMessage};
use crate::{log_guard, worker_vars};

/// This worker's request counters, as its heartbeats report them to the master. The server
/// counts (regiment-axum's does, for every request); applications read them.
///
/// ```
/// // A debug endpoint can show what the master sees in `Handle::status`.
/// let line = regiment_core::worker::stats()
///     .map(|s| format!("{} requests, {} in flight", s.requests(), s.in_flight()));
/// assert_eq!(line, None); // outside a cluster nothing is counted
/// ```
#[derive(Debug)]
pub struct Stats {
    // Plain relaxed atomics: no lock on the request path. Counted through `crate::plumbing`.
    pub(crate) requests: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    pub(crate) responses_5xx: AtomicU64,
    pub(crate) failures: AtomicU64,
    /// How long requests took, counted as each finishes: one relaxed increment.
    pub(crate) latency: Histogram,
    /// The requests in flight, for a report read from another thread (see
    /// [`super::in_flight`]).
    pub(crate) in_flight_requests: InFlightRegistry,
}

/// A request counted in by [`crate::plumbing::request_started`], to hand back to
/// [`crate::plumbing::request_finished`].
#[derive(Debug)]
pub struct StartedRequest {
    /// When it came, on [`crate::latency::now_ns`]'s clock.
    started_ns: u64,
    ticket: Ticket,
}

impl Stats {
    pub(crate) const fn new() -> Self {
        Self {
            requests: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            responses_5xx: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            latency: Histogram::new(),
            in_flight_requests: InFlightRegistry::new(),
        }
    }

    /// Requests accepted since the worker started.
    ///
    /// ```
    /// // A worker can log its share of the traffic when it drains.
    /// if let Some(stats) = regiment_core::worker::stats() {
    ///     println!("served {} requests", stats.requests());
    /// }
    /// ```
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests being served now.
    ///
    /// ```
    /// // Nothing in flight: a good moment for housekeeping that would slow requests down.
    /// let idle = regiment_core::worker::stats().is_none_or(|s| s.in_flight() == 0);
    /// assert!(idle);
    /// ```
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Responses with a 5xx status since the worker started: what a canary rollout compares
    /// between generations.
    ///
    /// ```
    /// // An error ratio of one's own, for a log line.
    /// let ratio = regiment_core::worker::stats()
    ///     .map(|s| s.responses_5xx() as f64 / s.requests().max(1) as f64);
    /// assert_eq!(ratio, None);
    /// ```
    pub fn responses_5xx(&self) -> u64 {
        self.responses_5xx.load(Ordering::Relaxed)
    }

    /// Requests that ended without a complete response: the handler panicked, the service
    /// returned an error (never, for an axum `Router`, whose errors are responses), or the
    /// response body failed. A canary rollout counts them beside the 5xx answers: a build whose
    /// handlers panic answers nothing at all.
    ///
    /// ```
    /// let failing = regiment_core::worker::stats().is_some_and(|s| s.failures() > 0);
    /// assert!(!failing);
    /// ```
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// A request is handed to the service: one more request, one more in flight.
    pub(crate) fn count_started(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A request's response is done: one fewer in flight.
    pub(crate) fn count_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// [`Stats::count_started`], and the request listed as in flight from now.
    ///
    /// Inlined whole into the service wrapper's `call`, as is what it calls: out of line, its
    /// frame, its spills and its `StartedRequest` returned through memory cost about a quarter
    /// of what the listing and the clock read themselves cost (measured; BENCHMARKS.md, "Latency
    /// buckets and the requests in flight").
    #[inline(always)]
    pub(crate) fn request_started(
        &self,
        method: ListedMethod,
        path: &str,
        version: VersionCode,
    ) -> StartedRequest {
        self.count_started();
        let started_ns = latency::now_ns();
        StartedRequest {
            started_ns,
            ticket: self
                .in_flight_requests
                .insert(method, path, version, started_ns),
        }
    }

    /// [`Stats::count_finished`], the request taken off the list and its time, from its start
    /// to now, counted in the latency histogram.
    #[inline(always)]
    pub(crate) fn request_finished(&self, request: StartedRequest) {
        self.in_flight_requests.remove(request.ticket);
        self.latency
            .record_ns(latency::now_ns().saturating_sub(request.started_ns));
        self.count_finished();
    }

    /// The requests in flight now.
    pub(crate) fn in_flight_requests(&self) -> InFlightSnapshot {
        self.in_flight_requests.snapshot(latency::now_ns())
    }

    /// A response with a 5xx status.
    pub(crate) fn count_5xx(&self) {
        self.responses_5xx.fetch_add(1, Ordering::Relaxed);
    }

    /// A request that ended without a complete response.
    pub(crate) fn count_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) struct WorkerContext {
    pub slot: usize,
    pub generation: u64,
    pub readiness: Readiness,
    pub heartbeat: Duration,
    /// Shared with the IPC thread, which begins it.
    pub(super) drain: Arc<Drain>,
    pub stats: Stats,
    outbox: mpsc::UnboundedSender<Outgoing>,
    /// Held while a heartbeat is read from the counters and handed to the IPC thread, so that
    /// the last heartbeat of an abandoned drain is never followed by an older one; holds the
    /// latency counts the last heartbeat was taken at, which the next one sends the counts
    /// since.
    heartbeat_order: Mutex<[u64; BUCKETS]>,
    /// The resident memory of the last periodic heartbeat, for a heartbeat sent out of turn.
    last_rss: AtomicU64,
    ready_sent: AtomicBool,
    replace_sent: AtomicBool,
    heartbeat_started: AtomicBool,
}

static CONTEXT: OnceLock<Option<WorkerContext>> = OnceLock::new();

fn var<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok()?.trim().parse().ok()
}

impl WorkerContext {
    /// The context, built on the first call in a worker (see [`super::attach`]); `None`
    /// outside a cluster.
    pub(super) fn attach() -> Option<&'static WorkerContext> {
        CONTEXT.get_or_init(Self::from_env).as_ref()
    }

    /// Takes the channel and starts the IPC thread, handing it the drain it begins.
    fn from_env() -> Option<WorkerContext> {
        let stream = super::channel::take()?;
        let readiness = std::env::var(worker_vars::READINESS)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_default();
        let (outbox, rx) = mpsc::unbounded_channel();
        let mut ctx = WorkerContext::new(readiness, outbox);
        ctx.slot = var(worker_vars::WORKER_ID).unwrap_or(0);
        ctx.generation = var(worker_vars::GENERATION).unwrap_or(1);
        ctx.heartbeat =
            Duration::from_millis(var(worker_vars::HEARTBEAT_MS).unwrap_or(1000).max(10));
        let drain_timeout =
            Duration::from_millis(var(worker_vars::DRAIN_TIMEOUT_MS).unwrap_or(30_000));
        ctx.drain = Arc::new(Drain::new(ctx.slot, drain_timeout));
        if let Err(e) = super::ipc::start(stream, rx, ctx.drain.clone()) {
            tracing::error!(error = %e, "could not start the IPC thread; this worker cannot hear from its master");
            return None;
        }
        // As soon as it knows it is a worker: `ps`, `top` and `pgrep` show its program's name.
        #[cfg(target_os = "linux")]
        super::process_name::adopt();
        if readiness == Readiness::Started {
            ctx.send_ready();
        }
        Some(ctx)
    }

    /// A context of slot 0, generation 1, with the default heartbeat and drain timeout, that
    /// hands what it sends to `outbox`.
    fn new(readiness: Readiness, outbox: mpsc::UnboundedSender<Outgoing>) -> Self {
        WorkerContext {
            slot: 0,
            generation: 1,
            readiness,
            heartbeat: Duration::from_secs(1),
            drain: Arc::new(Drain::new(0, Duration::from_secs(30))),
            stats: Stats::new(),
            outbox,
            heartbeat_order: Mutex::new([0; BUCKETS]),
            last_rss: AtomicU64::new(0),
            ready_sent: AtomicBool::new(false),
            replace_sent: AtomicBool::new(false),
            heartbeat_started: AtomicBool::new(false),
        }
    }

    fn send(&self, msg: WorkerMessage) {
        // The receiver lives as long as the process (the IPC thread never returns).
        let _ = self.outbox.send(Outgoing::Message(msg));
    }

    /// Hands the IPC thread a heartbeat of the counters as they are now; `count_first` runs
    /// before they are read, in the same turn.
    fn send_heartbeat(&self, count_first: impl FnOnce(&Stats)) {
        let mut last_latency = self
            .heartbeat_order
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        count_first(&self.stats);
        let latency_now = self.stats.latency.counts();
        let interval = latency::since(&latency_now, &last_latency);
        *last_latency = latency_now;
        self.send(WorkerMessage::Heartbeat {
            rss: self.last_rss.load(Ordering::Relaxed),
            requests: self.stats.requests(),
            in_flight: self.stats.in_flight(),
            responses_5xx: self.stats.responses_5xx(),
            failures: self.stats.failures(),
            // Not sent for an interval without a finished request: nothing to estimate.
            latency: interval.iter().any(|&c| c > 0).then(|| interval.to_vec()),
        });
    }

    /// Gives up the drain: the requests in flight are counted as failed, a last heartbeat
    /// says so, and `drain-abandoned` tells the master what is left open. Resolves once both
    /// are written to the channel, or at `by`, whichever comes first.
    pub(super) async fn abandon_drain(&self, connections: u64, by: Instant) {
        let mut in_flight = 0;
        self.send_heartbeat(|stats| {
            in_flight = stats.in_flight();
            stats.failures.fetch_add(in_flight, Ordering::Relaxed);
        });
        tracing::info!(
            slot = self.slot,
            in_flight,
            connections,
            "worker gives up its drain"
        );
        self.send(WorkerMessage::DrainAbandoned {
            in_flight,
            connections,
        });
        let (written, flushed) = oneshot::channel();
        let _ = self.outbox.send(Outgoing::Flush(written));
        let _ = tokio::time::timeout_at(by.into(), flushed).await;
    }

    pub(super) fn send_ready(&self) {
        if !self.ready_sent.swap(true, Ordering::SeqCst) {
            self.send(WorkerMessage::Ready);
            log_guard::survive(|| tracing::debug!(slot = self.slot, "worker ready"));
        }
    }

    pub(super) fn request_replacement(&self, criterion: CriterionKind, reason: String) -> bool {
        if self.replace_sent.swap(true, Ordering::SeqCst) {
            return false;
        }
        // Sent before it is logged: a log that fails must not keep the request from the master.
        let logged = reason.clone();
        // The figures of this moment, first: the master backs off the replacement of a worker
        // that asks before it served anything, judged by the requests its heartbeats count,
        // which would otherwise be up to an interval old (a worker that served its 500
        // requests since its last heartbeat did serve).
        if self.heartbeat_started.load(Ordering::SeqCst) {
            self.send_heartbeat(|_| {});
        }
        self.send(WorkerMessage::ReplaceMe { criterion, reason });
        log_guard::survive(
            || tracing::info!(slot = self.slot, reason = %logged, "worker requests its replacement"),
        );
        true
    }

    pub(super) fn replace_requested(&self) -> bool {
        self.replace_sent.load(Ordering::Relaxed)
    }

    pub(super) fn start_heartbeat(&'static self) {
        if self.heartbeat_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.heartbeat_started.store(false, Ordering::SeqCst);
            tracing::warn!("start_heartbeat called outside a tokio runtime; no heartbeats sent");
            return;
        };
        handle.spawn(async move {
            let mut rss = super::memory::Statm::open().ok();
            let mut tick = tokio::time::interval(self.heartbeat);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let rss = rss
                    .as_mut()
                    .and_then(|s| s.resident_bytes().ok())
                    .unwrap_or(0);
                self.last_rss.store(rss, Ordering::Relaxed);
                self.send_heartbeat(|_| {});
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each heartbeat sends the latency counts of its own interval: the requests that
    /// finished since the heartbeat before, by bucket; none for an interval without any.
    #[test]
    fn heartbeats_carry_the_latency_of_their_interval() {
        let (outbox, mut written) = mpsc::unbounded_channel();
        let ctx = WorkerContext::new(Readiness::Listening, outbox);
        // As `Stats::request_finished` counts a request that took `after`.
        let finish = |after: Duration| ctx.stats.latency.record_ns(after.as_nanos() as u64);
        let latency = |written: &mut mpsc::UnboundedReceiver<Outgoing>| match written.try_recv() {
            Ok(Outgoing::Message(WorkerMessage::Heartbeat { latency, .. })) => latency,
            other => panic!("not a heartbeat: {other:?}"),
        };
        finish(Duration::from_micros(50));
        finish(Duration::from_millis(3));
        ctx.send_heartbeat(|_| {});
        let mut first = vec![0; BUCKETS];
        first[0] = 1;
        first[latency::bucket_of(Duration::from_millis(3))] = 1;
        assert_eq!(latency(&mut written), Some(first));
        ctx.send_heartbeat(|_| {});
        assert_eq!(latency(&mut written), None, "no request finished since");
        finish(Duration::from_secs(2));
        ctx.send_heartbeat(|_| {});
        let mut third = vec![0; BUCKETS];
        third[latency::bucket_of(Duration::from_secs(2))] = 1;
        assert_eq!(latency(&mut written), Some(third), "only the interval's");
    }

    /// A request is listed until it finishes, then counted once in the latency.
    #[test]
    fn a_request_is_listed_then_timed_once() {
        let stats = Stats::new();
        let version = VersionCode::of(http::Version::HTTP_11);
        let request = stats.request_started(ListedMethod::Known(1), "/a", version);
        assert_eq!(stats.in_flight_requests().requests[0].path, "/a");
        stats.request_finished(request);
        assert!(stats.in_flight_requests().requests.is_empty());
        assert_eq!(stats.latency.counts().iter().sum::<u64>(), 1);
        assert_eq!((stats.requests(), stats.in_flight()), (1, 0));
    }

    /// What the worker hands its IPC thread when it gives up its drain, in order: a heartbeat
    /// that counts the requests in flight as failed, what it left, and a flush it waits for.
    #[tokio::test]
    async fn a_drain_given_up_counts_what_is_in_flight_as_failed_then_says_so() {
        let (outbox, mut written) = mpsc::unbounded_channel();
        let ctx = WorkerContext::new(Readiness::Listening, outbox);
        for _ in 0..5 {
            ctx.stats.count_started();
        }
        ctx.stats.count_finished();
        ctx.stats.count_finished();
        ctx.stats.count_failure();
        ctx.last_rss.store(4096, Ordering::Relaxed);
        // The IPC thread: writes (here, keeps) each message, and answers the flush.
        let thread = tokio::spawn(async move {
            let mut messages = Vec::new();
            while let Some(out) = written.recv().await {
                match out {
                    Outgoing::Message(m) => messages.push(m),
                    Outgoing::Flush(done) => {
                        let _ = done.send(());
                        return messages;
                    }
                }
            }
            messages
        });
        let by = Instant::now() + Duration::from_secs(60);
        tokio::time::timeout(Duration::from_secs(60), ctx.abandon_drain(2, by))
            .await
            .expect("resolves once flushed");
        assert_eq!(
            thread.await.unwrap(),
            [
                WorkerMessage::Heartbeat {
                    rss: 4096,
                    requests: 5,
                    in_flight: 3,
                    responses_5xx: 0,
                    failures: 1 + 3,
                    latency: None,
                },
                WorkerMessage::DrainAbandoned {
                    in_flight: 3,
                    connections: 2,
                },
            ]
        );
        assert_eq!(ctx.stats.failures(), 4, "the application reads it too");
    }
}
