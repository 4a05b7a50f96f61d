//! Every rollout ends, end to end, as a deploy script and systemd see it. Under steady
//! recycling (`hello` replaces each worker after 300 requests, under keep-alive load),
//! `regiment reload --wait` exits 0 once each slot ran the new build to ready and settled, and
//! the record counts the rollout's own replacements only. A rollout that cannot finish in its
//! `rollout_timeout` ends aborted: `reload --wait` exits 1 naming the option, the good
//! generation serves on, and systemd hears `READY=1` with a `STATUS=` that says so.

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use tests::cluster::{CEILING, Cluster, pid_of};
use tests::deploy::Deploy;
use tests::load::{ClientSpec, LoadConfig, Mode};
use tests::notify::{NotifySocket, carries, count};
use tests::scratch::ScratchDir;

const HELLO: &str = env!("CARGO_BIN_EXE_hello_under_test");
const NEVER_READY: &str = env!("CARGO_BIN_EXE_fixture_never_ready");
const REGIMENT: &str = env!("CARGO_BIN_EXE_regiment_under_test");

/// `regiment --socket SOCKET reload --wait`; a rollout that never ends fails the test at the
/// ceiling instead of hanging it.
fn reload_wait(socket: &Path) -> Output {
    tests::command::regiment_bounded(REGIMENT, socket, &["reload", "--wait"])
        .unwrap_or_else(|| panic!("reload --wait had not returned after {CEILING:?}"))
}

fn is(e: &Value, event: &str) -> bool {
    e["event"] == event
}

#[test]
fn reload_wait_ends_under_steady_recycling_and_counts_only_the_rollouts_replacements() {
    let dir = ScratchDir::new("end-recycling");
    let socket = dir.join("control.sock");
    let c = Cluster::start(
        HELLO.as_ref(),
        &[
            ("HELLO_WORKERS", "2"),
            ("HELLO_MAX_REQUESTS", "300"),
            ("HELLO_MAX_REQUESTS_JITTER", "0"),
            ("HELLO_PRINT_EVENTS", "true"),
            ("RUST_LOG", "warn"),
            ("REGIMENT_CONTROL_SOCKET", socket.to_str().unwrap()),
        ],
    );
    c.wait_serving(2);

    // Keep-alive load for as long as the reload runs: workers recycle every 300 requests.
    let config = LoadConfig::new(c.addr())
        .clients(
            8,
            ClientSpec::new(Mode::KeepAlive, &["/"]).max_requests(1_000_000),
        )
        .max_duration(CEILING * 2);
    let stop = config.stop();
    let load = std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(tests::load::run(config))
    });
    let n0 = c.events().len();
    c.wait_for("a worker recycled under the load", CEILING, |evs| {
        evs[n0..]
            .iter()
            .any(|e| is(e, "replace-requested"))
            .then_some(())
    });

    let n1 = c.events().len();
    let out = reload_wait(&socket);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let report = load.join().expect("the load");
    eprintln!("load: {report}");
    assert_eq!(out.status.code(), Some(0), "the rollout ended done");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.starts_with("generation 2 done: 2 workers replaced in ")),
        "{text}"
    );
    // The rollout was under recycling: a worker of the new build asked to be replaced before
    // the rollout was done, and that did not hold it up.
    let evs = c.events();
    let done = n1
        + evs[n1..]
            .iter()
            .position(|e| is(e, "rollout-done") && e["generation"] == 2)
            .expect("rollout 2 done");
    assert!(
        evs[n1..done]
            .iter()
            .any(|e| is(e, "replace-requested") && e["generation"] == 2),
        "a worker of generation 2 recycled during the rollout"
    );
    assert_eq!(report.failures(), 0, "{report}");
}

#[test]
fn a_rollout_past_its_timeout_ends_aborted_and_says_so_to_the_script_and_to_systemd() {
    let dir = ScratchDir::new("end-timeout");
    let socket = dir.join("control.sock");
    let notify = NotifySocket::bind(&dir.join("notify.sock"));
    let deploy = Deploy::new("rollout-timeout", HELLO);
    let c = Cluster::start(
        &deploy.app(),
        &[
            ("HELLO_WORKERS", "2"),
            ("HELLO_PRINT_EVENTS", "true"),
            ("RUST_LOG", "warn"),
            ("REGIMENT_CONTROL_SOCKET", socket.to_str().unwrap()),
            ("NOTIFY_SOCKET", notify.path().to_str().unwrap()),
            // The new build never gets ready; its start timeout (30 s) is not what ends it.
            ("REGIMENT_ROLLOUT_TIMEOUT", "2s"),
            // Shorter than the timeout, as a timeout no rollout could meet is refused.
            ("REGIMENT_ROLLOUT_SETTLE", "1s"),
            // Nor does it end its drain: it is killed sooner.
            ("REGIMENT_DRAIN_TIMEOUT", "3s"),
        ],
    );
    let serving = c.wait_serving(2);
    notify.wait_for("READY=1", |m| count(m, "READY=1") == 1);

    deploy.install(NEVER_READY);
    let n0 = c.events().len();
    let out = reload_wait(&socket);
    assert_eq!(out.status.code(), Some(1), "an aborted rollout");
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(
        why.contains(
            "generation 2 aborted: not done within its rollout_timeout of 2s \
                      (REGIMENT_ROLLOUT_TIMEOUT): 0 of 2 slots ran generation 2 to ready"
        ),
        "{why}"
    );
    // The good generation serves on, in the same workers; the one that never got ready goes.
    let status = c.status_where("the starting worker gone", |s| {
        s["workers"].as_array().is_some_and(|w| w.len() == 2)
    });
    assert_eq!(status["good_generation"], 1);
    let pids: Vec<u64> = status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["pid"].as_u64().unwrap())
        .collect();
    assert!(
        pids.iter()
            .all(|p| serving.values().any(|s| u64::from(*s) == *p)),
        "{pids:?} are not the workers that served, {serving:?}"
    );
    assert!(
        c.events()[n0..]
            .iter()
            .any(|e| is(e, "spawned") && e["generation"] == 2 && pid_of(e) > 0)
    );
    // systemd: RELOADING=1, then READY=1 and a summary that says why.
    notify.wait_for("READY=1 after the rollout", |m| {
        m.iter()
            .position(|m| carries(m, "RELOADING=1"))
            .is_some_and(|reloading| count(&m[reloading..], "READY=1") == 1)
    });
    notify.wait_for("the summary of the aborted rollout", |m| {
        m.iter().any(|m| {
            m.starts_with(
                "STATUS=2/2 workers ready, generation 1 (good 1); last rollout 2 aborted: not \
                 done within its rollout_timeout of 2s",
            )
        })
    });
}
