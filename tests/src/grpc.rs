//! A tonic client for the end-to-end tests of the `grpc` example: ONE `Channel`, whose TCP
//! connections are watched, and a load of unary and server-streaming calls over it that
//! classifies every outcome.
//!
//! A tonic `Channel` holds one HTTP/2 connection and opens a new one by itself when that one
//! ends. The connector given to it here counts the connections it opened, those on which the
//! server sent GOAWAY, and those the server ended without one (a clean or abrupt close before
//! any GOAWAY: a lost connection, never a drain). A channel kept across rolling restarts opens
//! exactly one connection more than it received GOAWAYs.
//!
//! A call the server refused unprocessed is retried on the same channel, as the protocol allows
//! (RFC 9113 §8.7), and counted apart (`refused_retries`):
//! - a stream above the last stream id of the server's GOAWAY(NO_ERROR), or one the client
//!   tried to open after it (§6.8);
//! - a stream reset by the server with REFUSED_STREAM;
//! - a request hyper never handed to its connection because that connection had closed
//!   (hyper's "connection closed" cancellation: no byte of it was written). This is the usual
//!   one: calls queued on the channel as the GOAWAY arrives. tonic reports them as CANCELLED
//!   and does not retry them itself; a client that must not see them retries them, as here.
//!
//! Anything else is a failure: any other status, a stream that ends early or out of order, an
//! answer not complete within the call timeout.
//!
//! ```no_run
//! use std::time::Duration;
//! use tests::grpc::{GrpcLoad, WatchedChannel};
//!
//! # async fn run() {
//! let watched = WatchedChannel::connect("127.0.0.1:50051".parse().unwrap()).await;
//! let load = GrpcLoad::new(watched.channel.clone())
//!     .unary_clients(2, &[0, 50])
//!     .stream_clients(1, 10, Duration::from_millis(20));
//! let report = load.run().await;
//! assert_eq!(report.failed, 0, "{report}");
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use examples::grpc_app::proto::worker_info_client::WorkerInfoClient;
use examples::grpc_app::proto::{TicksRequest, WhoamiRequest, Worker};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tonic::Status;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::goaway_watch::{GoawayWatch, Seen};

/// What the connections of one channel went through.
#[derive(Debug, Default)]
pub struct ConnectionCounts {
    /// TCP connections the channel opened.
    pub opened: AtomicU64,
    /// Connections on which the server sent GOAWAY (counted at the first).
    pub goaway: AtomicU64,
    /// Connections the server closed or reset without a GOAWAY first.
    pub lost: AtomicU64,
    /// Connection attempts that failed.
    pub connect_errors: AtomicU64,
}

impl fmt::Display for ConnectionCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connections opened {}, ended by GOAWAY {}, lost without GOAWAY {}, connect errors {}",
            self.opened.load(Ordering::Relaxed),
            self.goaway.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
            self.connect_errors.load(Ordering::Relaxed),
        )
    }
}

/// One tonic channel to `addr` and the counts of its connections.
#[derive(Debug)]
pub struct WatchedChannel {
    /// The channel: clones share its connection.
    pub channel: Channel,
    /// What its connections went through.
    pub counts: Arc<ConnectionCounts>,
}

impl WatchedChannel {
    /// Connects (eagerly: the first connection is open, its HTTP/2 preface sent, when this
    /// returns) through a connector that watches every connection the channel opens.
    pub async fn connect(addr: SocketAddr) -> WatchedChannel {
        let counts = Arc::new(ConnectionCounts::default());
        let c = counts.clone();
        let connector = tower::service_fn(move |_: Uri| {
            let counts = c.clone();
            async move {
                let stream = TcpStream::connect(addr).await.inspect_err(|_| {
                    counts.connect_errors.fetch_add(1, Ordering::Relaxed);
                })?;
                stream.set_nodelay(true)?;
                counts.opened.fetch_add(1, Ordering::Relaxed);
                let watched = GoawayWatch::new(stream, move |seen| {
                    let count = match seen {
                        Seen::Goaway => &counts.goaway,
                        Seen::Lost => &counts.lost,
                    };
                    count.fetch_add(1, Ordering::Relaxed);
                });
                Ok::<_, std::io::Error>(TokioIo::new(watched))
            }
        });
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("a valid URI")
            .connect_timeout(Duration::from_secs(10))
            .connect_with_connector(connector)
            .await
            .expect("the channel connects");
        WatchedChannel { channel, counts }
    }
}

/// Whether `status` says the server refused the call unprocessed; see the module docs.
pub fn refused_unprocessed(status: &Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(s) = source {
        if let Some(h2) = s.downcast_ref::<h2::Error>() {
            return h2.is_remote()
                && ((h2.is_go_away() && h2.reason() == Some(h2::Reason::NO_ERROR))
                    || (h2.is_reset() && h2.reason() == Some(h2::Reason::REFUSED_STREAM)));
        }
        if let Some(e) = s.downcast_ref::<hyper::Error>()
            && e.is_canceled()
        {
            // hyper's words when it hands back a request its closed connection never took.
            return std::error::Error::source(e)
                .is_some_and(|c| c.to_string() == "connection closed");
        }
        source = s.source();
    }
    false
}

