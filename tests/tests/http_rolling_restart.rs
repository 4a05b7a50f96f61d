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
use std::time::Duration;

use http_common::{assert_all_replaced, assert_no_failure, load_during_restarts, start_hello};
use tests::load::{ClientSpec, LoadConfig, Mode};

const WORKERS: usize = 2;
const RESTARTS: usize = 5;

#[test]
fn rolling_restarts_under_http1_load_lose_no_request() {
    let cluster = start_hello(WORKERS, &[]);
    let first: BTreeSet<u32> = cluster.wait_serving(WORKERS).into_values().collect();
    let config = LoadConfig::new(cluster.addr())
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
    let report = load_during_restarts(&cluster, config, RESTARTS);

    assert_no_failure(&report);
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
    assert_all_replaced(&cluster, &first, WORKERS, RESTARTS);
}
