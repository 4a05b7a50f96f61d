//! The criteria layers at work in real clusters under real HTTP load: workers that reach their
//! request count or memory threshold, or a custom criterion, are replaced (new first) with no
//! failed request, and the master's events and status carry the reason.

mod http_common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_common::{
    assert_no_failure, connect, read_response, runtime, send_get, start_hello, wait_progress,
};
use serde_json::Value;
use tests::cluster::{CEILING, Cluster, pid_of};
use tests::load::{self, ClientSpec, LoadConfig, Mode, Report};

fn is(e: &Value, event: &str) -> bool {
    e["event"] == event
}

/// Workers that asked for replacement with a reason starting with `prefix`, and have exited.
fn replaced(evs: &[Value], prefix: &str) -> Vec<(u32, String)> {
    evs.iter()
        .filter(|e| is(e, "replace-requested"))
        .filter(|e| e["reason"].as_str().is_some_and(|r| r.starts_with(prefix)))
        .filter(|e| {
            evs.iter()
                .any(|x| is(x, "exited") && pid_of(x) == pid_of(e))
        })
        .map(|e| (pid_of(e), e["reason"].as_str().unwrap().to_owned()))
        .collect()
}

/// Puts keep-alive and new-connection load on `cluster` until `n` workers were replaced for
/// `prefix`, then checks that no request failed in any class.
fn load_until_replaced(
    cluster: &Cluster,
    paths: &[&str],
    n: usize,
    prefix: &str,
) -> (Report, Vec<(u32, String)>) {
    let rt = runtime();
    let config = LoadConfig::new(cluster.addr())
        .clients(
            4,
            ClientSpec::new(Mode::KeepAlive, paths).max_requests(20_000),
        )
        .clients(
            2,
            ClientSpec::new(Mode::NewConnection, paths).max_requests(20_000),
        )
        .max_duration(Duration::from_secs(90))
        .request_timeout(Duration::from_secs(20));
    let (stop, completed) = (config.stop(), config.completed());
    let load = rt.spawn(load::run(config));
    wait_progress(&completed, 20, CEILING);
    let done = cluster.wait_for(
        &format!("{n} workers replaced for {prefix}"),
        Duration::from_secs(90),
        |evs| {
            let r = replaced(evs, prefix);
            (r.len() >= n).then_some(r)
        },
    );
    stop.store(true, Ordering::Relaxed);
    let report = rt.block_on(load).expect("the load run");
    eprintln!("load: {report}");
    assert_no_failure(&report);
    // Keep-alive clients without think time are never idle: a draining worker answers their
    // next request with `Connection: close`, and never closes a connection under one.
    assert_eq!(report.reconnects, 0, "{report}");
    let events = cluster.events();
    assert!(
        !events.iter().any(|e| is(e, "killed")),
        "a worker was killed instead of draining"
    );
    // New before old, for every replacement.
    for (pid, _) in &done {
        let drain = events
            .iter()
            .position(|e| is(e, "draining") && pid_of(e) == *pid)
            .unwrap();
        let slot = &events[drain]["slot"];
        let successor_ready = events[..drain]
            .iter()
            .rev()
            .find(|e| is(e, "ready") && &e["slot"] == slot)
            .unwrap();
        assert_ne!(pid_of(successor_ready), *pid);
    }
    (report, done)
}

#[test]
fn hello_with_max_requests_recycles_workers_under_load_with_no_failed_request() {
    // No jitter: every worker's limit, and so its reason, is exactly 500.
    let cluster = start_hello(
        2,
        &[
            ("HELLO_MAX_REQUESTS", "500"),
            ("HELLO_MAX_REQUESTS_JITTER", "0"),
        ],
    );
    cluster.wait_serving(2);
    let (report, done) =
        load_until_replaced(&cluster, &["/", "/pid", "/slow?ms=20"], 4, "request-count");
    let reason = "request-count: 500 requests >= 500";
    for (_, r) in &done {
        assert_eq!(r, reason);
    }
    // The reason reaches the master's status too, not only its events: a slot says why its
    // worker was last replaced.
    let status = cluster.status_where("a slot restarted for the request count", |s| {
        s["slots"]
            .as_array()
            .is_some_and(|slots| slots.iter().any(|x| x["last_restart_reason"] == reason))
    });
    assert_eq!(status["master_pid"], cluster.pid());
    assert!(
        report.ok >= 2000,
        "four replacements at 500 requests need 2000 answers: {report}"
    );
    let pids: BTreeSet<u32> = done.iter().map(|(p, _)| *p).collect();
    assert_eq!(pids.len(), done.len(), "each worker asked once");
}

