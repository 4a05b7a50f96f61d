//! Helpers shared by the HTTP end-to-end tests: start `hello` as a real cluster, wait on
//! conditions with ceilings, and speak raw HTTP/1.1 where the test must see the bytes.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tests::cluster::Cluster;

/// Starts `hello` (built in this package as `hello_under_test`) with `workers` workers on an
/// ephemeral port of 127.0.0.1, printing its events, with `env` on top.
pub(crate) fn start_hello(workers: usize, env: &[(&str, &str)]) -> Cluster {
    start_hello_without(workers, env, &[])
}

/// [`start_hello`] with the variables `unset` left out of its environment.
pub(crate) fn start_hello_without(workers: usize, env: &[(&str, &str)], unset: &[&str]) -> Cluster {
    let workers = workers.to_string();
    let mut all = vec![
        ("HELLO_WORKERS", workers.as_str()),
        ("HELLO_PRINT_EVENTS", "true"),
        ("RUST_LOG", "warn"),
    ];
    all.extend_from_slice(env);
    let hello = Path::new(env!("CARGO_BIN_EXE_hello_under_test"));
    Cluster::start_without(hello, &all, unset)
}

/// A multi-threaded runtime for the load clients, beside the blocking test thread.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Waits until `cond` holds, or panics after `ceiling` naming `what`.
pub(crate) fn wait_until(what: &str, ceiling: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + ceiling;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `counter` has grown by `n` from its value now.
pub(crate) fn wait_progress(counter: &AtomicU64, n: u64, ceiling: Duration) {
    let from = counter.load(Ordering::Relaxed);
    wait_until(&format!("{n} more requests"), ceiling, || {
        counter.load(Ordering::Relaxed) >= from + n
    });
}

/// One HTTP/1.1 response read off a raw socket.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn connection_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Connects to `addr` with timeouts set.
pub(crate) fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Sends `GET path` on a keep-alive connection.
pub(crate) fn send_get(stream: &mut TcpStream, path: &str) {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .expect("write the request");
}

/// Reads one response (with a Content-Length body) from `reader`.
pub(crate) fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<RawResponse> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "EOF before a status line",
        ));
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    Ok(RawResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// How a connection ended when read to its end.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Clean close (FIN): read returned 0.
    Fin,
    /// Reset (RST).
    Reset,
    /// Data arrived instead of the end.
    Data(usize),
    /// Nothing happened within the read timeout.
    Timeout,
    Other(String),
}

/// Reads once from `stream` and says how the connection ended.
pub(crate) fn read_end(stream: &mut impl Read) -> End {
    let mut buf = [0u8; 1024];
    match stream.read(&mut buf) {
        Ok(0) => End::Fin,
        Ok(n) => End::Data(n),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => End::Reset,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            End::Timeout
        }
        Err(e) => End::Other(e.to_string()),
    }
}

/// Sends `GET /pid` on a keep-alive connection to the draining worker `pid` every 20 ms (well
/// within the idle grace) until an answer says `Connection: close`: then the worker itself is
/// draining. Every answer must come from `pid`; none may find the connection gone.
pub(crate) fn until_drain_answered(
    stream: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    pid: u32,
) -> RawResponse {
    let started = Instant::now();
    for _ in 0..250 {
        send_get(stream, "/pid");
        let res = read_response(reader).expect("a request during the drain is served");
        assert_eq!(res.status, 200, "{res:?}");
        assert_eq!(
            res.body.trim(),
            pid.to_string(),
            "served by the draining worker"
        );
        if res.connection_close() {
            return res;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "no answer carried Connection: close {:?} after the drain began",
        started.elapsed()
    );
}

/// A keep-alive connection to `pid` after one `/pid` request, now idle.
pub(crate) fn idle_connection(addr: SocketAddr, pid: u32) -> (TcpStream, BufReader<TcpStream>) {
    let mut stream = connect(addr);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    send_get(&mut stream, "/pid");
    let res = read_response(&mut reader).expect("a /pid answer");
    assert_eq!(res.body.trim(), pid.to_string(), "{res:?}");
    assert!(!res.connection_close(), "{res:?}");
    (stream, reader)
}

/// The pid of the worker serving a fresh connection to `addr`.
pub(crate) fn pid_via_http(addr: SocketAddr) -> u32 {
    let mut s = connect(addr);
    send_get(&mut s, "/pid");
    let mut r = BufReader::new(s);
    let res = read_response(&mut r).expect("a /pid answer");
    assert_eq!(res.status, 200, "{res:?}");
    res.body.trim().parse().expect("a pid")
}

/// Runs `during` with `config`'s load flowing (50 requests done first), giving it a way to
/// wait for that many more requests; the load's report once it stopped.
pub(crate) fn load_during(
    config: tests::load::LoadConfig,
    during: impl FnOnce(&dyn Fn(u64)),
) -> tests::load::Report {
    let rt = runtime();
    let (stop, completed) = (config.stop(), config.completed());
    let load = rt.spawn(tests::load::run(config));
    let progress = |n| wait_progress(&completed, n, tests::cluster::CEILING);
    progress(50);
    during(&progress);
    stop.store(true, Ordering::Relaxed);
    let report = rt.block_on(load).expect("the load run");
    eprintln!("load: {report}");
    report
}

/// Runs `config` against `cluster` while the master gets SIGHUP `restarts` times, each once the
/// previous rollout is done and load flows on the new workers; returns the load report.
pub(crate) fn load_during_restarts(
    cluster: &Cluster,
    config: tests::load::LoadConfig,
    restarts: usize,
) -> tests::load::Report {
    load_during(config, |progress| {
        for i in 0..restarts {
            let from = cluster.events().len();
            cluster.signal(nix::sys::signal::Signal::SIGHUP);
            cluster.wait_event(&format!("rollout {} done", i + 1), from, |e| {
                e["event"] == "rollout-done"
            });
            // Load must flow on the new generation before the next restart.
            progress(150);
        }
    })
}

/// Asserts that no request failed, class by class.
pub(crate) fn assert_no_failure(report: &tests::load::Report) {
    assert_eq!(report.connect_errors, 0, "connect errors: {report}");
    assert_eq!(
        report.resets, 0,
        "resets/EOF before a full response: {report}"
    );
    assert_eq!(report.timeouts, 0, "timeouts: {report}");
    assert_eq!(report.bad_status, 0, "non-2xx answers: {report}");
}

/// After `restarts` rolling restarts of `workers` workers that started as `first`: that many
/// rollouts, no worker killed at a deadline, every first pid gone and replaced, and fresh
/// connections answered by the new workers.
pub(crate) fn assert_all_replaced(
    cluster: &Cluster,
    first: &std::collections::BTreeSet<u32>,
    workers: usize,
    restarts: usize,
) {
    let events = cluster.events();
    let rollouts = events
        .iter()
        .filter(|e| e["event"] == "rollout-done")
        .count();
    assert_eq!(rollouts, restarts);
    assert!(
        !events.iter().any(|e| e["event"] == "killed"),
        "a worker was killed at its deadline instead of draining"
    );
    let last: std::collections::BTreeSet<u32> =
        cluster.wait_serving(workers).into_values().collect();
    assert!(
        first.is_disjoint(&last),
        "worker pids unchanged: {first:?} -> {last:?}"
    );
    for pid in first {
        tests::cluster::wait_gone(*pid, tests::cluster::CEILING);
    }
    for _ in 0..10 {
        let pid = pid_via_http(cluster.addr());
        assert!(
            last.contains(&pid),
            "answered by {pid}, not one of {last:?}"
        );
    }
}
