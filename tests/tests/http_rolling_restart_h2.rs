//! Rolling restarts under sustained HTTP/2 load lose no request.
//!
//! Four HTTP/2 clients (prior knowledge, one connection each, reopened after GOAWAY) mixing
//! fast and slow requests run while the master is sent SIGHUP five times. Every request must
//! get a complete 200: zero connect errors, resets, timeouts or non-2xx. A request refused
//! locally after the server's GOAWAY(NO_ERROR) is retried on a new connection, as HTTP/2
//! clients do (RFC 9113 §6.8: the server did not process it); any other stream error fails.
//! Every worker pid must have changed.

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
fn rolling_restarts_under_http2_load_lose_no_request() {
    let cluster = start_hello(WORKERS, &[]);
    let addr = cluster.addr();
    let first: BTreeSet<u32> = cluster.wait_serving(WORKERS).into_values().collect();

    let rt = runtime();
    let config = LoadConfig::new(addr)
        .clients(
            4,
            ClientSpec::new(Mode::Http2, &["/", "/", "/slow?ms=200", "/pid"])
                .think_time(Duration::from_millis(5))
                .max_requests(20_000),
        )
        .clients(
            2,
            ClientSpec::new(Mode::Http2, &["/slow?ms=400", "/"]).max_requests(20_000),
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
        report.ok >= 500,
        "too little load to show anything: {report}"
    );

    let events = cluster.events();
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "rollout-done")
            .count(),
        RESTARTS
    );
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
    let pid = pid_via_http(addr);
    assert!(
        last.contains(&pid),
        "answered by {pid}, not one of {last:?}"
    );
}
