//! The admin listener (`Builder::admin_bind`), as a scraper and a Kubernetes probe use it: this
//! test process is the master (a `Supervisor` run in-process, its admin listener on an ephemeral
//! port of 127.0.0.1), its workers are `hello` (or the fixture, whose runtime a test blocks).
//! `/metrics` is read by a Prometheus text parser; `/readyz` is polled throughout a rolling
//! restart and never fails, and does not count a worker whose heartbeats are overdue; garbage on
//! the socket does not break it; no worker inherits it; it closes with the master; clients that
//! pipeline requests and never read the answers do not silence it. Workers end with the master
//! (their IPC channel closes), so a failed test leaves no process behind.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prometheus_parse::{Sample, Scrape, Value};
use regiment_core::events::{RolloutOutcome, WorkerState};
use regiment_core::{Builder, EnvOverrides, Handle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HELLO: &str = env!("CARGO_BIN_EXE_hello_under_test");
const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");
/// Generous: a loaded 2-core machine.
const CEILING: Duration = Duration::from_secs(60);
/// Each worker asks for its replacement after this many requests.
const MAX_REQUESTS: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_serves_metrics_status_and_probes_through_a_rollout() {
    let max_requests = MAX_REQUESTS.to_string();
    let supervisor = Builder::new()
        .program(HELLO)
        .args([
            "--max-requests",
            max_requests.as_str(),
            "--max-requests-jitter",
            "0",
        ])
        .workers(2)
        .bind("127.0.0.1:0")
        .admin_bind("127.0.0.1:0")
        .heartbeat_interval(Duration::from_millis(100))
        .rollout_settle(Duration::from_millis(300))
        .env_overrides(EnvOverrides::Ignore)
        .build()
        .expect("builds");
    let handle = supervisor.handle();
    let status = handle.status();
    let admin: SocketAddr = status
        .admin
        .clone()
        .expect("an admin address")
        .parse()
        .unwrap();
    let app: SocketAddr = status.listeners[0].parse().unwrap();
    assert_ne!(admin.port(), 0, "the port actually bound");
    let run = tokio::spawn(supervisor.run());
    wait_until("two workers ready", || ready(&handle) == 2).await;

    let health = get(admin, "/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let readiness = get(admin, "/readyz").await;
    assert_eq!(readiness.status, 200, "{}", readiness.body);

    // Six requests served; then every slot's worker has reported its memory and requests.
    for _ in 0..6 {
        hello(app).await;
    }
    let scrape = scrape_until(admin, "memory and 6 requests reported", |s| {
        let slots = per_slot(s, "regiment_worker_resident_memory_bytes");
        slots.len() == 2
            && slots.iter().all(|(_, rss)| *rss > 0.0)
            && sum(s, "regiment_worker_requests_total") >= 6.0
    })
    .await;
    assert_eq!(
        gauge(&scrape, "regiment_workers", &[("state", "ready")]),
        2.0
    );
    for state in ["starting", "draining"] {
        assert!(has(&scrape, "regiment_workers", &[("state", state)]));
    }
    assert_eq!(gauge(&scrape, "regiment_workers_wanted", &[]), 2.0);
    assert_eq!(gauge(&scrape, "regiment_generation", &[]), 1.0);
    assert_eq!(gauge(&scrape, "regiment_good_generation", &[]), 1.0);
    for outcome in ["done", "aborted", "superseded"] {
        let labels = [("outcome", outcome)];
        assert_eq!(counter(&scrape, "regiment_rollouts_total", &labels), 0.0);
    }
    assert_eq!(counter(&scrape, "regiment_crashes_total", &[]), 0.0);
    assert_eq!(counter(&scrape, "regiment_start_failures_total", &[]), 0.0);
    let kills = [("reason", "drain_deadline")];
    assert_eq!(counter(&scrape, "regiment_kills_total", &kills), 0.0);
    for slot in ["0", "1"] {
        let labels = [("slot", slot)];
        assert!(gauge(&scrape, "regiment_worker_age_seconds", &labels) > 0.0);
        assert!(gauge(&scrape, "regiment_worker_in_flight_requests", &labels) >= 0.0);
        assert!(counter(&scrape, "regiment_worker_responses_5xx_total", &labels) >= 0.0);
    }

    // A rolling restart, with a readiness probe polling throughout: every answer is 200.
    let probing = Arc::new(AtomicBool::new(true));
    let probe = tokio::spawn(poll_readyz(admin, handle.clone(), probing.clone()));
    let done = tokio::time::timeout(CEILING, handle.rolling_restart_and_wait())
        .await
        .expect("the rollout ends")
        .expect("a rollout was started");
    assert_eq!((done.generation, done.outcome), (2, RolloutOutcome::Done));
    probing.store(false, Ordering::Relaxed);
    let (answers, during_rollout) = probe.await.expect("the probe ran");
    let refused: Vec<&(u16, String)> = answers.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        refused.is_empty(),
        "readyz failed during the rollout: {refused:?}"
    );
    assert!(during_rollout > 0, "no probe while the rollout ran");

    let scrape = scrape_until(admin, "the rollout counted", |s| {
        value(s, "regiment_rollouts_total", &[("outcome", "done")]) == Some(1.0)
    })
    .await;
    assert_eq!(gauge(&scrape, "regiment_generation", &[]), 2.0);
    assert_eq!(gauge(&scrape, "regiment_good_generation", &[]), 2.0);
    let rollout = [("reason", "rollout")];
    assert_eq!(
        counter(&scrape, "regiment_replacements_total", &rollout),
        2.0
    );

    // /status is the handle's status, as JSON.
    let answer = get(admin, "/status").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
    let status = handle.status();
    assert_eq!(json["master_pid"], status.master_pid);
    assert_eq!(json["generation"], 2);
    assert_eq!(json["good_generation"], status.good_generation);
    assert_eq!(json["workers_wanted"], status.workers_wanted);
    assert_eq!(json["listeners"], serde_json::json!(status.listeners));
    assert_eq!(json["admin"], admin.to_string());
    assert_eq!(json["last_rollout"], serde_json::to_value(&done).unwrap());
    let ready_pids = |pids: Vec<(u64, &str)>| -> BTreeSet<u64> {
        pids.into_iter()
            .filter(|(_, state)| *state == "ready")
            .map(|(pid, _)| pid)
            .collect()
    };
    let from_json = json["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| (w["pid"].as_u64().unwrap(), w["state"].as_str().unwrap()))
        .collect();
    let from_handle = status
        .workers
        .iter()
        .map(|w| {
            (
                u64::from(w.pid),
                if w.state == WorkerState::Ready {
                    "ready"
                } else {
                    ""
                },
            )
        })
        .collect();
    assert_eq!(ready_pids(from_json), ready_pids(from_handle));

    // Each worker asks for its replacement after MAX_REQUESTS requests: twice that many, over
    // two workers, and at least one is replaced for it, counted under its criterion.
    for _ in 0..2 * MAX_REQUESTS {
        hello(app).await;
    }
    scrape_until(admin, "a replacement for the request count", |s| {
        value(
            s,
            "regiment_replacements_total",
            &[("reason", "request_count")],
        )
        .is_some_and(|n| n >= 1.0)
    })
    .await;

    // Methods and paths it does not serve.
    assert_eq!(get(admin, "/nope").await.status, 404);
    let post = request(admin, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n").await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let head = request(admin, "HEAD /metrics HTTP/1.1\r\n").await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));

    // Garbage, and a client that never finishes its request: the listener serves on.
    let mut stuck = TcpStream::connect(admin).await.expect("connect");
    stuck
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: a")
        .await
        .unwrap();
    let long = [&[b'A'; 64 * 1024][..], b"\r\n\r\n"].concat();
    for garbage in [
        &b"\x00\xff\x16\x03\x01 not http at all\r\n\r\n"[..],
        &long,
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(admin).await.expect("connect");
        // The server may close before reading it all: a write error is an answer too.
        let _ = s.write_all(garbage).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(CEILING, s.read_to_end(&mut answer)).await;
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    assert_eq!(get(admin, "/healthz").await.status, 200);
    drop(stuck);

    // No worker inherits the admin socket; this process holds it.
    let inode = listening_inode(admin).expect("the admin socket in /proc/net/tcp");
    let target = format!("socket:[{inode}]");
    assert!(
        fds(std::process::id()).contains(&target),
        "{target} not found here"
    );
    for w in handle.status().workers {
        let fds = fds(w.pid);
        assert!(
            !fds.contains(&target),
            "worker {} holds {target}: {fds:?}",
            w.pid
        );
    }

    // Served while the master runs, closed with it.
    handle.stop();
    tokio::time::timeout(CEILING, run)
        .await
        .expect("stops")
        .expect("joins")
        .expect("runs cleanly");
    assert!(TcpStream::connect(admin).await.is_err(), "still listening");
}

/// More clients than the listener serves at once, each with a 4 KiB receive buffer, pipeline
/// thousands of `GET /metrics` and never read an answer: while they stay connected, the probes
/// are still answered (a liveness probe that is not would restart the pod).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_do_not_silence_the_probes() {
    let supervisor = Builder::new()
        .program(HELLO)
        .workers(1)
        .bind("127.0.0.1:0")
        .admin_bind("127.0.0.1:0")
        .env_overrides(EnvOverrides::Ignore)
        .build()
        .expect("builds");
    let handle = supervisor.handle();
    let admin: SocketAddr = handle
        .status()
        .admin
        .expect("an admin address")
        .parse()
        .unwrap();
    let run = tokio::spawn(supervisor.run());
    assert_eq!(get(admin, "/healthz").await.status, 200);

    const CLIENTS: usize = 80; // more than the 64 served at once
    const PIPELINED: usize = 3000;
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("a socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        socket.connect(&admin.into()).expect("connect");
        socket.set_nonblocking(true).unwrap();
        let stream = TcpStream::from_std(socket.into()).unwrap();
        clients.spawn(async move {
            let (_unread, mut w) = stream.into_split();
            let requests = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n".repeat(PIPELINED);
            // Blocks once the master stops reading; ends when it closes the connection.
            let _ = tokio::time::timeout(CEILING, w.write_all(requests.as_bytes())).await;
            // Connected, never reading, until the test ends.
            std::future::pending::<()>().await;
        });
    }

    for path in ["/healthz", "/readyz", "/metrics"] {
        let answer = get(admin, path).await;
        assert!(
            answer.status == 200 || path == "/readyz",
            "{path}: {}",
            answer.status
        );
    }
    assert_eq!(clients.len(), CLIENTS, "the clients are still there");
    clients.shutdown().await;

    handle.stop();
    tokio::time::timeout(CEILING, run)
        .await
        .expect("stops")
        .expect("joins")
        .expect("runs cleanly");
}

/// GETs `/readyz` until `probing` is cleared: every answer, and how many were taken while the
/// rollout was under way.
async fn poll_readyz(
    admin: SocketAddr,
    handle: Handle,
    probing: Arc<AtomicBool>,
) -> (Vec<(u16, String)>, usize) {
    let (mut answers, mut during_rollout) = (Vec::new(), 0);
    let deadline = Instant::now() + CEILING;
    while probing.load(Ordering::Relaxed) && Instant::now() < deadline && answers.len() < 100_000 {
        let rolling = handle.status().rollout.is_some();
        let answer = get(admin, "/readyz").await;
        if rolling && handle.status().rollout.is_some() {
            during_rollout += 1;
        }
        answers.push((answer.status, answer.body));
    }
    (answers, during_rollout)
}

fn ready(handle: &Handle) -> usize {
    handle
        .status()
        .workers
        .iter()
        .filter(|w| w.state == WorkerState::Ready)
        .count()
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + CEILING;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One request to `hello`, answered 200.
async fn hello(app: SocketAddr) {
    let answer = get(app, "/").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// An HTTP/1.1 answer read to the end of the connection.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, &format!("GET {path} HTTP/1.1\r\n")).await
}

/// Sends the request line and headers `head` with `Connection: close`, reads the answer.
async fn request(addr: SocketAddr, head: &str) -> Answer {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let request = format!("{head}Host: test\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read");
        raw
    };
    let raw = tokio::time::timeout(CEILING, exchange)
        .await
        .expect("answered");
    let text = String::from_utf8(raw).expect("UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {head}"));
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Scrapes `/metrics` until `cond` holds over what the parser read.
async fn scrape_until(admin: SocketAddr, what: &str, cond: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + CEILING;
    loop {
        let scrape = scrape(admin).await;
        if cond(&scrape) {
            return scrape;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `/metrics`, parsed as Prometheus parses the text format: every sample line is read as one,
/// and every family has its help and type.
async fn scrape(admin: SocketAddr) -> Scrape {
    let answer = get(admin, "/metrics").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let lines = answer.body.lines().map(|l| Ok(l.to_owned()));
    let scrape = Scrape::parse(lines).expect("the Prometheus text format");
    let sample_lines = answer
        .body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(scrape.samples.len(), sample_lines, "{}", answer.body);
    for s in &scrape.samples {
        assert!(s.metric.starts_with("regiment_"), "{}", s.metric);
        assert!(
            scrape.docs.contains_key(&s.metric),
            "no help for {}",
            s.metric
        );
    }
    scrape
}

fn find<'a>(scrape: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    scrape.samples.iter().find(|s| {
        s.metric == name
            && s.labels.len() == labels.len()
            && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v))
    })
}

fn has(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> bool {
    find(scrape, name, labels).is_some()
}

fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    find(scrape, name, labels).map(|s| match s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        _ => f64::NAN,
    })
}

