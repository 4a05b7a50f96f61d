//! gRPC through regiment-axum: a tonic client keeps ONE channel through five rolling restarts
//! under load, and no call fails.
//!
//! The `grpc` example (a tonic service served by regiment-axum) runs with two workers. One tonic
//! `Channel`, created once and cloned into every client, carries unary calls (some answered
//! after a delay) and server-streaming calls (ticks 20 ms apart) while the master is sent SIGHUP
//! five times, each once the previous rollout is done and calls flow on the new workers. Then:
//! - no call failed: every `Whoami` was answered, every `Ticks` stream came whole and in order;
//!   calls the server refused unprocessed (GOAWAY, REFUSED_STREAM) were retried on the same
//!   channel and are counted apart (see `tests::grpc`);
//! - the channel was kept: the server ended its connections with GOAWAY only (none lost), and
//!   the channel opened exactly one connection more than GOAWAYs it received, at least one per
//!   restart;
//! - drains waited for the calls open on them: streams that ran across their worker's drain
//!   came whole, and unary calls were answered by draining workers;
//! - every generation, 1 to 6, answered calls: the restarts happened under the channel.

mod http_common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_common::{runtime, wait_progress};
use nix::sys::signal::Signal;
use tests::cluster::{CEILING, Cluster};
use tests::grpc::{GrpcLoad, WatchedChannel};

const WORKERS: usize = 2;
const RESTARTS: usize = 5;

/// Starts `grpc` (built in this package as `grpc_under_test`) with two workers on an ephemeral
/// port of 127.0.0.1, printing its events, with `env` on top.
fn start_grpc(env: &[(&str, &str)]) -> Cluster {
    let mut all = vec![
        ("GRPC_WORKERS", "2"),
        ("GRPC_PRINT_EVENTS", "true"),
        ("RUST_LOG", "warn"),
    ];
    all.extend_from_slice(env);
    Cluster::start(Path::new(env!("CARGO_BIN_EXE_grpc_under_test")), &all)
}

#[test]
fn a_tonic_channel_lives_through_five_rolling_restarts_under_load_with_no_failed_call() {
    let cluster = start_grpc(&[]);
    cluster.wait_serving(WORKERS);
    let rt = runtime();
    let watched = rt.block_on(WatchedChannel::connect(cluster.addr()));
    let load = GrpcLoad::new(watched.channel.clone())
        .unary_clients(3, &[0, 0, 50, 0, 200])
        .stream_clients(2, 10, Duration::from_millis(20))
        .max_duration(Duration::from_secs(55));
    let (stop, completed) = (load.stop(), load.completed());
    let running = rt.spawn(load.run());
    wait_progress(&completed, 30, CEILING);
    for i in 0..RESTARTS {
        let from = cluster.events().len();
        cluster.signal(Signal::SIGHUP);
        cluster.wait_event(&format!("rollout {} done", i + 1), from, |e| {
            e["event"] == "rollout-done"
        });
        // Calls must flow on the new generation before the next restart.
        wait_progress(&completed, 60, CEILING);
    }
    stop.store(true, Ordering::Relaxed);
    let report = rt.block_on(running).expect("the gRPC load");
    let counts = &watched.counts;
    eprintln!("grpc: {report}\ngrpc: {counts}");

    assert_eq!(report.failed, 0, "failed calls: {report}");
    assert!(
        report.unary_ok >= 100 && report.streams_ok >= 10,
        "too few calls to show anything: {report}"
    );
    let (opened, goaway) = (
        counts.opened.load(Ordering::Relaxed),
        counts.goaway.load(Ordering::Relaxed),
    );
    assert_eq!(counts.lost.load(Ordering::Relaxed), 0, "{counts}");
    assert_eq!(counts.connect_errors.load(Ordering::Relaxed), 0, "{counts}");
    assert!(
        goaway >= RESTARTS as u64,
        "each restart must end the channel's connection with GOAWAY: {counts}"
    );
    assert_eq!(
        opened,
        goaway + 1,
        "the channel must open a new connection only after a GOAWAY: {counts}"
    );
    // The channel's connection is on a worker of the old generation whenever a restart begins,
    // with both stream clients' streams open on it.
    assert!(
        report.streams_across_drain >= RESTARTS as u64,
        "streams open across a drain must come whole: {report}"
    );
    assert!(
        report.unary_while_draining >= 1,
        "unary calls in flight at a drain must be answered: {report}"
    );
    let generations: Vec<u64> = report.generations.keys().copied().collect();
    assert_eq!(
        generations,
        (1..=RESTARTS as u64 + 1).collect::<Vec<_>>(),
        "every generation must answer calls: {report}"
    );
    assert!(
        !cluster.events().iter().any(|e| e["event"] == "killed"),
        "a worker was killed at its deadline instead of draining"
    );
}

/// A tonic channel that connects, then idles well past the header read timeout, is served on
/// its first connection with no GOAWAY: an HTTP/2 connection past its preface may idle.
#[test]
fn an_idle_tonic_channel_is_served_on_its_first_connection() {
    let cluster = start_grpc(&[("REGIMENT_HEADER_READ_TIMEOUT", "1s")]);
    cluster.wait_serving(WORKERS);
    let rt = runtime();
    let watched = rt.block_on(WatchedChannel::connect(cluster.addr()));
    // The idleness is what is tested: three header read timeouts without a call.
    std::thread::sleep(Duration::from_secs(3));
    let worker = rt
        .block_on(
            examples::grpc_app::proto::worker_info_client::WorkerInfoClient::new(
                watched.channel.clone(),
            )
            .whoami(examples::grpc_app::proto::WhoamiRequest { delay_ms: 0 }),
        )
        .expect("the call after the idle time is answered")
        .into_inner();
    assert_eq!(worker.generation, 1, "{worker:?}");
    let counts = &watched.counts;
    assert_eq!(counts.goaway.load(Ordering::Relaxed), 0, "{counts}");
    assert_eq!(counts.lost.load(Ordering::Relaxed), 0, "{counts}");
    assert_eq!(
        counts.opened.load(Ordering::Relaxed),
        1,
        "served on the first connection: {counts}"
    );
}
