//! Rolling restarts under sustained HTTP/2 load lose no request.
//!
//! Four HTTP/2 clients (prior knowledge, one connection each, reopened after GOAWAY) mixing
//! fast and slow requests run while the master is sent SIGHUP five times. Every request must
//! get a complete 200: zero connect errors, resets, timeouts or non-2xx. A request the server
//! refused unprocessed (above the last stream id of its GOAWAY(NO_ERROR), RFC 9113 §6.8, or
//! REFUSED_STREAM, §8.7), or not sent because its connection had received GOAWAY and closed, is
//! retried on a new connection, as HTTP/2 clients do; any other error fails, a connection
//! closed without GOAWAY included. Draining workers must end their connections with GOAWAY:
//! at least one connection per restart received one. Every worker pid must have changed.

mod http_common;

use std::collections::BTreeSet;
use std::time::Duration;

use http_common::{assert_all_replaced, assert_no_failure, load_during_restarts, start_hello};
use tests::load::{ClientSpec, LoadConfig, Mode};

const WORKERS: usize = 2;
const RESTARTS: usize = 5;

#[test]
fn rolling_restarts_under_http2_load_lose_no_request() {
    let cluster = start_hello(WORKERS, &[]);
    let first: BTreeSet<u32> = cluster.wait_serving(WORKERS).into_values().collect();
    let config = LoadConfig::new(cluster.addr())
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
    let report = load_during_restarts(&cluster, config, RESTARTS);

    assert_no_failure(&report);
    assert!(
        report.ok >= 500,
        "too little load to show anything: {report}"
    );
    assert!(
        report.goaway_connections >= RESTARTS as u64,
        "draining workers did not end their HTTP/2 connections with GOAWAY: {report}"
    );
    assert_all_replaced(&cluster, &first, WORKERS, RESTARTS);
}