/// The value of a sample that must be a gauge.
fn gauge(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    match find(scrape, name, labels).map(|s| &s.value) {
        Some(Value::Gauge(v)) => *v,
        other => panic!("{name}{labels:?}: {other:?}, not a gauge"),
    }
}

/// The value of a sample that must be a counter.
fn counter(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    match find(scrape, name, labels).map(|s| &s.value) {
        Some(Value::Counter(v)) => *v,
        other => panic!("{name}{labels:?}: {other:?}, not a counter"),
    }
}

/// A per-slot family's values, by slot.
fn per_slot(scrape: &Scrape, name: &str) -> Vec<(String, f64)> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| {
            let slot = s.labels.get("slot").expect("a slot label").to_owned();
            assert_eq!(s.labels.len(), 1, "{name}: {:?}", s.labels);
            match s.value {
                Value::Gauge(v) | Value::Counter(v) => (slot, v),
                _ => panic!("{name}: {:?}", s.value),
            }
        })
        .collect()
}

fn sum(scrape: &Scrape, name: &str) -> f64 {
    per_slot(scrape, name).iter().map(|(_, v)| v).sum()
}

/// The inode of the TCP socket listening on `addr` (127.0.0.1), from /proc/net/tcp.
fn listening_inode(addr: SocketAddr) -> Option<String> {
    let local = format!("0100007F:{:04X}", addr.port());
    std::fs::read_to_string("/proc/net/tcp")
        .expect("/proc/net/tcp")
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 9 && f[1] == local && f[3] == "0A")
        .map(|f| f[9].to_owned())
}

