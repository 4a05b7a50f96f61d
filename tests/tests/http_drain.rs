//! How a draining worker ends its connections, seen on the wire.
//!
//! Each test runs one worker, makes the master replace it (SIGHUP), and watches raw HTTP/1.1
//! connections to it:
//! - a request in flight when the drain starts completes with 200 and `Connection: close`, and
//!   the worker exits right after (within the linger and a margin), long before its deadline;
//! - a header begun during the drain, on a keep-alive connection, and trickled a byte at a time,
//!   cannot hold the draining worker past the header read timeout;
//! - an idle keep-alive connection is closed with FIN (not RST) after the idle grace, counted
//!   from the drain, and a request sent on a keep-alive connection during the drain is served
//!   with `Connection: close`;
//! - a draining worker stops accepting at once: while it still serves a slow request, every new
//!   connection is answered by its replacement;
//! - two requests pipelined in one write during the drain: the first is answered with
//!   `Connection: close`, then the connection ends with FIN, not RST;
//! - a drain that cannot finish (a request outlasting the drain timeout): the worker gives up a
//!   margin before the master's deadline, exits with status 75 (not killed), its log line names
//!   the connection still open, and the master books the exit as a drain given up with one
//!   request in flight.
//!
//! The master reports `draining` as it sends the drain message; the worker gets it a moment
//! later. Where a test needs the worker itself to be draining, it sends requests on a
//! keep-alive connection until an answer says `Connection: close`.
//!
//! The tests of this file run one at a time: their bounds are about one worker's timing.

mod http_common;

use std::io::{BufReader, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http_common::{
    End, connect, idle_connection, read_end, read_response, send_get, start_hello,
    until_drain_answered,
};
use nix::sys::signal::Signal;
use tests::cluster::{CEILING, Cluster, alive, pid_of, wait_gone};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Drain deadline of these tests: far above every bound they assert, so that an exit by
/// deadline can never pass for an exit on the last connection.
const DRAIN_DEADLINE: &str = "60s";

/// How soon a worker exits once its last connection is answered and closed by the client: at
/// once in the engine (no timer runs then; a connection the client left open would linger 2 s
/// at most), plus a wide margin for a busy machine to reap it and report it.
const EXIT_AFTER_LAST: Duration = Duration::from_secs(5);

/// How much later than the worker a test may see the `draining` event (both leave the master
/// together, by different pipes): the tolerance of lower bounds counted from that event.
const EVENT_LAG: Duration = Duration::from_secs(1);

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The only worker's pid.
fn only_worker(cluster: &Cluster) -> u32 {
    *cluster.wait_serving(1).get(&0).expect("slot 0")
}

/// `hello` with one worker, the far drain deadline and `env`, once that worker serves: the
/// cluster, its address and the worker's pid.
fn one_worker(env: &[(&str, &str)]) -> (Cluster, std::net::SocketAddr, u32) {
    let mut all = vec![("REGIMENT_DRAIN_TIMEOUT", DRAIN_DEADLINE)];
    all.extend_from_slice(env);
    let cluster = start_hello(1, &all);
    let old = only_worker(&cluster);
    {
        let addr = cluster.addr();
        (cluster, addr, old)
    }
}

/// Sends SIGHUP and waits until `pid` is told to drain; returns when the test saw it.
fn replace(cluster: &Cluster, pid: u32) -> Instant {
    let from = cluster.events().len();
    cluster.signal(Signal::SIGHUP);
    cluster.wait_event("the old worker draining", from, |e| {
        e["event"] == "draining" && pid_of(e) == pid
    });
    Instant::now()
}

/// Waits for `pid` to exit and checks that it exited by itself, not killed at its deadline.
fn wait_exited(cluster: &Cluster, pid: u32) -> Instant {
    let (_, e) = cluster.wait_event("the old worker exiting", 0, |e| {
        (e["event"] == "exited" || e["event"] == "crashed") && pid_of(e) == pid
    });
    let seen = Instant::now();
    assert_eq!(e["event"], "exited", "{e}");
    assert_eq!(e["status"], "exit 0", "{e}");
    assert!(
        !cluster
            .events()
            .iter()
            .any(|e| e["event"] == "killed" && pid_of(e) == pid),
        "worker {pid} was killed at its deadline"
    );
    wait_gone(pid, CEILING);
    seen
}

/// Waits for `pid` to exit by itself ([`wait_exited`]) and checks that it did so within
/// [`EXIT_AFTER_LAST`] of `last`, the moment the test saw `what` end.
fn exits_soon_after(cluster: &Cluster, pid: u32, last: Instant, what: &str) {
    let after = wait_exited(cluster, pid).duration_since(last);
    assert!(
        after < EXIT_AFTER_LAST,
        "worker {pid} exited {after:?} after {what} (drain deadline {DRAIN_DEADLINE})"
    );
}

#[test]
fn a_request_in_flight_completes_and_the_worker_exits_right_after() {
    let _serial = serial();
    let (cluster, addr, old) = one_worker(&[]);

    let (mut stream, mut reader) = idle_connection(addr, old);

    // Long enough to outlast the replacement's start on a busy machine.
    send_get(&mut stream, "/slow?ms=8000");
    let drain_seen = replace(&cluster, old);
    let res = read_response(&mut reader).expect("the slow request answered");
    let answered = Instant::now();
    assert!(
        drain_seen < answered,
        "inconclusive: the slow request was answered before the drain began"
    );
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.body.trim(), format!("slept 8000 ms in pid {old}"));
    assert!(
        res.connection_close(),
        "an answer during the drain must carry Connection: close: {res:?}"
    );
    assert_eq!(
        read_end(&mut reader),
        End::Fin,
        "the worker closes after it"
    );
    drop((reader, stream));

    exits_soon_after(&cluster, old, answered, "its last request");
}

