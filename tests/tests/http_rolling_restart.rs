//! Rolling restarts under sustained HTTP/1.1 load lose no request.
//!
//! Four keep-alive clients and four clients opening a new connection per request, each mixing
//! fast (`/`) and slow (`/slow`) requests, run while the master is sent SIGHUP five times
//! (each waits for the previous rollout to finish and for load to flow on the new workers).
//! Every request must get a complete 200: zero connect errors, zero resets/EOFs before a full
//! response, zero timeouts, zero non-2xx. Keep-alive clients pause 20 ms between requests, as
//! real clients do, so that drains find their connections idle; each such connection must be
//! ended by a `Connection: close` answer, never closed under the client. Every worker pid must
//! have changed.

mod http_common;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_common::{pid_via_http, runtime, start_hello, wait_progress};
use nix::sys::signal::Signal;
use tests::cluster::{CEILING, wait_gone};
use tests::load::{self, ClientSpec, LoadConfig, Mode};

const WORKERS: usize = 2;
const RESTARTS: usize = 5;

#[test]
fn rolling_restarts_under_http1_load_lose_no_request() {
    let cluster = start_hello(WORKERS, &[]);
    let addr = cluster.addr();
    let first: BTreeSet<u32> = cluster.wait_serving(WORKERS).into_values().collect();

    let rt = runtime();
    let config = LoadConfig::new(addr)
        .clients(
            4,
            ClientSpec::new(Mode::KeepAlive, &["/", "/", "/slow?ms=200", "/pid"])
                .think_time(Duration::from_millis(20))
                .max_requests(20_000),
        )
        .clients(
            4,
            ClientSpec::new(Mode::NewConnection, &["/", "/slow?ms=300", "/pid"])
                .max_requests(20_000),
        )
        .max_duration(Duration::from_secs(55))
        .request_timeout(Duration::from_secs(20));
    let (stop, completed) = (config.stop(), config.completed());
    let load = rt.spawn(load::run(config));

    wait_progress(&completed, 50, CEILING);
    for i in 0..RESTARTS {
        let from = cluster.events().len();
        cluster.signal(Signal::SIGHUP);
        cluster.wait_event(&format!("rollout {} done", i + 1), from, |e| {
            e["event"] == "rollout-done"
        });
        // Load must flow on the new generation before the next restart.
        wait_progress(&completed, 150, CEILING);
    }
    stop.store(true, Ordering::Relaxed);
    let report = rt.block_on(load).expect("the load run");
    eprintln!("load: {report}");

    assert_eq!(report.connect_errors, 0, "connect errors: {report}");
    assert_eq!(
        report.resets, 0,
        "resets/EOF before a full response: {report}"
    );
    assert_eq!(report.timeouts, 0, "timeouts: {report}");
    assert_eq!(report.bad_status, 0, "non-2xx answers: {report}");
    assert!(
        report.ok >= 250,
        "too little load to show anything: {report}"
    );
    // Each restart drained every keep-alive connection, and did it through `Connection: close`
    // on an answer: the clients pause only 20 ms between requests, well within the idle grace,
    // so no connection may have been closed under a client about to send its next request
    // (that would show as a reconnect, or as a reset if the request was already written).
    assert!(
        report.closed_by_server >= RESTARTS as u64,
        "keep-alive connections were not drained with Connection: close: {report}"
    );
    assert_eq!(
        report.reconnects, 0,
        "keep-alive connections closed under their clients: {report}"
    );

    let events = cluster.events();
    let rollouts = events
        .iter()
        .filter(|e| e["event"] == "rollout-done")
        .count();
    assert_eq!(rollouts, RESTARTS);
    assert!(
        !events.iter().any(|e| e["event"] == "killed"),
        "a worker was killed at its deadline instead of draining"
    );
    let last: BTreeSet<u32> = cluster.wait_serving(WORKERS).into_values().collect();
    assert!(
        first.is_disjoint(&last),
        "worker pids unchanged: {first:?} -> {last:?}"
    );
    for pid in &first {
        wait_gone(*pid, CEILING);
    }
    for _ in 0..10 {
        let pid = pid_via_http(addr);
        assert!(
            last.contains(&pid),
            "answered by {pid}, not one of {last:?}"
        );
    }
}
