//! A small HTTP load client that classifies every outcome, for the end-to-end tests and the
//! benchmarks.
//!
//! Each client is one tokio task that sends requests one after the other, in one of three
//! ways: HTTP/1.1 keep-alive (one connection reused until the server answers
//! `Connection: close`), HTTP/1.1 with a new connection per request (`Connection: close`), or
//! HTTP/2 (one connection, reopened after GOAWAY). Every request ends in exactly one class:
//! ok (2xx with a complete body), connect error, reset/EOF before a full response, timeout, or
//! non-2xx status.
//!
//! Requests the server cannot have seen are retried (twice more at most, each on a new
//! connection) rather than counted as failures, because real clients retry them:
//! - HTTP/1.1: a request hyper hands back unsent because its connection, reused from an earlier
//!   request, was found closed first (a server may close an idle keep-alive connection).
//!   Counted as `reconnects`. On a connection opened for this very attempt the same is a
//!   failure: a server that accepts a connection and closes it unanswered loses the request.
//! - HTTP/2: a request the server refused, which it guarantees it did not process: a stream
//!   above the last stream id of its GOAWAY(NO_ERROR) (RFC 9113 §6.8), a stream reset with
//!   REFUSED_STREAM (§8.7), or a request not sent because its connection had received GOAWAY
//!   and closed. Counted as `goaway_retries`, on any connection, fresh or not. Any other error
//!   (a connection closed without GOAWAY, a reset with another code) is a failure.
//!
//! HTTP/2 connections that received a GOAWAY frame are counted too (`goaway_connections`), so
//! that a test can check that the server ended them that way.
//!
//! Every run is bounded by a request count per client and a wall-clock limit, and can be
//! stopped early through [`LoadConfig::stop`].
//!
//! ```no_run
//! use std::time::Duration;
//! use tests::load::{ClientSpec, LoadConfig, Mode};
//!
//! # async fn run() {
//! let config = LoadConfig::new("127.0.0.1:3000".parse().unwrap())
//!     .client(ClientSpec::new(Mode::KeepAlive, &["/", "/slow?ms=50"]).max_requests(1000))
//!     .client(ClientSpec::new(Mode::NewConnection, &["/"]).max_requests(1000))
//!     .max_duration(Duration::from_secs(30));
//! let report = tests::load::run(config).await;
//! assert_eq!(report.failures(), 0, "{report}");
//! # }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use regiment_bench::load::refused_unprocessed;
use tokio::net::TcpStream;

use crate::goaway_watch::{GoawayWatch, Seen};

/// How a client talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// HTTP/1.1, one connection reused until the server closes it.
    KeepAlive,
    /// HTTP/1.1, a new connection per request, sent with `Connection: close`.
    NewConnection,
    /// HTTP/2 with prior knowledge, one connection reused until GOAWAY.
    Http2,
}

/// One client of a load run.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    mode: Mode,
    paths: Vec<String>,
    max_requests: u64,
    think_time: Duration,
}

impl ClientSpec {
    /// A client that requests `paths` in turn, at most 1000 requests by default.
    pub fn new(mode: Mode, paths: &[&str]) -> Self {
        assert!(!paths.is_empty(), "a client needs at least one path");
        Self {
            mode,
            paths: paths.iter().map(|p| p.to_string()).collect(),
            max_requests: 1000,
            think_time: Duration::ZERO,
        }
    }

    /// A pause between the end of one request and the start of the next, as real clients
    /// have: it leaves keep-alive connections idle at the moment a drain starts.
    pub fn think_time(mut self, d: Duration) -> Self {
        self.think_time = d;
        self
    }

    /// The most requests this client sends.
    pub fn max_requests(mut self, n: u64) -> Self {
        self.max_requests = n;
        self
    }
}

/// A load run: where, who, and for how long at most.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    addr: SocketAddr,
    clients: Vec<ClientSpec>,
    max_duration: Duration,
    request_timeout: Duration,
    stop: Arc<AtomicBool>,
    completed: Arc<AtomicU64>,
    goaway_connections: Arc<AtomicU64>,
}

impl LoadConfig {
    /// No client yet; at most 60 s; a request that takes over 20 s is a timeout.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            clients: Vec::new(),
            max_duration: Duration::from_secs(60),
            request_timeout: Duration::from_secs(20),
            stop: Arc::new(AtomicBool::new(false)),
            completed: Arc::new(AtomicU64::new(0)),
            goaway_connections: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Adds a client.
    pub fn client(mut self, c: ClientSpec) -> Self {
        self.clients.push(c);
        self
    }