#[test]
fn leaky_is_recycled_by_memory_footprint_with_no_failed_request() {
    let threshold_mb = 64;
    let threshold = threshold_mb.to_string();
    let cluster = Cluster::start(
        Path::new(env!("CARGO_BIN_EXE_leaky_under_test")),
        &[
            ("LEAKY_WORKERS", "2"),
            ("LEAKY_MAX_RSS_MB", &threshold),
            ("LEAKY_LEAK_KB", "1024"),
            ("LEAKY_PRINT_EVENTS", "true"),
            ("RUST_LOG", "warn"),
        ],
    );
    cluster.wait_serving(2);
    let (_, done) = load_until_replaced(&cluster, &["/"], 3, "memory-footprint");
    for (_, reason) in &done {
        // "memory-footprint: rss 70.0 MB > 64 MB": the figure, above the threshold.
        let figure: f64 = reason
            .strip_prefix("memory-footprint: rss ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|f| f.parse().ok())
            .unwrap_or_else(|| panic!("unexpected reason {reason:?}"));
        assert!(figure > threshold_mb as f64, "{reason}");
        assert!(
            reason.ends_with(&format!("> {threshold_mb} MB")),
            "{reason}"
        );
    }
}

/// `leaky --max-rss-mb 0`: every worker is over its threshold as it starts and asks at once.
/// Replaced as fast as it asks, the slot ran 60 workers in 6 s; its replacements back off as a
/// crash loop does instead, each wait announced with why, and the example says it too.
#[test]
fn a_threshold_every_worker_starts_above_backs_its_replacements_off() {
    let cluster = Cluster::start(
        Path::new(env!("CARGO_BIN_EXE_leaky_under_test")),
        &[
            ("LEAKY_WORKERS", "1"),
            ("LEAKY_MAX_RSS_MB", "0"),
            ("LEAKY_PRINT_EVENTS", "true"),
            ("RUST_LOG", "warn"),
        ],
    );
    let (delays, spawns) = cluster.wait_for("three delayed replacements", CEILING, |evs| {
        let delays: Vec<&Value> = evs
            .iter()
            .filter(|e| is(e, "replacement-delayed"))
            .collect();
        let third = delays.get(2)?;
        let spawns = evs
            .iter()
            .take_while(|e| e != third)
            .filter(|e| is(e, "spawned"))
            .count();
        Some((delays.into_iter().cloned().collect::<Vec<_>>(), spawns))
    });
    let waits: Vec<u64> = delays[..3]
        .iter()
        .map(|e| e["wait_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(waits, [100, 200, 400], "doubling, as after failed starts");
    assert_eq!(spawns, 3, "one worker per wait, none in between");
    for e in &delays {
        let why = e["why"].as_str().unwrap();
        assert!(
            why.starts_with("it asked before serving anything ("),
            "{why}"
        );
    }
    let pid = pid_of(&delays[0]);
    cluster.wait_line(&format!(
        "leaky: worker {pid}'s replacement waits 100 ms: it asked before"
    ));
}

/// A worker that serves its requests within its first heartbeat interval, and asks, did serve:
/// its heartbeat sent with the request says so, and it is replaced at once.
#[test]
fn a_worker_that_served_before_its_next_heartbeat_is_replaced_at_once() {
    let cluster = start_hello(
        1,
        &[
            ("HELLO_MAX_REQUESTS", "5"),
            ("HELLO_MAX_REQUESTS_JITTER", "0"),
            // The periodic heartbeats: the first one as the worker starts, none after.
            ("REGIMENT_HEARTBEAT_INTERVAL", "1h"),
        ],
    );
    let old = cluster.wait_serving(1)[&0];
    let mut s = connect(cluster.addr());
    let mut r = std::io::BufReader::new(s.try_clone().unwrap());
    for _ in 0..5 {
        send_get(&mut s, "/");
        assert_eq!(read_response(&mut r).unwrap().status, 200);
    }
    let (at, _) = cluster.wait_event("the successor spawned", 0, |e| {
        is(e, "spawned") && e["replaces"].as_u64() == Some(u64::from(old))
    });
    let events = cluster.events();
    assert!(
        !events[..at].iter().any(|e| is(e, "replacement-delayed")),
        "{events:?}"
    );
}

#[test]
fn a_custom_criterion_replaces_a_worker_after_consecutive_server_errors() {
    let cluster = Cluster::start(
        Path::new(env!("CARGO_BIN_EXE_custom_criterion_under_test")),
        &[
            ("CUSTOM_WORKERS", "1"),
            ("CUSTOM_ERRORS", "20"),
            ("CUSTOM_PRINT_EVENTS", "true"),
            ("RUST_LOG", "warn"),
            ("REGIMENT_ADMIN_BIND", "127.0.0.1:0"),
        ],
    );
    let old = cluster.wait_serving(1)[&0];
    let addr = cluster.addr();
    let mut s = connect(addr);
    let mut r = std::io::BufReader::new(s.try_clone().unwrap());
    // A success in the middle starts the count over: 10 errors, one 200, then 20 errors.
    for path in std::iter::repeat_n("/fail", 10)
        .chain(["/"])
        .chain(std::iter::repeat_n("/fail", 19))
    {
        send_get(&mut s, path);
        let res = read_response(&mut r).unwrap();
        assert_eq!(res.status, if path == "/" { 200 } else { 500 });
    }
    assert!(
        !cluster.events().iter().any(|e| is(e, "replace-requested")),
        "19 consecutive errors are below the limit"
    );
    send_get(&mut s, "/fail");
    assert_eq!(
        read_response(&mut r).unwrap().status,
        500,
        "the request that fires is served"
    );
    let (_, asked) = cluster.wait_event("replace-requested", 0, |e| is(e, "replace-requested"));
    assert_eq!(pid_of(&asked), old);
    assert_eq!(asked["reason"], "server-errors: 20 consecutive 5xx >= 20");
    cluster.wait_event("old worker exit", 0, |e| {
        is(e, "exited") && pid_of(e) == old
    });
    assert_ne!(http_common::pid_via_http(addr), old);
    // Counted (as its successor took the slot, before the old worker drained) under the kind
    // of criterion the worker named, not as a request of the application's own.
    let metrics = admin_metrics(&cluster);
    for expected in [
        r#"regiment_replacements_total{reason="custom"} 1"#,
        r#"regiment_replacements_total{reason="worker"} 0"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == expected),
            "no {expected} in:\n{metrics}"
        );
    }
}

/// The master's `/metrics`, from the admin listener its status names.
fn admin_metrics(cluster: &Cluster) -> String {
    let status = cluster.status_where("the admin address", |s| s["admin"].is_string());
    let admin = status["admin"].as_str().unwrap().parse().unwrap();
    let mut s = connect(admin);
    send_get(&mut s, "/metrics");
    let res = read_response(&mut std::io::BufReader::new(s)).expect("an answer from /metrics");
    assert_eq!(res.status, 200, "{}", res.body);
    res.body
}

/// The example's own instructions, as written: 50 `curl .../fail` (a connection each), then
/// `curl .../pid` answered by a fresh worker.
#[test]
fn the_custom_criterion_example_does_what_its_instructions_say() {
    let cluster = Cluster::start(
        Path::new(env!("CARGO_BIN_EXE_custom_criterion_under_test")),
        &[("CUSTOM_PRINT_EVENTS", "true"), ("RUST_LOG", "warn")],
    );
    let old = cluster.wait_serving(1)[&0];
    let addr = cluster.addr();
    for _ in 0..50 {
        let mut s = connect(addr);
        send_get(&mut s, "/fail");
        let res = read_response(&mut std::io::BufReader::new(s)).unwrap();
        assert_eq!(res.status, 500);
    }
    let (_, asked) = cluster.wait_event("replace-requested", 0, |e| is(e, "replace-requested"));
    assert_eq!(asked["reason"], "server-errors: 50 consecutive 5xx >= 50");
    assert_eq!(pid_of(&asked), old);
    cluster.wait_event("old worker exit", 0, |e| {
        is(e, "exited") && pid_of(e) == old
    });
    assert_ne!(
        http_common::pid_via_http(addr),
        old,
        "answered by a fresh worker"
    );
}

/// Apps that open pools or warm caches are built in workers only.
#[test]
fn the_app_factory_runs_in_each_worker_and_never_in_the_master() {
    let dir = std::env::temp_dir().join(format!("regiment-factory-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir_s = dir.to_str().unwrap().to_owned();
    let cluster = Cluster::start(
        Path::new(env!("CARGO_BIN_EXE_factory_probe")),
        &[
            ("REGIMENT_WORKERS", "2"),
            ("FACTORY_PROBE_DIR", &dir_s),
            ("RUST_LOG", "warn"),
        ],
    );
    let workers: BTreeSet<u32> = cluster.wait_serving(2).into_values().collect();
    let traces: BTreeSet<u32> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(traces, workers, "built once in each worker");
    assert!(!traces.contains(&cluster.pid()), "never in the master");
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
