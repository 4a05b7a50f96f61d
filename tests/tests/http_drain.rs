//! How a draining worker ends its connections, seen on the wire.
//!
//! Each test runs one worker, makes the master replace it (SIGHUP), and watches one or two
//! raw HTTP/1.1 connections to it:
//! - a request in flight when the drain starts completes with 200 and `Connection: close`, and
//!   the worker exits right after, long before its drain deadline;
//! - a client trickling half a request header cannot hold the draining worker past the header
//!   read timeout;
//! - an idle keep-alive connection is closed with FIN (not RST) after the idle grace, and a
//!   request sent on a keep-alive connection during the drain is served with
//!   `Connection: close`.
//!
//! The tests of this file run one at a time: their bounds are about one worker's timing.

mod http_common;

use std::io::{BufReader, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http_common::{End, connect, read_end, read_response, send_get, start_hello};
use nix::sys::signal::Signal;
use tests::cluster::{CEILING, Cluster, pid_of, wait_gone};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Drain deadline of these tests: far above every bound they assert, so that an exit by
/// deadline can never pass for an exit on the last connection.
const DRAIN_DEADLINE: &str = "60s";

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The only worker's pid.
fn only_worker(cluster: &Cluster) -> u32 {
    *cluster.wait_serving(1).get(&0).expect("slot 0")
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

#[test]
fn a_request_in_flight_completes_and_the_worker_exits_right_after() {
    let _serial = serial();
    let cluster = start_hello(1, &[("REGIMENT_DRAIN_TIMEOUT", DRAIN_DEADLINE)]);
    let addr = cluster.addr();
    let old = only_worker(&cluster);

    let mut stream = connect(addr);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    send_get(&mut stream, "/pid");
    let res = read_response(&mut reader).expect("a /pid answer");
    assert_eq!(res.body.trim(), old.to_string());

    send_get(&mut stream, "/slow?ms=3000");
    let drain_seen = replace(&cluster, old);
    let res = read_response(&mut reader).expect("the slow request answered");
    let answered = Instant::now();
    assert!(
        drain_seen < answered,
        "inconclusive: the slow request was answered before the drain began"
    );
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.body.trim(), format!("slept 3000 ms in pid {old}"));
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

    let exited = wait_exited(&cluster, old);
    let after = exited.duration_since(answered);
    assert!(
        after < Duration::from_secs(10),
        "worker {old} exited {after:?} after its last request (drain deadline {DRAIN_DEADLINE})"
    );
}

#[test]
fn half_a_header_cannot_hold_a_draining_worker() {
    let _serial = serial();
    let cluster = start_hello(
        1,
        &[
            ("REGIMENT_DRAIN_TIMEOUT", DRAIN_DEADLINE),
            ("REGIMENT_HEADER_READ_TIMEOUT", "4s"),
        ],
    );
    let addr = cluster.addr();
    let old = only_worker(&cluster);

    // Half a header, then one more byte every 200 ms: the connection is never idle, so only
    // the header read timeout can end it.
    let mut stream = connect(addr);
    let connected = Instant::now();
    stream
        .write_all(b"GET /pid HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: ")
        .unwrap();
    let mut reader = stream.try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        for _ in 0..300 {
            if stream.write_all(b"a").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let drain_seen = replace(&cluster, old);
    reader
        .set_read_timeout(Some(Duration::from_secs(45)))
        .unwrap();
    let end = read_end(&mut reader);
    let closed = Instant::now();
    assert!(
        !matches!(end, End::Timeout),
        "the half-header connection was never closed"
    );
    assert!(
        drain_seen < closed,
        "inconclusive: the connection was closed before the drain began"
    );
    let open_for = closed.duration_since(connected);
    assert!(
        open_for < Duration::from_secs(20),
        "the half-header connection stayed open {open_for:?} (header read timeout 4 s)"
    );
    drop(reader);
    let exited = wait_exited(&cluster, old);
    let drained_in = exited.duration_since(drain_seen);
    assert!(
        drained_in < Duration::from_secs(20),
        "worker {old} took {drained_in:?} to drain (header read timeout 4 s, deadline {DRAIN_DEADLINE})"
    );
    trickler.join().unwrap();
}

#[test]
fn idle_keep_alive_is_closed_with_fin_and_a_request_during_the_drain_is_served() {
    let _serial = serial();
    let cluster = start_hello(
        1,
        &[
            ("REGIMENT_DRAIN_TIMEOUT", DRAIN_DEADLINE),
            ("REGIMENT_IDLE_GRACE", "3s"),
            ("REGIMENT_HEADER_READ_TIMEOUT", "40s"),
        ],
    );
    let addr = cluster.addr();
    let old = only_worker(&cluster);

    // Two keep-alive connections to the worker, each after one request, now idle.
    let mut idle = connect(addr);
    let mut idle_reader = BufReader::new(idle.try_clone().unwrap());
    send_get(&mut idle, "/pid");
    assert_eq!(
        read_response(&mut idle_reader).unwrap().body.trim(),
        old.to_string()
    );
    let mut busy = connect(addr);
    let mut busy_reader = BufReader::new(busy.try_clone().unwrap());
    send_get(&mut busy, "/pid");
    assert_eq!(
        read_response(&mut busy_reader).unwrap().body.trim(),
        old.to_string()
    );

    let hup = Instant::now();
    let drain_seen = replace(&cluster, old);

    // A client sending its next request now, during the drain, is served, and told to go. The
    // master reports the drain as it sends it: the worker may get it a moment later, so the
    // client keeps sending (every 20 ms, well within the grace) until an answer says close;
    // every request must be answered by the old worker, and none may find its connection gone.
    let mut answers = 0;
    loop {
        send_get(&mut busy, "/pid");
        let res = read_response(&mut busy_reader).expect("a request during the drain is served");
        answers += 1;
        assert_eq!(res.status, 200, "{res:?}");
        assert_eq!(
            res.body.trim(),
            old.to_string(),
            "served by the draining worker"
        );
        if res.connection_close() {
            break;
        }
        assert!(
            answers < 250,
            "no answer carried Connection: close {:?} after the drain began",
            drain_seen.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
    let after_hup = closed.duration_since(hup);
    assert!(
        after_hup >= Duration::from_secs(3),
        "closed {after_hup:?} after SIGHUP, before the 3 s grace"
    );
    let after_drain = closed.duration_since(drain_seen);
    assert!(
        after_drain < Duration::from_secs(20),
        "closed {after_drain:?} after the drain began (grace 3 s, header timeout 40 s)"
    );
    drop((idle_reader, idle));
    let exited = wait_exited(&cluster, old);
    assert!(exited.duration_since(closed) < Duration::from_secs(10));
}