/// What every open descriptor of `pid` points to.
fn fds(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .map(|t| t.display().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A worker whose runtime is blocked (a CPU-bound handler on the fixture's single-threaded
/// runtime) sends no heartbeat and serves nothing. Without a heartbeat timeout (the default)
/// nothing replaces it and it stays ready in the books, but `/readyz` stops counting it once it
/// has been silent for three heartbeat intervals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_does_not_count_a_ready_worker_whose_heartbeats_are_overdue() {
    let supervisor = Builder::new()
        .program(FIXTURE)
        .workers(1)
        .bind("127.0.0.1:0")
        .admin_bind("127.0.0.1:0")
        .heartbeat_interval(Duration::from_millis(100))
        // The blocked worker cannot drain: killed this soon when the test stops the master.
        .drain_timeout(Duration::from_secs(1))
        .env_overrides(EnvOverrides::Ignore)
        .build()
        .expect("builds");
    let handle = supervisor.handle();
    let status = handle.status();
    let admin: SocketAddr = status.admin.clone().expect("admin").parse().unwrap();
    let app: SocketAddr = status.listeners[0].parse().unwrap();
    let run = tokio::spawn(supervisor.run());
    wait_until("a ready worker sending heartbeats", || {
        handle
            .status()
            .workers
            .iter()
            .any(|w| w.state == WorkerState::Ready && w.silent_ms.is_some())
    })
    .await;
    let readiness = get(admin, "/readyz").await;
    assert_eq!(
        (readiness.status, readiness.body.as_str()),
        (200, "1 of 1 workers ready\n")
    );

    let mut blocked = TcpStream::connect(app).await.expect("connects");
    blocked.write_all(b"block\n").await.unwrap();
    let mut answer = String::new();
    blocked.read_to_string(&mut answer).await.unwrap();
    assert_eq!(answer, "blocking\n");
    let deadline = Instant::now() + CEILING;
    let readiness = loop {
        let readiness = get(admin, "/readyz").await;
        if readiness.status != 200 {
            break readiness;
        }
        assert!(
            Instant::now() < deadline,
            "still ready with its runtime blocked: {}",
            readiness.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(readiness.status, 503, "{}", readiness.body);
    assert_eq!(
        readiness.body,
        "0 of 1 workers ready (1 more silent for over 300 ms: heartbeat overdue)\n"
    );
    assert_eq!(
        ready(&handle),
        1,
        "no heartbeat timeout: nothing replaces it"
    );

    handle.stop();
    tokio::time::timeout(CEILING, run)
        .await
        .expect("stops")
        .expect("joins")
        .expect("runs cleanly");
}
