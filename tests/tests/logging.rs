//! The log, on real processes: a master whose stdout and stderr close (`hello 2>&1 | head`, a
//! `logger` restarted, a journald stream that broke) keeps supervising under load; a program
//! whose log panics when its output fails (the fixture's, as many programs log) leaves no
//! worker behind and no signal unheard; and the log read in a file or a pipe is plain text that
//! a person reads.
//!
//! The tests close the read ends of the master's pipes (`Cluster::close_stdout`,
//! `Cluster::close_stderr`); its workers share them. Every process is found and killed by pid
//! (see `tests::cluster`).

mod http_common;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http_common::{assert_no_failure, read_response, runtime, start_hello, wait_progress};
use nix::sys::signal::Signal;
use serde_json::Value;
use tests::cluster::{CEILING, Cluster, signal_pid, wait_gone};
use tests::load::{self, ClientSpec, LoadConfig, Mode};

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");

/// The admin listener's answer to `GET path`: status and body; `None` if it does not answer.
fn admin_get(admin: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&admin, Duration::from_secs(10)).ok()?;
    stream.set_read_timeout(Some(CEILING)).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let response = read_response(&mut BufReader::new(stream)).ok()?;
    Some((response.status, response.body))
}

/// Polls the admin listener's `path` until `check` holds of its body, or panics after the
/// ceiling; at once if the master exited.
fn wait_admin(
    cluster: &mut Cluster,
    admin: SocketAddr,
    path: &str,
    what: &str,
    check: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + CEILING;
    loop {
        assert!(cluster.is_running(), "the master exited waiting for {what}");
        let body = admin_get(admin, path).map(|(_, body)| body);
        if let Some(body) = body.filter(|b| check(b)) {
            return body;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of one series (`name` or `name{labels}`), from the text of `/metrics`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The admin listener's address, from a status snapshot (printed on stdout: read it before
/// closing stdout).
fn admin_addr(cluster: &Cluster) -> SocketAddr {
    let status = cluster.status_where("the admin address", |s| s["admin"].is_string());
    status["admin"].as_str().unwrap().parse().unwrap()
}

#[test]
fn hello_keeps_supervising_when_its_stdout_and_stderr_close_under_load() {
    let mut cluster = start_hello(
        2,
        &[
            // Every lifecycle event is logged: from the close on, each of those lines fails.
            ("RUST_LOG", "info"),
            ("REGIMENT_ADMIN_BIND", "127.0.0.1:0"),
            // Workers recycle under the load, so the master has events to log.
            ("HELLO_MAX_REQUESTS", "300"),
            ("HELLO_MAX_REQUESTS_JITTER", "0"),
            ("REGIMENT_DRAIN_TIMEOUT", "60s"),
        ],
    );
    let addr = cluster.addr();
    cluster.wait_serving(2);
    let admin = admin_addr(&cluster);

    let rt = runtime();
    let config = LoadConfig::new(addr)
        .clients(
            4,
            ClientSpec::new(Mode::KeepAlive, &["/", "/pid"])
                .think_time(Duration::from_millis(5))
                .max_requests(20_000),
        )
        .max_duration(Duration::from_secs(120))
        .request_timeout(Duration::from_secs(20));
    let (stop, completed) = (config.stop(), config.completed());
    let load = rt.spawn(load::run(config));
    wait_progress(&completed, 50, CEILING);

    cluster.close_stdout();
    cluster.close_stderr();

    // Workers are replaced after 300 requests each; the master's lines about it are lost,
    // counted, and the master goes on.
    let metrics = wait_admin(
        &mut cluster,
        admin,
        "/metrics",
        "log lines lost and a worker recycled",
        |m| {
            let positive = |series| sample(m, series).is_some_and(|v| v > 0.0);
            positive("regiment_log_lines_lost_total")
                && positive(r#"regiment_replacements_total{reason="request_count"}"#)
        },
    );
    let lost = sample(&metrics, "regiment_log_lines_lost_total");
    eprintln!("lines lost: {lost:?}");

    // A rolling restart still runs to its end.
    cluster.signal(Signal::SIGHUP);
    wait_admin(
        &mut cluster,
        admin,
        "/status",
        "generation 2 done",
        |body| {
            let status: Value = serde_json::from_str(body).expect("status JSON");
            status["last_rollout"]["generation"] == 2 && status["last_rollout"]["outcome"] == "done"
        },
    );

    stop.store(true, Ordering::Relaxed);
    let report = rt.block_on(load).expect("the load run");
    eprintln!("load: {report}");
    assert_no_failure(&report);

    // SIGTERM still stops everything, gracefully: every process of the cluster ends, by pid.
    let live = cluster.live_processes();
    assert!(live.len() >= 3, "master and workers: {live:?}");
    cluster.signal(Signal::SIGTERM);
    let status = cluster.wait_exit(CEILING);
    assert!(status.success(), "master exit status {status:?}");
    for pid in live {
        wait_gone(pid, CEILING);
    }
    cluster.wait_all_gone(CEILING);
}

/// The fixture's log panics once stderr is closed. Its workers drain on SIGTERM all the same,
/// and when their master is gone (EOF on their channel) they drain and exit: none outlives it.
#[test]
fn workers_that_cannot_log_drain_on_sigterm_and_when_their_master_is_gone() {
    let mut cluster = Cluster::start(
        Path::new(FIXTURE),
        &[("REGIMENT_WORKERS", "2"), ("REGIMENT_DRAIN_TIMEOUT", "60s")],
    );
    let workers: Vec<u32> = cluster.wait_serving(2).into_values().collect();
    cluster.close_stderr();

    signal_pid(workers[0], Signal::SIGTERM);
    wait_gone(workers[0], CEILING);

    // The master's own log may have ended it meanwhile (the fixture's panics too); if not,
    // it goes now, without a word to its workers.
    if cluster.is_running() {
        cluster.signal(Signal::SIGKILL);
    }
    cluster.wait_exit(CEILING);
    wait_gone(workers[1], CEILING);
    cluster.wait_all_gone(CEILING);
}

/// SIGTERM reaches a master whose log panics (its signal handler forwards before it logs), and
/// the panic that ends the master then takes its workers down with it.
#[test]
fn a_master_whose_log_panics_obeys_sigterm_and_leaves_no_worker() {
    let mut cluster = Cluster::start(
        Path::new(FIXTURE),
        &[("REGIMENT_WORKERS", "2"), ("REGIMENT_DRAIN_TIMEOUT", "60s")],
    );
    let workers: Vec<u32> = cluster.wait_serving(2).into_values().collect();
    cluster.close_stderr();

    cluster.signal(Signal::SIGTERM);
    let status = cluster.wait_exit(CEILING);
    // 101: the master ended in a panic (its first lost line), which is what this tests.
    assert_eq!(status.code(), Some(101), "master exit status {status:?}");
    for pid in workers {
        wait_gone(pid, CEILING);
    }
    cluster.wait_all_gone(CEILING);
}

/// A supervisor that panics in a task while its runtime runs on (a program that supervises
/// among other duties) drops its workers' channels at once: they drain and exit, though they
/// send no heartbeat that would find the channel gone. Its admin listener closes with it.
#[test]
fn a_supervisor_that_panics_in_a_live_runtime_leaves_no_worker_and_no_admin_listener() {
    let mut cluster = Cluster::start(
        Path::new(FIXTURE),
        &[
            ("REGIMENT_WORKERS", "2"),
            ("REGIMENT_DRAIN_TIMEOUT", "60s"),
            ("REGIMENT_ADMIN_BIND", "127.0.0.1:0"),
            ("FIXTURE_RUN_IN_TASK", "1"),
            ("FIXTURE_NO_HEARTBEAT", "1"),
        ],
    );
    let workers: Vec<u32> = cluster.wait_serving(2).into_values().collect();
    let admin = admin_addr(&cluster);
    assert_eq!(admin_get(admin, "/readyz").map(|(s, _)| s), Some(200));
    cluster.close_stderr();

    // A rolling restart's first line is logged before any worker is touched: it panics.
    cluster.signal(Signal::SIGHUP);
    cluster.wait_event("the supervisor's panic", 0, |e| {
        e["event"] == "supervisor-panicked"
    });
    assert!(cluster.is_running(), "the master process lives on");
    for pid in workers {
        wait_gone(pid, CEILING);
    }
    assert_eq!(
        cluster.live_processes(),
        vec![cluster.pid()],
        "only the master is left"
    );
    assert!(
        TcpStream::connect_timeout(&admin, Duration::from_secs(10)).is_err(),
        "the admin listener still accepts for a supervisor that is gone"
    );
}

/// In a file or a pipe, the log is plain text (colours only on a terminal), and a spawn names
/// its program by path and date, not by device and inode numbers.
#[test]
fn the_log_in_a_pipe_is_plain_text_that_names_programs_by_path_and_date() {
    let cluster = start_hello(1, &[("RUST_LOG", "info")]);
    cluster.wait_serving(1);
    // Logged after the spawn: its line is whole.
    cluster.wait_log("worker ready");
    let log = cluster.stderr();
    assert!(!log.contains('\x1b'), "colour codes in a pipe:\n{log}");
    let spawned = log
        .lines()
        .find(|l| l.contains("worker spawned"))
        .expect("a spawn logged");
    assert!(
        spawned.contains("hello_under_test (modified 20") && !spawned.contains("inode"),
        "{spawned}"
    );
}
