//! The master upgrades itself in place (issue 23), end to end: `hello` deployed at a path, a
//! new build renamed over it, and the master asked to upgrade.
//!
//! - Five `regiment upgrade --wait` back to back under keep-alive and new-connection load: each
//!   exits 0, the upgrade done, no
//!   request fails, the master keeps its pid, `/proc/PID/exe` is the file deployed last, and
//!   it holds as many descriptors as before the first.
//! - Workers that stream heartbeats without a pause through three upgrades: no frame is torn
//!   or lost as the channels are handed over (the master would read garbage), and none of them
//!   is taken for unresponsive for the time the exec took.
//! - A new program that is no regiment master fails its preflight: the upgrade is refused with
//!   the program's own output, and nothing changes (same image, same workers).
//! - A new program that passes its preflight but cannot take over once executed: the previous
//!   program is executed again with the same state, the upgrade is reported rolled back, and
//!   the service never stopped answering.

mod http_common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use http_common::{assert_no_failure, load_during};
use nix::sys::signal::Signal;
use serde_json::Value;
use tests::cluster::Cluster;
use tests::command::regiment_bounded;
use tests::deploy::Deploy;
use tests::descriptors::{listing, settled_fds};
use tests::load::{ClientSpec, LoadConfig, Mode};
use tests::scratch::ScratchDir;

const HELLO: &str = env!("CARGO_BIN_EXE_hello_under_test");
const REGIMENT: &str = env!("CARGO_BIN_EXE_regiment_under_test");
const REFUSED_AFTER_EXEC: &str = env!("CARGO_BIN_EXE_hello_refused_after_exec_under_test");
const NO_MASTER: &str = env!("CARGO_BIN_EXE_exit_at_once_under_test");
const HEARTBEAT_STREAM: &str = env!("CARGO_BIN_EXE_heartbeat_stream_under_test");

const WORKERS: usize = 2;

/// `hello` run from `deploy`'s path, with a control socket in `dir`.
fn start(deploy: &Deploy, dir: &ScratchDir) -> Cluster {
    let control = dir.join("control.sock");
    let workers = WORKERS.to_string();
    Cluster::start(
        &deploy.app(),
        &[
            ("HELLO_WORKERS", &workers),
            ("HELLO_PRINT_EVENTS", "true"),
            ("RUST_LOG", "info"),
            ("REGIMENT_CONTROL_SOCKET", control.to_str().unwrap()),
        ],
    )
}

/// Upgrade `number` by `regiment upgrade --wait` on `c`'s control socket in `dir`: the
/// command's exit code and what it said, and the upgrade's record from the status.
fn upgrade(c: &Cluster, dir: &ScratchDir, number: u64) -> (i32, String, Value) {
    let out = regiment_bounded(REGIMENT, &dir.join("control.sock"), &["upgrade", "--wait"])
        .expect("upgrade --wait ends");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let record = ended(c, number);
    (out.status.code().unwrap_or(-1), said, record)
}

/// Upgrade `number`'s record once it ended, from the status.
fn ended(c: &Cluster, number: u64) -> Value {
    let status = c.status_where(&format!("upgrade {number} ended"), |s| {
        s["last_upgrade"]["number"] == number && s["last_upgrade"]["outcome"] != "in-progress"
    });
    status["last_upgrade"].clone()
}

/// The device and inode of the image process `pid` runs, and of the file at `path`.
fn image(pid: u32) -> (u64, u64) {
    let meta = std::fs::metadata(format!("/proc/{pid}/exe")).expect("the master's image");
    (meta.dev(), meta.ino())
}

fn file(path: &Path) -> (u64, u64) {
    let meta = std::fs::metadata(path).unwrap();
    (meta.dev(), meta.ino())
}

/// Asserts that the workers serving now are `before`'s, by slot; the status.
fn assert_same_workers(c: &Cluster, before: &std::collections::BTreeMap<u64, u32>) -> Value {
    let status = c.status_where("the workers", |s| s["workers"].as_array().is_some());
    let now: Vec<u64> = status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["pid"].as_u64().unwrap())
        .collect();
    let then: Vec<u64> = before.values().map(|p| u64::from(*p)).collect();
    assert_eq!(now, then, "the workers were kept, none replaced");
    status
}

/// Load of both kinds on `c`: keep-alive clients that pause as real ones do, and clients that
/// open a connection per request; bounded in count and time.
fn load(c: &Cluster) -> LoadConfig {
    LoadConfig::new(c.addr())
        .clients(
            3,
            ClientSpec::new(Mode::KeepAlive, &["/", "/slow?ms=100", "/pid"])
                .think_time(Duration::from_millis(20))
                .max_requests(20_000),
        )
        .clients(
            3,
            ClientSpec::new(Mode::NewConnection, &["/", "/slow?ms=100", "/pid"])
                .max_requests(20_000),
        )
        .max_duration(Duration::from_secs(100))
        .request_timeout(Duration::from_secs(20))
}

