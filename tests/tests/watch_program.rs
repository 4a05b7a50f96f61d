//! Development reload (`REGIMENT_WATCH=1`, `Builder::watch_program`): `hello` deployed at a
//! program path, under HTTP load, is rebuilt twice, once as a linker writes its output (the old
//! file unlinked, a new one written at the path piece by piece) and once by a rename over the
//! path. Each rebuild rolls the workers once, onto the file just built, and no request fails.
//! Without the option, a rebuild rolls nothing.

mod http_common;

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_common::{assert_no_failure, pid_via_http, runtime, wait_progress};
use serde_json::Value;
use tests::cluster::{CEILING, Cluster};
use tests::deploy::Deploy;
use tests::load::{ClientSpec, LoadConfig, Mode};

const HELLO: &str = env!("CARGO_BIN_EXE_hello_under_test");
/// What the master logs, at info, for each reload the watch asks for.
const RELOAD_LOG: &str = "the program changed (watch_program): rolling the workers";

fn is(e: &Value, event: &str) -> bool {
    e["event"] == event
}

/// `hello` with 2 workers at `deploy`'s path, `REGIMENT_WATCH` set to `watch`, once serving.
fn start(deploy: &Deploy, watch: &str) -> Cluster {
    let c = Cluster::start(
        &deploy.app(),
        &[
            ("HELLO_WORKERS", "2"),
            ("HELLO_PRINT_EVENTS", "true"),
            ("HELLO_MAX_REQUESTS", "100000000"),
            ("RUST_LOG", "warn,regiment=info"),
            ("REGIMENT_WATCH", watch),
        ],
    );
    c.wait_serving(2);
    c
}

/// Rebuilds the program as a linker does: unlinks it and writes a new file at its path, in
/// pieces. Returns the new file's inode.
fn rebuild(app: &Path, from: &str) -> u64 {
    std::fs::remove_file(app).unwrap();
    let mut source = std::fs::File::open(from).unwrap();
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(app)
        .unwrap();
    let mut piece = vec![0; 64 * 1024];
    loop {
        let n = source.read(&mut piece).unwrap();
        if n == 0 {
            break;
        }
        out.write_all(&piece[..n]).unwrap();
    }
    drop(out);
    std::fs::metadata(app).unwrap().ino()
}

/// The inodes of the programs the workers of `generation` were spawned from.
fn inodes_of_generation(events: &[Value], generation: u64) -> Vec<u64> {
    events
        .iter()
        .filter(|e| is(e, "spawned") && e["generation"] == generation)
        .map(|e| e["program"]["inode"].as_u64().expect("an inode"))
        .collect()
}

#[test]
fn a_rebuild_is_picked_up_by_the_watch_option_with_zero_failed_requests() {
    let deploy = Deploy::new("watch-on", HELLO);
    let c = start(&deploy, "1");
    c.wait_log("watching the program");
    let addr = c.addr();

    let config = LoadConfig::new(addr)
        .clients(
            2,
            ClientSpec::new(Mode::KeepAlive, &["/", "/pid"])
                .think_time(Duration::from_millis(20))
                .max_requests(20_000),
        )
        .clients(
            2,
            ClientSpec::new(Mode::NewConnection, &["/", "/slow?ms=200"]).max_requests(20_000),
        )
        .max_duration(Duration::from_secs(55));
    let (stop, completed) = (config.stop(), config.completed());
    let rt = runtime();
    let load = rt.spawn(tests::load::run(config));
    wait_progress(&completed, 50, CEILING);

    let built = rebuild(&deploy.app(), HELLO);
    c.wait_event("rollout 2 done", 0, |e| {
        is(e, "rollout-done") && e["generation"] == 2
    });
    wait_progress(&completed, 100, CEILING);
    deploy.install(HELLO);
    let installed = std::fs::metadata(deploy.app()).unwrap().ino();
    c.wait_event("rollout 3 done", 0, |e| {
        is(e, "rollout-done") && e["generation"] == 3
    });
    // Load flows on the new generation before it stops.
    wait_progress(&completed, 100, CEILING);
    stop.store(true, Ordering::Relaxed);
    let report = rt.block_on(load).expect("the load run");
    eprintln!("load: {report}");
    assert_no_failure(&report);
    assert!(
        report.ok >= 250,
        "too little load to show anything: {report}"
    );

    let events = c.events();
    // One reload per rebuild, however many events each wrote, and none for the spawns.
    let started: Vec<&Value> = events
        .iter()
        .filter(|e| is(e, "rollout-started"))
        .map(|e| &e["generation"])
        .collect();
    assert_eq!(started, [2, 3], "rollouts started");
    assert_eq!(c.stderr().matches(RELOAD_LOG).count(), 2, "{}", c.stderr());
    // Each rollout ran the file just built.
    assert_eq!(inodes_of_generation(&events, 2), [built, built]);
    assert_eq!(inodes_of_generation(&events, 3), [installed, installed]);
    let last = c.wait_serving(2);
    for _ in 0..10 {
        let pid = pid_via_http(addr);
        assert!(last.values().any(|p| *p == pid), "{pid} is not of {last:?}");
    }
}

/// Two masters run the program at one path, one watching it and one not. After a rebuild the
/// watching one's rollout completes: by then the other, had it watched too, would have started
/// its own (a rollout starts as the debounce ends, and completes only after its workers started
/// and served), so it must still show no rollout at all.
#[test]
fn without_the_watch_option_a_rebuild_rolls_nothing() {
    let deploy = Deploy::new("watch-off", HELLO);
    let watching = start(&deploy, "1");
    let still = start(&deploy, "0");
    watching.wait_log("watching the program");

    rebuild(&deploy.app(), HELLO);
    watching.wait_event("the watching master's rollout done", 0, |e| {
        is(e, "rollout-done") && e["generation"] == 2
    });
    let status = still.status_where("a snapshot", |_| true);
    assert_eq!(status["generation"], 1, "{status}");
    assert!(
        !still.events().iter().any(|e| is(e, "rollout-started")),
        "the master without the watch option rolled: {:?}",
        still.events()
    );
    assert!(!still.stderr().contains("watching the program"));
    assert!(!still.stderr().contains(RELOAD_LOG));
}
