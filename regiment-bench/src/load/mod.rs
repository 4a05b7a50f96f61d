//! The load generator behind `regiment-load`: C connections for a bounded time, each sending
//! one request after the other, every outcome classified.
//!
//! Built like wrk rather than like a test client, because a benchmark is only as good as its
//! generator is cheap: each generator thread runs its share of the connections on its own
//! single-threaded runtime (no work stealing, no cross-thread wake-ups), HTTP/1.1 is written
//! and parsed on the bare socket with `httparse`, and latencies go to an HDR histogram per
//! thread, merged at the end. HTTP/2 goes through hyper's client.
//!
//! Every request ends in one class ([`Counts`]): ok, non-2xx, connect error, reset or EOF
//! before the whole answer, timeout. A request whose reused keep-alive connection turns out to
//! be closed before any byte of the answer is sent again once on a new connection and counted
//! as `retried`, as every HTTP client does for an idempotent request; the server closes idle
//! connections when it drains, and that is not a lost request. A connection the server closed
//! in the middle of an answer is a `reset`, a failure.
//!
//! ```no_run
//! use std::time::Duration;
//! use regiment_bench::load::{self, Plan, Protocol};
//!
//! let plan = Plan::new("127.0.0.1:3000".parse().unwrap())
//!     .connections(32)
//!     .protocol(Protocol::KeepAlive)
//!     .duration(Duration::from_secs(10));
//! let measured = load::run(&plan).unwrap();
//! println!("{:.0} requests/s, p99 {} µs", measured.throughput, measured.latency.p99_us);
//! ```

mod http1;
mod http2;
mod stats;

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use http2::refused_unprocessed;
pub use stats::{Counts, Latency, Measured, Second};
use stats::{Outcome, Recorder};

/// How the connections speak to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// HTTP/1.1, each connection reused until the server closes it.
    KeepAlive,
    /// HTTP/1.1, a new connection per request (`Connection: close`).
    NewConnection,
    /// HTTP/2 with prior knowledge, one stream at a time per connection.
    H2,
}

/// What to run: where, how many connections, how long, which paths.
#[derive(Debug, Clone)]
pub struct Plan {
    addr: SocketAddr,
    connections: usize,
    threads: usize,
    protocol: Protocol,
    paths: Vec<String>,
    warmup: Duration,
    duration: Duration,
    max_requests: Option<u64>,
    request_timeout: Duration,
}

impl Plan {
    /// 32 keep-alive connections on one thread, `GET /` for 10 s after 1 s of warm-up, a
    /// request timeout of 10 s.
    pub fn new(addr: SocketAddr) -> Self {
        Plan {
            addr,
            connections: 32,
            threads: 1,
            protocol: Protocol::KeepAlive,
            paths: vec!["/".to_string()],
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(10),
            max_requests: None,
            request_timeout: Duration::from_secs(10),
        }
    }

    /// Connections open at once (at least 1).
    pub fn connections(mut self, n: usize) -> Self {
        self.connections = n.max(1);
        self
    }

    /// Generator threads, each with its share of the connections (at least 1).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// How the connections speak.
    pub fn protocol(mut self, p: Protocol) -> Self {
        self.protocol = p;
        self
    }

    /// Paths requested in turn by each connection (the mix). Empty keeps `/`.
    pub fn paths(mut self, paths: Vec<String>) -> Self {
        if !paths.is_empty() {
            self.paths = paths;
        }
        self
    }

    /// Time run before measuring, its requests not counted.
    pub fn warmup(mut self, d: Duration) -> Self {
        self.warmup = d;
        self
    }

    /// Measured time.
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration = d;
        self
    }

    /// Stop after about this many measured requests in all, if before the end of the time.
    pub fn max_requests(mut self, n: Option<u64>) -> Self {
        self.max_requests = n;
        self
    }

    /// Longest wait for one whole answer, connecting included.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }
}

/// The clock of a run, shared by the connections of one thread.
struct Phase {
    /// When the warm-up ends and measuring starts.
    measure_from: Instant,
    /// When the run ends.
    until: Instant,
    /// Requests each connection may send once measuring (`u64::MAX`: no bound).
    budget: u64,
}

/// One generator thread's view of the run.
struct ThreadRun {
    plan: Arc<Plan>,
    phase: Phase,
    recorder: RefCell<Recorder>,
    /// Set once the recorder was cleared at the end of the warm-up.
    warm: std::cell::Cell<WarmState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WarmState {
    WarmingUp,
    Measuring,
}

impl ThreadRun {
    /// Records `outcome` of a request started at `started`, unless it ended in the warm-up.
    fn record(&self, started: Instant, outcome: Outcome) {
        // A request that ends after the run is over ends outside the measured time.
        if self.measuring() && !self.over() {
            self.recorder.borrow_mut().record(started, outcome);
        }
    }