/// A load of unary and server-streaming calls over one channel, bounded in count and time.
#[derive(Debug)]
pub struct GrpcLoad {
    channel: Channel,
    clients: Vec<Calls>,
    max_calls: u64,
    max_duration: Duration,
    call_timeout: Duration,
    stop: Arc<AtomicBool>,
    completed: Arc<AtomicU64>,
}

/// What one client calls, over and over.
#[derive(Debug, Clone)]
enum Calls {
    /// `Whoami` with each of these `delay_ms` in turn.
    Unary(Vec<u32>),
    /// `Ticks` of `count` ticks, `interval` apart.
    Stream { count: u32, interval: Duration },
}

impl GrpcLoad {
    /// No client yet; at most 5000 calls per client and 60 s; a call not complete within 20 s
    /// is a failure.
    pub fn new(channel: Channel) -> Self {
        Self {
            channel,
            clients: Vec::new(),
            max_calls: 5000,
            max_duration: Duration::from_secs(60),
            call_timeout: Duration::from_secs(20),
            stop: Arc::new(AtomicBool::new(false)),
            completed: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Adds `n` clients calling `Whoami` with each of `delays_ms` in turn.
    pub fn unary_clients(mut self, n: usize, delays_ms: &[u32]) -> Self {
        assert!(!delays_ms.is_empty(), "a unary client needs a delay");
        self.clients
            .extend(std::iter::repeat_n(Calls::Unary(delays_ms.to_vec()), n));
        self
    }

    /// Adds `n` clients calling `Ticks` for `count` ticks `interval` apart.
    pub fn stream_clients(mut self, n: usize, count: u32, interval: Duration) -> Self {
        self.clients
            .extend(std::iter::repeat_n(Calls::Stream { count, interval }, n));
        self
    }

    /// Clients stop starting calls after this long.
    pub fn max_duration(mut self, d: Duration) -> Self {
        self.max_duration = d;
        self
    }

    /// A flag that makes clients stop after their current call once set.
    pub fn stop(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// A counter of calls finished so far (whatever their outcome), to watch progress.
    pub fn completed(&self) -> Arc<AtomicU64> {
        self.completed.clone()
    }

    /// Runs every client to its end and merges what they saw.
    pub async fn run(self) -> GrpcReport {
        let load = Arc::new(self);
        let deadline = Instant::now() + load.max_duration;
        let tasks: Vec<_> = (0..load.clients.len())
            .map(|i| {
                let load = load.clone();
                tokio::spawn(async move { load.run_client(i, deadline).await })
            })
            .collect();
        let mut report = GrpcReport::default();
        for t in tasks {
            report.merge(t.await.expect("a gRPC client panicked"));
        }
        report
    }

    async fn run_client(&self, index: usize, deadline: Instant) -> GrpcReport {
        let mut client = WorkerInfoClient::new(self.channel.clone());
        let mut report = GrpcReport::default();
        let mut calls = 0u64;
        while calls < self.max_calls
            && Instant::now() < deadline
            && !self.stop.load(Ordering::Relaxed)
        {
            let what = &self.clients[index];
            let call = calls;
            calls += 1;
            // Refused unprocessed: retried on the same channel, which reconnects by itself.
            let mut attempts = 0;
            let outcome = loop {
                attempts += 1;
                let attempt = tokio::time::timeout(self.call_timeout, async {
                    match what {
                        Calls::Unary(delays) => {
                            let delay_ms = delays[call as usize % delays.len()];
                            unary(&mut client, delay_ms).await
                        }
                        Calls::Stream { count, interval } => {
                            stream(&mut client, *count, *interval).await
                        }
                    }
                })
                .await;
                match attempt {
                    Ok(Err(Call::Refused(why))) if attempts < 5 => {
                        report.refused(why);
                    }
                    Ok(Err(Call::Refused(why))) => {
                        break Err(format!("refused {attempts} times: {why}"));
                    }
                    Ok(Err(Call::Failed(why))) => break Err(why),
                    Ok(Ok(answered)) => break Ok(answered),
                    Err(_) => break Err(format!("not complete within {:?}", self.call_timeout)),
                }
            };
            self.completed.fetch_add(1, Ordering::Relaxed);
            match (outcome, what) {
                (Ok(answered), Calls::Unary(_)) => {
                    report.unary_ok += 1;
                    report.unary_while_draining += u64::from(answered.draining);
                    *report.generations.entry(answered.generation).or_default() += 1;
                }
                (Ok(answered), Calls::Stream { .. }) => {
                    report.streams_ok += 1;
                    report.streams_across_drain += u64::from(answered.draining);
                    *report.generations.entry(answered.generation).or_default() += 1;
                }
                (Err(why), Calls::Unary(_)) => report.fail(format!("Whoami: {why}")),
                (Err(why), Calls::Stream { .. }) => report.fail(format!("Ticks: {why}")),
            }
        }
        report
    }
}

/// How one attempt at a call ended, when not answered in full.
enum Call {
    Refused(String),
    Failed(String),
}

impl From<Status> for Call {
    fn from(status: Status) -> Self {
        let why = describe(&status);
        if refused_unprocessed(&status) {
            Call::Refused(why)
        } else {
            Call::Failed(why)
        }
    }
}

/// Who answered a call in full: its generation, and whether the worker drained during it.
struct Answered {
    generation: u64,
    draining: bool,
}

async fn unary(client: &mut WorkerInfoClient<Channel>, delay_ms: u32) -> Result<Answered, Call> {
    let worker = client
        .whoami(WhoamiRequest { delay_ms })
        .await?
        .into_inner();
    Ok(Answered {
        generation: worker.generation,
        draining: worker.draining,
    })
}

/// A complete stream: `count` ticks, in order, all from one worker.
async fn stream(
    client: &mut WorkerInfoClient<Channel>,
    count: u32,
    interval: Duration,
) -> Result<Answered, Call> {
    let request = TicksRequest {
        count,
        interval_ms: interval.as_millis() as u32,
    };
    let mut ticks = client.ticks(request).await?.into_inner();
    let mut first: Option<Worker> = None;
    let mut draining = false;
    for seq in 0..count {
        // Once the answer began, the call was processed: any error now is a failure.
        let tick = match ticks.message().await {
            Ok(Some(tick)) => tick,
            Ok(None) => return Err(Call::Failed(format!("stream ended after {seq} ticks"))),
            Err(status) => {
                return Err(Call::Failed(format!(
                    "stream broken after {seq} ticks: {}",
                    describe(&status)
                )));
            }
        };
        let worker = tick.worker.unwrap_or_default();
        if tick.seq != seq || first.as_ref().is_some_and(|w| w.pid != worker.pid) {
            return Err(Call::Failed(format!(
                "tick {seq}: got seq {} from pid {}, first tick from {first:?}",
                tick.seq, worker.pid
            )));
        }
        draining |= worker.draining;
        first.get_or_insert(worker);
    }
    match ticks.message().await {
        Ok(None) => {}
        Ok(Some(tick)) => return Err(Call::Failed(format!("a tick too many: {tick:?}"))),
        Err(status) => return Err(Call::Failed(format!("trailers: {}", describe(&status)))),
    }
    Ok(Answered {
        generation: first.map_or(0, |w| w.generation),
        draining,
    })
}

/// What a gRPC load run saw.
#[derive(Debug, Clone, Default)]
pub struct GrpcReport {
    /// `Whoami` calls answered.
    pub unary_ok: u64,
    /// `Ticks` streams received whole.
    pub streams_ok: u64,
    /// Attempts refused unprocessed (GOAWAY, REFUSED_STREAM) and retried.
    pub refused_retries: u64,
    /// Why, for the first 3.
    pub refusals: Vec<String>,
    /// `Whoami` answers from a worker that was draining.
    pub unary_while_draining: u64,
    /// Whole streams with at least one tick sent while their worker was draining.
    pub streams_across_drain: u64,
    /// Calls answered (in full) per worker generation.
    pub generations: BTreeMap<u64, u64>,
    /// Every failed call, described (the first 20).
    pub failures: Vec<String>,
    /// Failed calls.
    pub failed: u64,
}

impl GrpcReport {
    fn refused(&mut self, why: String) {
        self.refused_retries += 1;
        if self.refusals.len() < 3 {
            self.refusals.push(why);
        }
    }

    fn fail(&mut self, why: String) {
        self.failed += 1;
        if self.failures.len() < 20 {
            self.failures.push(why);
        }
    }

    fn merge(&mut self, other: GrpcReport) {
        self.unary_ok += other.unary_ok;
        self.streams_ok += other.streams_ok;
        self.refused_retries += other.refused_retries;
        self.unary_while_draining += other.unary_while_draining;
        self.streams_across_drain += other.streams_across_drain;
        for (generation, n) in other.generations {
            *self.generations.entry(generation).or_default() += n;
        }
        self.failed += other.failed;
        for why in other.refusals {
            if self.refusals.len() < 3 {
                self.refusals.push(why);
            }
        }
        for why in other.failures {
            if self.failures.len() < 20 {
                self.failures.push(why);
            }
        }
    }
}

impl fmt::Display for GrpcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unary ok {}, streams ok {}, failed {}, refused and retried {}, unary answered while \
             draining {}, streams across a drain {}, answers by generation {:?}",
            self.unary_ok,
            self.streams_ok,
            self.failed,
            self.refused_retries,
            self.unary_while_draining,
            self.streams_across_drain,
            self.generations,
        )?;
        for why in &self.refusals {
            write!(f, "\n  refused and retried: {why}")?;
        }
        for why in &self.failures {
            write!(f, "\n  failed: {why}")?;
        }
        Ok(())
    }
}

/// The status, and every error under it.
fn describe(status: &Status) -> String {
    let mut out = format!("{:?}: {}", status.code(), status.message());
    let mut source = std::error::Error::source(status);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
