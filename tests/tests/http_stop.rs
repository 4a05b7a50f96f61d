//! SIGTERM under load: requests in flight complete, the master exits 0, no process is left.
//!
//! Six keep-alive clients mixing fast and slow (`/slow?ms=1500`) requests run against two
//! workers. The clients are told to start no new request, and the master gets SIGTERM at the
//! same moment: every request already sent, including the slow ones in flight, must complete
//! with 200 (answered with `Connection: close`, the workers draining), the master must exit 0,
//! and no process of the cluster may remain. (Clients that open a new connection per request
//! are left out here: during a stop, a connection still queued when the last worker stops
//! accepting has nobody left to serve it.)

mod http_common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use http_common::{assert_no_failure, runtime, start_hello, wait_progress};
use nix::sys::signal::Signal;
use tests::cluster::CEILING;
use tests::load::{self, ClientSpec, LoadConfig, Mode};

#[test]
fn sigterm_under_load_completes_in_flight_requests_and_leaves_nothing() {
    let mut cluster = start_hello(2, &[("REGIMENT_DRAIN_TIMEOUT", "60s")]);
    let addr = cluster.addr();
    cluster.wait_serving(2);

    let rt = runtime();
    let config = LoadConfig::new(addr)
        .clients(
            3,
            ClientSpec::new(Mode::KeepAlive, &["/", "/slow?ms=1500", "/pid"])
                .think_time(Duration::from_millis(10))
                .max_requests(20_000),
        )
        .clients(
            3,
            ClientSpec::new(Mode::KeepAlive, &["/slow?ms=1500", "/"]).max_requests(20_000),
        )
        .max_duration(Duration::from_secs(50))
        .request_timeout(Duration::from_secs(20));
    let (stop, completed) = (config.stop(), config.completed());
    let load = rt.spawn(load::run(config));
    wait_progress(&completed, 30, CEILING);

    stop.store(true, Ordering::Relaxed);
    let before_stop = completed.load(Ordering::Relaxed);
    cluster.signal(Signal::SIGTERM);
    let report = rt.block_on(load).expect("the load run");
    eprintln!("load: {report}");

    assert_no_failure(&report);
    assert_eq!(report.reconnects, 0, "{report}");
    assert!(
        report.ok > before_stop,
        "no request was in flight at SIGTERM: {report}"
    );
    assert!(
        report.closed_by_server >= 1,
        "no answer came from a draining worker: {report}"
    );

    let status = cluster.wait_exit(CEILING);
    assert!(status.success(), "master exit status {status:?}");
    let events = cluster.events();
    assert!(
        events.iter().any(|e| e["event"] == "stopped"),
        "no stopped event"
    );
    assert!(
        !events.iter().any(|e| e["event"] == "killed"),
        "a worker was killed instead of draining"
    );
    cluster.wait_all_gone(CEILING);
}