/// Header read timeout of the half-header test: longer than the replacement takes to start on
/// a busy machine, since the timer runs from the moment the connection went idle, before
/// SIGHUP.
const HEADER_TIMEOUT: Duration = Duration::from_secs(12);

#[test]
fn half_a_header_begun_during_the_drain_is_cut_by_the_header_timeout() {
    let _serial = serial();
    let (cluster, addr, old) = one_worker(&[("REGIMENT_HEADER_READ_TIMEOUT", "12s")]);

    // A keep-alive connection after one request: hyper restarts its header timer as the
    // connection goes idle, a moment before the test reads the answer.
    let (mut stream, mut reader) = idle_connection(addr, old);
    let idle_seen = Instant::now();
    let drain_seen = replace(&cluster, old);
    assert!(
        drain_seen.duration_since(idle_seen) + Duration::from_secs(3) < HEADER_TIMEOUT,
        "inconclusive: the drain came {:?} after the connection went idle",
        drain_seen.duration_since(idle_seen)
    );

    // Half a header, begun during the drain, then one more byte every 200 ms: the connection
    // is never idle, so only the header read timeout can end it.
    stream
        .write_all(b"GET /pid HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: ")
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_trickle = stop.clone();
    let trickler = std::thread::spawn(move || {
        for _ in 0..300 {
            if stop_trickle.load(std::sync::atomic::Ordering::Relaxed)
                || stream.write_all(b"a").is_err()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(45)))
        .unwrap();
    let end = read_end(&mut reader);
    let closed = Instant::now();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    trickler.join().unwrap();
    drop(reader);
    assert_eq!(
        end,
        End::Fin,
        "the half-header connection must be closed cleanly"
    );
    let open_for = closed.duration_since(idle_seen);
    assert!(
        open_for + EVENT_LAG >= HEADER_TIMEOUT,
        "closed {open_for:?} after going idle, before the header read timeout ({HEADER_TIMEOUT:?}): \
         the drain cut a request begun"
    );
    assert!(
        open_for < HEADER_TIMEOUT + Duration::from_secs(5),
        "the half-header connection stayed open {open_for:?} (header read timeout {HEADER_TIMEOUT:?})"
    );
    exits_soon_after(&cluster, old, closed, "its last connection closed");
}

#[test]
fn idle_keep_alive_is_closed_with_fin_and_a_request_during_the_drain_is_served() {
    let _serial = serial();
    let (cluster, addr, old) = one_worker(&[
        ("REGIMENT_IDLE_GRACE", "3s"),
        ("REGIMENT_HEADER_READ_TIMEOUT", "40s"),
    ]);

    // Two keep-alive connections to the worker, each after one request, now idle.
    let (idle, mut idle_reader) = idle_connection(addr, old);
    let (mut busy, mut busy_reader) = idle_connection(addr, old);

    let drain_seen = replace(&cluster, old);

    // A client sending its next request now, during the drain, is served, and told to go; none
    // of its requests may find its connection gone.
    until_drain_answered(&mut busy, &mut busy_reader, old);
    assert_eq!(read_end(&mut busy_reader), End::Fin);
    drop((busy_reader, busy));

    // The idle one is closed cleanly once the grace has passed.
    let end = read_end(&mut idle_reader);
    let closed = Instant::now();
    assert_eq!(
        end,
        End::Fin,
        "an idle keep-alive connection must end with FIN"
    );
    let after_drain = closed.duration_since(drain_seen);
    assert!(
        after_drain + EVENT_LAG >= Duration::from_secs(3),
        "closed {after_drain:?} after the drain began, before the 3 s grace"
    );
    assert!(
        after_drain < Duration::from_secs(20),
        "closed {after_drain:?} after the drain began (grace 3 s, header timeout 40 s)"
    );
    drop((idle_reader, idle));
    exits_soon_after(&cluster, old, closed, "its last connection closed");
}

#[test]
fn a_draining_worker_stops_accepting_at_once() {
    let _serial = serial();
    let (cluster, addr, old) = one_worker(&[]);

    // The old worker stays alive, busy with a slow request, for the whole test.
    let mut slow = connect(addr);
    let mut slow_reader = BufReader::new(slow.try_clone().unwrap());
    send_get(&mut slow, "/slow?ms=15000");
    let (mut probe, mut probe_reader) = idle_connection(addr, old);

    let _ = replace(&cluster, old);
    let new = only_worker(&cluster);
    assert_ne!(new, old);
    until_drain_answered(&mut probe, &mut probe_reader, old);
    drop((probe_reader, probe));

    // The old worker now drains: every new connection goes to its replacement, although the
    // old one still runs and the listening socket is shared.
    for i in 0..30 {
        let pid = http_common::pid_via_http(addr);
        assert_eq!(
            pid, new,
            "new connection {i} was answered by {pid}, not the replacement {new} (old {old})"
        );
    }
    assert!(
        alive(old),
        "inconclusive: the old worker {old} was gone before the last new connection"
    );

    let res = read_response(&mut slow_reader).expect("the slow request answered");
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.body.trim(), format!("slept 15000 ms in pid {old}"));
    assert!(res.connection_close(), "{res:?}");
    assert_eq!(read_end(&mut slow_reader), End::Fin);
    drop((slow_reader, slow));
    wait_exited(&cluster, old);
}

