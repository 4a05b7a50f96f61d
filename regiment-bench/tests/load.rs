//! The load generator against real sockets on 127.0.0.1: servers written here to behave in
//! one known way each, so that every class of outcome is shown to be counted as what it is.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use regiment_bench::load::{self, Measured, Plan, Protocol};

/// What a test server does with each connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answers every request with this status, keeping the connection open.
    Answer(u16),
    /// Answers one request, then closes the connection.
    AnswerOnceThenClose,
    /// Closes each connection as soon as a request arrives, answering nothing.
    CloseUnanswered,
    /// Reads requests and never answers.
    Silent,
}

/// A server on an ephemeral port, its accept thread ended when dropped.
struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(behaviour: Behaviour) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("an address");
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stopping.load(Ordering::Relaxed) {
                break;
            }
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || connection(conn, behaviour));
        }
    });
    TestServer { addr, stop }
}

/// Reads one request head (up to the empty line); false at EOF.
fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            return true;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn connection(mut conn: TcpStream, behaviour: Behaviour) {
    let mut buf = Vec::new();
    while read_request(&mut conn, &mut buf) {
        match behaviour {
            Behaviour::Answer(status) => {
                let head = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nhi");
                if conn.write_all(head.as_bytes()).is_err() {
                    return;
                }
            }
            Behaviour::AnswerOnceThenClose => {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi");
                return;
            }
            Behaviour::CloseUnanswered => return,
            Behaviour::Silent => {}
        }
    }
}

fn plan(addr: SocketAddr) -> Plan {
    Plan::new(addr)
        .connections(4)
        .warmup(Duration::ZERO)
        .duration(Duration::from_secs(20))
        .max_requests(Some(400))
}

fn run(plan: &Plan) -> Measured {
    load::run(plan).expect("the generator runs")
}

#[test]
fn answered_requests_are_ok_and_bounded_by_the_request_count() {
    let server = serve(Behaviour::Answer(200));
    let m = run(&plan(server.addr));
    assert_eq!(m.counts.ok, 400, "{m:?}");
    assert_eq!(m.failures, 0, "{m:?}");
    assert!(m.latency.p50_us > 0 && m.latency.max_us >= m.latency.p99_us);
    assert_eq!(
        m.timeline.iter().map(|s| s.ok).sum::<u64>(),
        400,
        "every answer is in the timeline"
    );
}

#[test]
fn statuses_outside_2xx_are_failures_of_their_own_class() {
    let server = serve(Behaviour::Answer(503));
    let m = run(&plan(server.addr));
    assert_eq!(m.counts.non_2xx, 400, "{m:?}");
    assert_eq!(m.counts.ok, 0);
    assert_eq!(m.failures, 400);
}

#[test]
fn a_reused_connection_closed_while_idle_is_retried_not_failed() {
    let server = serve(Behaviour::AnswerOnceThenClose);
    let m = run(&plan(server.addr));
    assert_eq!(m.counts.ok, 400, "{m:?}");
    assert_eq!(m.failures, 0, "{m:?}");
    // Each connection answers one request: every later request finds its connection closed.
    assert!(m.counts.retried > 0, "{m:?}");
}

#[test]
fn a_new_connection_closed_unanswered_is_a_reset() {
    let server = serve(Behaviour::CloseUnanswered);
    let m = run(&plan(server.addr).max_requests(Some(40)));
    assert_eq!(m.counts.reset, 40, "{m:?}");
    assert_eq!(
        m.counts.retried, 0,
        "a fresh connection is never retried: {m:?}"
    );
}

#[test]
fn no_server_is_connect_errors() {
    // A port bound and released: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("an ephemeral port");
    let m = run(&plan(addr).max_requests(Some(40)));
    assert_eq!(m.counts.connect_error, 40, "{m:?}");
}

#[test]
fn a_silent_server_is_timeouts() {
    let server = serve(Behaviour::Silent);
    let m = run(&plan(server.addr)
        .max_requests(Some(8))
        .request_timeout(Duration::from_millis(200)));
    assert_eq!(m.counts.timeout, 8, "{m:?}");
}

#[test]
fn new_connection_mode_sends_connection_close_and_counts_answers() {
    let server = serve(Behaviour::AnswerOnceThenClose);
    let m = run(&plan(server.addr).protocol(Protocol::NewConnection));
    assert_eq!(m.counts.ok, 400, "{m:?}");
    assert_eq!(
        m.counts.retried, 0,
        "a connection per request is never reused: {m:?}"
    );
}

#[test]
fn http2_requests_are_answered_one_stream_at_a_time_per_connection() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("an address");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
            let app = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
            let _ = axum::serve(listener, app).await;
        });
    });
    let m = run(&plan(addr).protocol(Protocol::H2));
    assert_eq!(m.counts.ok, 400, "{m:?}");
    assert_eq!(m.failures, 0, "{m:?}");
}