    /// Adds `n` clients like `c`.
    pub fn clients(mut self, n: usize, c: ClientSpec) -> Self {
        self.clients.extend(std::iter::repeat_n(c, n));
        self
    }

    /// Clients stop starting requests after this long.
    pub fn max_duration(mut self, d: Duration) -> Self {
        self.max_duration = d;
        self
    }

    /// A request not answered in full within this long counts as a timeout.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// A flag that makes clients stop after their current request once set.
    pub fn stop(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// A counter of requests finished so far (whatever their outcome), to watch progress.
    pub fn completed(&self) -> Arc<AtomicU64> {
        self.completed.clone()
    }
}

/// What a load run saw. Failures are the sum of the five failure classes.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// 2xx answers with their whole body.
    pub ok: u64,
    /// Could not connect (or the HTTP/2 handshake failed).
    pub connect_errors: u64,
    /// The connection was reset or closed before a full response.
    pub resets: u64,
    /// No full response within the request timeout.
    pub timeouts: u64,
    /// A status outside 2xx.
    pub bad_status: u64,
    /// HTTP/1.1 requests not written because their reused connection was closed (retried).
    pub reconnects: u64,
    /// HTTP/2 requests the server refused unprocessed: above the last stream id of its GOAWAY,
    /// reset with REFUSED_STREAM, or not sent because their connection had received GOAWAY and
    /// closed (retried).
    pub goaway_retries: u64,
    /// HTTP/2 connections that received a GOAWAY frame (each counted once).
    pub goaway_connections: u64,
    /// Answers that carried `Connection: close` on a keep-alive connection.
    pub closed_by_server: u64,
    /// Latency of each successful request, in microseconds.
    pub latencies_us: Vec<u64>,
    /// The first few failures, described.
    pub samples: Vec<String>,
}

impl Report {
    /// Requests that failed, all classes together.
    pub fn failures(&self) -> u64 {
        self.connect_errors + self.resets + self.timeouts + self.bad_status
    }