#[test]
fn pipelined_requests_during_the_drain_get_one_answer_and_a_fin() {
    let _serial = serial();
    let (cluster, addr, old) = one_worker(&[
        // The pipelining connection stays idle while the probe confirms the drain.
        ("REGIMENT_IDLE_GRACE", "20s"),
        ("REGIMENT_HEADER_READ_TIMEOUT", "40s"),
    ]);
    let (mut stream, mut reader) = idle_connection(addr, old);
    let (mut probe, mut probe_reader) = idle_connection(addr, old);

    let _ = replace(&cluster, old);
    until_drain_answered(&mut probe, &mut probe_reader, old);
    assert_eq!(read_end(&mut probe_reader), End::Fin);
    drop((probe_reader, probe));

    // Two requests in one write: the first is answered and says close; the second is never
    // answered, and the connection ends with FIN, not RST, although it was sent.
    let get = "GET /pid HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    stream.write_all(format!("{get}{get}").as_bytes()).unwrap();
    let res = read_response(&mut reader).expect("the first pipelined request answered");
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.body.trim(), old.to_string());
    assert!(
        res.connection_close(),
        "an answer during the drain must carry Connection: close: {res:?}"
    );
    assert_eq!(
        read_end(&mut reader),
        End::Fin,
        "after the answer that says close, a clean end"
    );
    let closed = Instant::now();
    drop((reader, stream));
    exits_soon_after(&cluster, old, closed, "its last connection closed");
}

/// Drain timeout of the stuck-drain test: the worker gives up a tenth of it (600 ms) early.
const SHORT_DRAIN: &str = "6s";

#[test]
fn a_worker_whose_drain_cannot_finish_exits_on_its_own_before_the_deadline() {
    let _serial = serial();
    let (cluster, addr, old) = one_worker(&[("REGIMENT_DRAIN_TIMEOUT", SHORT_DRAIN)]);

    // A request that outlasts the drain timeout by far: the drain cannot finish.
    let mut stuck = connect(addr);
    let stuck_addr = stuck.local_addr().unwrap();
    send_get(&mut stuck, "/slow?ms=60000");
    // The request is in flight once the worker counts it (the heartbeats carry the count).
    cluster.status_where("the slow request in flight", |s| {
        s["workers"].as_array().is_some_and(|ws| {
            ws.iter()
                .any(|w| w["pid"] == old && w["in_flight"].as_u64() >= Some(1))
        })
    });
    let _ = replace(&cluster, old);

    let (_, e) = cluster.wait_event("the old worker gone", 0, |e| {
        matches!(e["event"].as_str(), Some("exited" | "crashed" | "killed")) && pid_of(e) == old
    });
    assert_eq!(
        e["event"], "exited",
        "the worker must exit by itself, before the master's SIGKILL: {e}"
    );
    assert_eq!(e["status"], "exit 75", "{e}");
    // It told its master before it exited: one request left unanswered (counted as failed by
    // its last heartbeat), on the one connection still open. The master's own books, not an
    // exit status that `main` chooses.
    assert_eq!(
        e["abandoned_drain"],
        serde_json::json!({"in_flight": 1, "connections": 1}),
        "{e}"
    );
    cluster.wait_log("worker gave up its drain with 1 request in flight (1 connection open)");
    // A SIGKILL sent after the exit would still show as `killed`: none may have been sent.
    let killed = cluster
        .events()
        .into_iter()
        .filter(|e| e["event"] == "killed" && pid_of(e) == old)
        .count();
    assert_eq!(killed, 0, "worker {old} was killed at its deadline");

    // Its last words name the connection it gave up on, and what it was doing.
    let named = format!("{stuck_addr} (HTTP/1, a request in flight)");
    let stderr = cluster.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("drain deadline near"))
        .unwrap_or_else(|| panic!("no log line about the stuck drain in:\n{stderr}"));
    assert!(line.contains(&named), "{named:?} not named in {line:?}");
    wait_gone(old, CEILING);
    drop(stuck);
}