#[test]
fn five_upgrades_under_load_keep_the_pid_lose_no_request_and_run_the_new_file() {
    let dir = ScratchDir::new("upgrade-five");
    let deploy = Deploy::new("upgrade-five", HELLO);
    let c = start(&deploy, &dir);
    c.wait_serving(WORKERS);
    let pid = c.pid();
    let before = settled_fds(pid);
    let report = load_during(load(&c), |progress| {
        for number in 1..=5u64 {
            deploy.install(HELLO);
            let (code, said, record) = upgrade(&c, &dir, number);
            assert_eq!(code, 0, "upgrade {number}: {said}");
            assert_eq!(record["outcome"], "done", "upgrade {number}: {record}");
            assert_eq!(c.pid(), pid);
            assert_eq!(
                image(pid),
                file(&deploy.app()),
                "upgrade {number}: the master runs the file deployed"
            );
            // The new master's workers serve before the next upgrade.
            progress(100);
        }
    });
    assert_no_failure(&report);
    // Every upgrade rolled the workers to its build: six generations, the last one serving.
    let status = c.status_where("generation 6 good", |s| s["good_generation"] == 6);
    assert_eq!(status["master_pid"], pid);
    assert_eq!(status["last_upgrade"]["number"], 5);
    let after = settled_fds(pid);
    assert_eq!(
        after.len(),
        before.len(),
        "after 5 upgrades:\n{}before:\n{}",
        listing(&after),
        listing(&before)
    );
}

#[test]
fn a_new_program_that_fails_its_preflight_is_refused_and_nothing_changes() {
    let dir = ScratchDir::new("upgrade-preflight");
    let deploy = Deploy::new("upgrade-preflight", HELLO);
    let c = start(&deploy, &dir);
    let workers = c.wait_serving(WORKERS);
    let pid = c.pid();
    let running = image(pid);
    deploy.install(NO_MASTER);
    let (code, said, record) = upgrade(&c, &dir, 1);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("refused") && said.contains("preflight"),
        "{said}"
    );
    assert_eq!(record["outcome"], "refused", "{record}");
    let why = record["why"].as_str().unwrap();
    assert!(
        why.contains("preflight") && why.contains("exit_at_once_under_test: nothing to do"),
        "the refusal names the preflight and shows the program's output: {why}"
    );
    assert_eq!(image(pid), running, "the master was not executed anew");
    let status = assert_same_workers(&c, &workers);
    assert_eq!(status["generation"], 1);
}

#[test]
fn a_new_program_that_cannot_take_over_goes_back_and_the_service_never_stops() {
    let dir = ScratchDir::new("upgrade-back");
    let deploy = Deploy::new("upgrade-back", HELLO);
    let c = start(&deploy, &dir);
    let workers = c.wait_serving(WORKERS);
    let pid = c.pid();
    let running = image(pid);
    let report = load_during(load(&c), |progress| {
        deploy.install(REFUSED_AFTER_EXEC);
        let (code, said, record) = upgrade(&c, &dir, 1);
        assert_eq!(code, 1, "{said}");
        assert!(said.contains("rolled back"), "{said}");
        assert_eq!(record["outcome"], "rolled-back", "{record}");
        let why = record["why"].as_str().unwrap();
        assert!(
            why.contains("options are refused") && why.contains("workers"),
            "the reason is the new master's: {why}"
        );
        progress(100);
    });
    assert_no_failure(&report);
    assert_eq!(c.pid(), pid);
    assert_eq!(image(pid), running, "the previous program runs again");
    assert_same_workers(&c, &workers);
    // And the master still upgrades: the next build goes through.
    deploy.install(HELLO);
    let (code, said, record) = upgrade(&c, &dir, 2);
    assert_eq!(code, 0, "{said}");
    assert_eq!(record["outcome"], "done", "{record}");
}

#[test]
fn channels_handed_over_mid_stream_lose_and_tear_no_frame() {
    let dir = ScratchDir::new("upgrade-stream");
    let deploy = Deploy::new("upgrade-stream", HEARTBEAT_STREAM);
    let control = dir.join("control.sock");
    let c = Cluster::start(
        &deploy.app(),
        &[
            ("REGIMENT_WORKERS", "2"),
            ("REGIMENT_CONTROL_SOCKET", control.to_str().unwrap()),
            // Silent workers are replaced soon: a handover must not make them look silent.
            ("REGIMENT_HEARTBEAT_TIMEOUT", "3s"),
        ],
    );
    c.wait_serving(2);
    for number in 1..=3u64 {
        deploy.install(HEARTBEAT_STREAM);
        // By signal here: SIGUSR2 is the upgrade signal.
        c.signal(Signal::SIGUSR2);
        let record = ended(&c, number);
        assert_eq!(record["outcome"], "done", "upgrade {number}: {record}");
    }
    let events = c.events();
    let garbage: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "invalid-message" || e["event"] == "unresponsive")
        .collect();
    assert!(garbage.is_empty(), "{garbage:?}");
}