    fn retried(&self) {
        if self.measuring() {
            self.recorder.borrow_mut().retried();
        }
    }

    fn measuring(&self) -> bool {
        match self.warm.get() {
            WarmState::Measuring => true,
            WarmState::WarmingUp if Instant::now() >= self.phase.measure_from => {
                self.recorder.borrow_mut().restart(self.phase.measure_from);
                self.warm.set(WarmState::Measuring);
                true
            }
            WarmState::WarmingUp => false,
        }
    }

    fn over(&self) -> bool {
        Instant::now() >= self.phase.until
    }
}

/// Runs `plan` and returns what the measured part saw. Errors only if a thread or runtime
/// cannot be started; the server's failures are in the counts.
pub fn run(plan: &Plan) -> io::Result<Measured> {
    let plan = Arc::new(plan.clone());
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let until = measure_from + plan.duration;
    let budget = plan
        .max_requests
        .map_or(u64::MAX, |n| n.div_ceil(plan.connections as u64).max(1));
    let threads = plan.threads.min(plan.connections);
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        // Connections dealt out as evenly as they go: the first threads take one more.
        let mine = plan.connections / threads + usize::from(t < plan.connections % threads);
        let plan = plan.clone();
        let handle = std::thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || -> io::Result<Recorder> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let thread = Rc::new(ThreadRun {
                    plan,
                    phase: Phase {
                        measure_from,
                        until,
                        budget,
                    },
                    recorder: RefCell::new(Recorder::new(measure_from)),
                    warm: std::cell::Cell::new(WarmState::WarmingUp),
                });
                let local = tokio::task::LocalSet::new();
                for c in 0..mine {
                    let thread = thread.clone();
                    local.spawn_local(async move {
                        match thread.plan.protocol {
                            Protocol::KeepAlive | Protocol::NewConnection => {
                                http1::connection(&thread, c).await
                            }
                            Protocol::H2 => http2::connection(&thread, c).await,
                        }
                    });
                }
                rt.block_on(local);
                let recorder = thread.recorder.replace(Recorder::new(measure_from));
                Ok(recorder)
            })?;
        handles.push(handle);
    }
    let mut total = Recorder::new(measure_from);
    for h in handles {
        let recorder = h
            .join()
            .map_err(|_| io::Error::other("a generator thread panicked"))??;
        total.merge(&recorder);
    }
    let elapsed = Instant::now()
        .min(until)
        .saturating_duration_since(measure_from);
    Ok(total.summary(elapsed))
}

/// How one attempt at a request ended.
enum Attempt {
    /// A whole answer with this status.
    Answered(u16),
    /// Not processed, safe to send again on a new connection: a reused HTTP/1.1 connection
    /// closed before any byte of the answer, or an HTTP/2 request the server refused (GOAWAY,
    /// REFUSED_STREAM) or that never left.
    Retry,
    Failed(Outcome),
}

/// Attempts after the first for one request.
const RETRIES: u32 = 2;

/// One connection's loop, whatever its protocol: requests one after the other until the run
/// is over or the connection's budget is spent. `exchange` sends the request of a path (by
/// index) on the connection, opening it if there is none, and closes it (sets `None`) when
/// the answer says so; a failed or retried attempt drops the connection here.
async fn drive<C>(
    thread: &ThreadRun,
    index: usize,
    mut exchange: impl AsyncFnMut(&mut Option<C>, usize) -> Attempt,
) {
    let mut conn: Option<C> = None;
    let mut sent = 0u64;
    let mut n = 0u64;
    while !thread.over() && sent < thread.phase.budget {
        let path = path_index(thread, index, n);
        n += 1;
        if thread.measuring() {
            sent += 1;
        }
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + thread.plan.request_timeout);
        let mut retries = 0;
        let outcome = loop {
            let attempt = tokio::time::timeout_at(deadline, exchange(&mut conn, path))
                .await
                .unwrap_or(Attempt::Failed(Outcome::Timeout));
            match attempt {
                Attempt::Answered(status) if (200..300).contains(&status) => break Outcome::Ok,
                Attempt::Answered(_) => break Outcome::NotSuccess,
                Attempt::Retry if retries < RETRIES => {
                    retries += 1;
                    conn = None;
                    thread.retried();
                }
                Attempt::Retry => {
                    conn = None;
                    break Outcome::Reset;
                }
                Attempt::Failed(outcome) => {
                    conn = None;
                    break outcome;
                }
            }
        };
        thread.record(started, outcome);
    }
}

/// The path of a connection's `n`th request: each connection walks the mix from its own
/// offset, so that the mix holds at every moment and not only on average.
fn path_index(thread: &ThreadRun, connection: usize, n: u64) -> usize {
    (connection + n as usize) % thread.plan.paths.len()
}