    /// The latency at quantile `q` (0.0..=1.0) of successful requests.
    pub fn latency_quantile(&self, q: f64) -> Option<Duration> {
        if self.latencies_us.is_empty() {
            return None;
        }
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        let i = ((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        Some(Duration::from_micros(v[i]))
    }

    fn merge(&mut self, o: Report) {
        self.ok += o.ok;
        self.connect_errors += o.connect_errors;
        self.resets += o.resets;
        self.timeouts += o.timeouts;
        self.bad_status += o.bad_status;
        self.reconnects += o.reconnects;
        self.goaway_retries += o.goaway_retries;
        self.closed_by_server += o.closed_by_server;
        self.latencies_us.extend(o.latencies_us);
        for s in o.samples {
            if self.samples.len() < 20 {
                self.samples.push(s);
            }
        }
    }

    fn sample(&mut self, what: String) {
        if self.samples.len() < 20 {
            self.samples.push(what);
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ok {} | failures: connect {} reset/eof {} timeout {} non-2xx {} | reconnects {} \
             goaway-retries {} goaway-connections {} closed-by-server {}",
            self.ok,
            self.connect_errors,
            self.resets,
            self.timeouts,
            self.bad_status,
            self.reconnects,
            self.goaway_retries,
            self.goaway_connections,
            self.closed_by_server
        )?;
        if let (Some(p50), Some(p99)) = (self.latency_quantile(0.5), self.latency_quantile(0.99)) {
            write!(f, " | p50 {p50:?} p99 {p99:?}")?;
        }
        for s in &self.samples {
            write!(f, "\n  {s}")?;
        }
        Ok(())
    }
}

/// Runs every client of `config` at once and returns their merged report.
pub async fn run(config: LoadConfig) -> Report {
    let deadline = Instant::now() + config.max_duration;
    let config = Arc::new(config);
    let tasks: Vec<_> = (0..config.clients.len())
        .map(|i| {
            let config = config.clone();
            tokio::spawn(async move { run_client(&config, i, deadline).await })
        })
        .collect();
    let mut report = Report::default();
    for t in tasks {
        report.merge(t.await.expect("a load client panicked"));
    }
    report.goaway_connections = config.goaway_connections.load(Ordering::Relaxed);
    report
}

/// The way one request failed.
enum Failure {
    Connect(String),
    Reset(String),
    Timeout,
    Status(StatusCode),
}

enum Conn {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    /// The flag says whether the connection received a GOAWAY frame.
    H2(
        hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
        Arc<AtomicBool>,
    ),
}

async fn connect(config: &LoadConfig, mode: Mode) -> Result<Conn, Failure> {
    let stream = tokio::time::timeout(config.request_timeout, TcpStream::connect(config.addr))
        .await
        .map_err(|_| Failure::Timeout)?
        .map_err(|e| Failure::Connect(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    match mode {
        Mode::KeepAlive | Mode::NewConnection => {
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| Failure::Connect(e.to_string()))?;
            tokio::spawn(conn);
            Ok(Conn::H1(sender))
        }
        Mode::Http2 => {
            let goaway = Arc::new(AtomicBool::new(false));
            let io = GoawayWatch::new(stream, goaway_counter(&goaway, &config.goaway_connections));
            let (sender, conn) = tokio::time::timeout(
                config.request_timeout,
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)),
            )
            .await
            .map_err(|_| Failure::Timeout)?
            .map_err(|e| Failure::Connect(e.to_string()))?;
            tokio::spawn(conn);
            Ok(Conn::H2(sender, goaway))
        }
    }
}

/// One HTTP/2 connection (prior knowledge) over one TCP connection, for tests that must know
/// that every request went over the same connection: see [`http2_connection`].
#[derive(Debug)]
pub struct Http2Connection {
    /// Sends requests on this connection only.
    pub sender: hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    /// Set once a GOAWAY frame came from the server.
    pub goaway: Arc<AtomicBool>,
    /// The connection's task: it ends when the connection does.
    pub task: tokio::task::JoinHandle<Result<(), hyper::Error>>,
    /// The client's end of the TCP connection.
    pub local_addr: SocketAddr,
}

/// Opens an HTTP/2 connection to `addr` and completes the handshake (the client preface and
/// SETTINGS go out at once); no request is sent.
pub async fn http2_connection(addr: SocketAddr) -> std::io::Result<Http2Connection> {
    let stream = TcpStream::connect(addr).await?;
    let local_addr = stream.local_addr()?;
    let goaway = Arc::new(AtomicBool::new(false));
    let io = GoawayWatch::new(stream, goaway_counter(&goaway, &Arc::default()));
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .map_err(std::io::Error::other)?;
    Ok(Http2Connection {
        sender,
        goaway,
        task: tokio::spawn(conn),
        local_addr,
    })
}

async fn run_client(config: &LoadConfig, index: usize, deadline: Instant) -> Report {
    let spec = &config.clients[index];
    let mut report = Report::default();
    let mut conn: Option<Conn> = None;
    let mut sent = 0u64;
    while sent < spec.max_requests
        && Instant::now() < deadline
        && !config.stop.load(Ordering::Relaxed)
    {
        if sent > 0 && !spec.think_time.is_zero() {
            tokio::time::sleep(spec.think_time).await;
        }
        let path = &spec.paths[(sent as usize) % spec.paths.len()];
        sent += 1;
        let started = Instant::now();
        // A request the server cannot have seen is retried on a new connection, twice at most;
        // see the module docs.
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            // Opened for this attempt: the server had no reason to close it unanswered.
            let fresh = conn.is_none();
            if fresh {
                match connect(config, spec.mode).await {
                    Ok(c) => conn = Some(c),
                    Err(f) => break Err(f),
                }
            }
            match send(config, spec.mode, conn.as_mut().expect("connected"), path).await {
                Ok((status, close)) => {
                    if close || spec.mode == Mode::NewConnection {
                        conn = None;
                    }
                    if close && spec.mode == Mode::KeepAlive {
                        report.closed_by_server += 1;
                    }
                    break if status.is_success() {
                        Ok(())
                    } else {
                        Err(Failure::Status(status))
                    };
                }
                Err(Sent::NotWritten(why)) if !fresh && attempts < 3 => {
                    conn = None;
                    report.reconnects += 1;
                    tracing::debug!(%why, "request not written; retrying on a new connection");
                }
                Err(Sent::NotWritten(why)) => {
                    conn = None;
                    break Err(Failure::Reset(if fresh {
                        format!("not written on a connection opened for it: {why}")
                    } else {
                        format!("not written, {attempts} times: {why}")
                    }));
                }
                Err(Sent::Refused(why)) if attempts < 3 => {
                    conn = None;
                    report.goaway_retries += 1;
                    tracing::debug!(%why, "request refused; retrying on a new connection");
                }
                Err(Sent::Refused(why)) => {
                    conn = None;
                    break Err(Failure::Reset(format!("refused {attempts} times: {why}")));
                }
                Err(Sent::Failed(f)) => {
                    conn = None;
                    break Err(f);
                }
            }
        };
        config.completed.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(()) => {
                report.ok += 1;
                report
                    .latencies_us
                    .push(started.elapsed().as_micros() as u64);
            }
            Err(f) => {
                let what = match f {
                    Failure::Connect(e) => {
                        report.connect_errors += 1;
                        format!("connect error: {e}")
                    }
                    Failure::Reset(e) => {
                        report.resets += 1;
                        format!("reset/eof: {e}")
                    }
                    Failure::Timeout => {
                        report.timeouts += 1;
                        "timeout".to_owned()
                    }
                    Failure::Status(s) => {
                        report.bad_status += 1;
                        format!("status {s}")
                    }
                };
                report.sample(format!("{:?} {path}: {what}", spec.mode));
            }
        }
    }
    report
}

