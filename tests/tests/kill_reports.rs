//! Kill reports, end to end: a worker that ignores its drain is killed at its deadline, and
//! the master took a report of it first, which `regiment reports`, `regiment report ID`, the
//! admin listener's `/reports`, the master's log and its metrics show; a worker whose handler
//! blocks its runtime is found silent, replaced and killed without another request lost, and
//! its report names the request and shows the handler in the blocked thread's stack.

mod http_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;
use tests::cluster::{CEILING, Cluster, pid_of, signal_pid, wait_gone};

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");
const BLOCKING: &str = env!("CARGO_BIN_EXE_blocking_handler_under_test");
const REGIMENT: &str = env!("CARGO_BIN_EXE_regiment_under_test");

fn regiment(socket: &Path, args: &[&str]) -> Output {
    tests::command::regiment_bounded(REGIMENT, socket, args)
        .unwrap_or_else(|| panic!("regiment {args:?} still ran after {CEILING:?}"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `GET path` on the admin listener, HTTP/1.0: the body.
fn admin_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to the admin listener");
    s.set_read_timeout(Some(CEILING)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    answer.split_once("\r\n\r\n").expect("a body").1.to_owned()
}

#[test]
fn a_worker_killed_at_its_drain_deadline_is_reported_first() {
    let dir = tests::scratch::ScratchDir::new("kill-reports");
    let socket = dir.join("control.sock");
    let c = Cluster::start(
        Path::new(FIXTURE),
        &[
            ("REGIMENT_WORKERS", "1"),
            ("FIXTURE_IGNORE_DRAIN", "1"),
            ("REGIMENT_DRAIN_TIMEOUT", "1s"),
            ("REGIMENT_CONTROL_SOCKET", socket.to_str().unwrap()),
            ("REGIMENT_ADMIN_BIND", "127.0.0.1:0"),
        ],
    );
    let old = c.wait_serving(1)[&0];
    // Nothing was killed yet: nothing to report.
    let none = regiment(&socket, &["reports", "--json"]);
    assert!(none.status.success());
    assert_eq!(
        serde_json::from_slice::<Value>(&none.stdout).unwrap(),
        serde_json::json!([])
    );

    // It asks to be replaced, then ignores its drain: killed at the deadline.
    signal_pid(old, Signal::SIGUSR1);
    let (_, killed) = c.wait_event("kill", 0, |e| e["event"] == "killed" && pid_of(e) == old);
    assert_eq!(killed["why"], "drain deadline");
    let (_, exited) = c.wait_event("exit", 0, |e| e["event"] == "exited" && pid_of(e) == old);
    assert_eq!(exited["status"], "signal 9 (SIGKILL)");
    wait_gone(old, CEILING);

    // The report was kept before the kill was sent.
    let out = regiment(&socket, &["reports", "--json"]);
    assert!(out.status.success());
    let reports: Value = serde_json::from_slice(&out.stdout).expect("reports --json is JSON");
    let reports = reports.as_array().expect("an array");
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report = &reports[0];
    assert_eq!(report["pid"], old);
    assert_eq!(report["slot"], 0);
    assert_eq!(report["generation"], 1);
    assert_eq!(report["why"], "drain deadline");
    assert!(
        report["rss"].as_u64().is_some_and(|rss| rss > 0),
        "{report}"
    );
    let threads = report["threads"].as_array().expect("threads");
    assert!(!threads.is_empty(), "{report}");
    // Its main thread (tid = pid), with a state the kernel gave.
    let main = threads
        .iter()
        .find(|t| t["tid"] == old)
        .unwrap_or_else(|| panic!("the main thread in {report}"));
    let state = main["state"].as_str().expect("a state");
    assert!(
        ["R ", "S ", "D ", "T ", "t "]
            .iter()
            .any(|s| state.starts_with(s)),
        "{report}"
    );
    let id = report["id"].as_u64().expect("an id");

    // The table, and the report whole.
    let table = stdout(&regiment(&socket, &["reports"]));
    let row = table.lines().nth(1).expect("a row");
    assert!(row.starts_with(&format!("{id} ")), "{table}");
    assert!(
        row.contains(&format!("  {old}  ")) && row.contains("drain deadline"),
        "{table}"
    );
    let whole = regiment(&socket, &["report", &id.to_string()]);
    assert!(whole.status.success());
    let whole = stdout(&whole);
    assert!(
        whole.starts_with(&format!("kill report {id} · ")),
        "{whole}"
    );
    assert!(whole.contains(&format!(
        "worker slot 0 pid {old} generation 1 · drain deadline"
    )));
    assert!(
        whole
            .lines()
            .any(|l| l.starts_with(&format!("{old}  ")) && l.contains(state)),
        "{whole}"
    );
    let unknown = regiment(&socket, &["report", "99"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no kill report 99"));

    // The master's log said so at warn, its metrics count it, and the admin listener serves it.
    c.wait_log(&format!(
        "kill report #{id}: worker slot 0 pid {old} gen 1, drain deadline:"
    ));
    let metrics = stdout(&regiment(&socket, &["metrics"]));
    assert!(
        metrics.contains("\nregiment_kill_reports_total 1\n"),
        "{metrics}"
    );
    let status: Value = serde_json::from_slice(&regiment(&socket, &["status", "--json"]).stdout)
        .expect("status --json");
    let admin = status["admin"].as_str().expect("the admin address");
    let served: Value = serde_json::from_str(&admin_get(admin, "/reports")).expect("JSON");
    assert_eq!(served[0]["pid"], old);
    assert_eq!(served[0]["threads"], report["threads"]);
}

/// The "done when": a handler that blocks every runtime thread of its worker
/// (`std::thread::sleep` in an async handler, on a current-thread runtime). The worker falls
/// silent, is replaced and killed, no other request is lost, and its report holds the request
/// in flight (its path, not its query) and the blocking handler's frame.
#[test]
fn a_worker_blocked_in_a_handler_is_reported_with_its_request_and_the_handlers_frame() {
    let dir = tests::scratch::ScratchDir::new("blocked-report");
    let socket = dir.join("control.sock");
    let c = Cluster::start(
        Path::new(BLOCKING),
        &[
            ("REGIMENT_WORKERS", "2"),
            ("REGIMENT_HEARTBEAT_TIMEOUT", "3s"),
            ("REGIMENT_CONTROL_SOCKET", socket.to_str().unwrap()),
            // Generous for a loaded machine: the report is bounded, not timed.
            ("REGIMENT_KILL_REPORT_TIMEOUT", "20s"),
        ],
    );
    let addr = c.addr();
    c.wait_serving(2);
    // Only a worker that has sent heartbeats is judged by their absence.
    c.status_where("a heartbeat from both workers", |s| {
        s["workers"].as_array().is_some_and(|w| {
            w.len() == 2 && w.iter().all(|w| w["rss"].as_u64().is_some_and(|r| r > 0))
        })
    });

    // One request blocks the worker that takes it; its query must not reach the report.
    let mut blocked = std::net::TcpStream::connect(addr).unwrap();
    write!(
        blocked,
        "GET /block/checkout?token=secret HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    let (_, silent) = c.wait_event("a worker found silent", 0, |e| e["event"] == "unresponsive");
    let old = pid_of(&silent);

    // From now on the other worker, then the replacement, serve: not one request lost while the
    // blocked one is replaced, reported and killed.
    let rt = http_common::runtime();
    let config = tests::load::LoadConfig::new(addr)
        .clients(
            2,
            tests::load::ClientSpec::new(tests::load::Mode::KeepAlive, &["/"]).max_requests(20_000),
        )
        .clients(
            2,
            tests::load::ClientSpec::new(tests::load::Mode::NewConnection, &["/"])
                .max_requests(20_000),
        )
        .max_duration(Duration::from_secs(120))
        .request_timeout(Duration::from_secs(30));
    let (stop, completed) = (config.stop(), config.completed());
    let load = rt.spawn(tests::load::run(config));
    http_common::wait_progress(&completed, 20, CEILING);
    let (_, killed) = c.wait_event("the blocked worker killed", 0, |e| {
        e["event"] == "killed" && pid_of(e) == old
    });
    assert_eq!(killed["why"], "unresponsive");
    wait_gone(old, CEILING);
    http_common::wait_progress(&completed, 20, CEILING);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let report = rt.block_on(load).expect("the load run");
    http_common::assert_no_failure(&report);
    // The blocked request's connection was cut with its worker.
    let mut rest = Vec::new();
    blocked.set_read_timeout(Some(CEILING)).unwrap();
    let _ = blocked.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));

    let out = regiment(&socket, &["reports", "--json"]);
    assert!(out.status.success());
    let reports: Value = serde_json::from_slice(&out.stdout).expect("reports --json is JSON");
    let report = reports
        .as_array()
        .and_then(|r| r.iter().find(|r| r["pid"] == old))
        .unwrap_or_else(|| panic!("no report of {old}: {reports}"))
        .clone();
    assert_eq!(report["why"], "unresponsive");
    assert_eq!(report["worker_answered"], true, "{report}");
    let requests = report["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), 1, "{report}");
    assert_eq!(requests[0]["method"], "GET");
    assert_eq!(requests[0]["path"], "/block/checkout", "{report}");
    assert_eq!(requests[0]["version"], "HTTP/1.1");
    assert!(!report.to_string().contains("secret"), "{report}");
    // The blocked thread's stack: the sleep, then the handler.
    let threads = report["threads"].as_array().expect("threads");
    let blocked_thread = threads
        .iter()
        .find(|t| {
            t["stack"].as_array().is_some_and(|frames| {
                frames.iter().any(|f| {
                    f["function"]
                        .as_str()
                        .is_some_and(|f| f.ends_with("block_the_runtime_thread"))
                })
            })
        })
        .unwrap_or_else(|| panic!("no thread in the handler: {report}"));
    let frame = blocked_thread["stack"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["function"]
                .as_str()
                .unwrap()
                .ends_with("block_the_runtime_thread")
        })
        .unwrap();
    assert!(
        frame["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("blocking_handler_under_test.rs")),
        "{frame}"
    );
    assert!(frame["line"].as_u64().is_some(), "{frame}");
    assert_eq!(
        blocked_thread["syscall"], "clock_nanosleep",
        "{blocked_thread}"
    );
    // And `regiment report ID` prints them.
    let id = report["id"].to_string();
    let whole = stdout(&regiment(&socket, &["report", &id]));
    assert!(
        whole.contains("GET     /block/checkout  HTTP/1.1"),
        "{whole}"
    );
    assert!(whole.contains("block_the_runtime_thread ("), "{whole}");
}