enum Sent {
    /// HTTP/1.1: the request never left the client, its connection was found closed: safe to
    /// retry if that connection was reused.
    NotWritten(String),
    /// HTTP/2: the server refused the request unprocessed (GOAWAY, REFUSED_STREAM): safe to
    /// retry.
    Refused(String),
    Failed(Failure),
}

/// Sends one GET and reads the whole answer: (status, the server asked to close).
async fn send(
    config: &LoadConfig,
    mode: Mode,
    conn: &mut Conn,
    path: &str,
) -> Result<(StatusCode, bool), Sent> {
    let exchange = async {
        let res = match conn {
            Conn::H1(sender) => {
                if sender.ready().await.is_err() {
                    return Err(Sent::NotWritten("connection closed while idle".into()));
                }
                let mut req = Request::get(path).header(header::HOST, config.addr.to_string());
                if mode == Mode::NewConnection {
                    req = req.header(header::CONNECTION, "close");
                }
                let req = req.body(Empty::new()).expect("a valid request");
                match sender.try_send_request(req).await {
                    Ok(res) => res,
                    // hyper hands the request back when it never reached the connection (it
                    // closed first): the server cannot have seen it.
                    Err(e) if e.message().is_some() => {
                        return Err(Sent::NotWritten(describe(e.error())));
                    }
                    Err(e) => return Err(Sent::Failed(Failure::Reset(describe(e.error())))),
                }
            }
            Conn::H2(sender, goaway) => {
                // Not sent because the connection is gone: safe only if it was going away.
                let gone = |why: String| {
                    if goaway.load(Ordering::Relaxed) {
                        Sent::Refused(format!("after GOAWAY: {why}"))
                    } else {
                        Sent::Failed(Failure::Reset(format!("closed without GOAWAY: {why}")))
                    }
                };
                if let Err(e) = sender.ready().await {
                    return Err(gone(describe(&e)));
                }
                let req = Request::get(format!("http://{}{path}", config.addr))
                    .body(Empty::new())
                    .expect("a valid request");
                match sender.try_send_request(req).await {
                    Ok(res) => res,
                    Err(e) if refused_unprocessed(e.error()) => {
                        return Err(Sent::Refused(describe(e.error())));
                    }
                    Err(e) if e.message().is_some() => {
                        return Err(gone(describe(e.error())));
                    }
                    Err(e) => return Err(Sent::Failed(Failure::Reset(describe(e.error())))),
                }
            }
        };
        let status = res.status();
        let close = res
            .headers()
            .get(header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        res.into_body()
            .collect()
            .await
            .map_err(|e| Sent::Failed(Failure::Reset(format!("body: {}", describe(&e)))))?;
        Ok((status, close))
    };
    match tokio::time::timeout(config.request_timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(Sent::Failed(Failure::Timeout)),
    }
}

/// What a watched HTTP/2 connection tells: its first GOAWAY sets `seen` and counts the
/// connection in `connections`.
fn goaway_counter(
    seen: &Arc<AtomicBool>,
    connections: &Arc<AtomicU64>,
) -> impl FnMut(Seen) + Unpin + use<> {
    let (seen, connections) = (seen.clone(), connections.clone());
    move |what| {
        if what == Seen::Goaway {
            seen.store(true, Ordering::Relaxed);
            connections.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
