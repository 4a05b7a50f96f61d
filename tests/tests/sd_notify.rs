//! systemd's notification protocol, spoken to a real datagram socket as systemd listens on one:
//! `READY=1` once every slot serves, `RELOADING=1` with `MONOTONIC_USEC` then `READY=1` around a
//! rolling restart, `STOPPING=1`, a `STATUS=` summary, `WATCHDOG=1` at half of `WATCHDOG_USEC`.
//! Workers do not inherit the socket. An upgrade in place is one reload: `RELOADING=1` as it
//! begins, `EXTEND_TIMEOUT_USEC` before the exec, one `READY=1` once it ended, from the same pid.

use nix::sys::signal::Signal;
use tests::cluster::{CEILING, Cluster, ask};
use tests::notify::{NotifySocket, carries, count, value};

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");

#[test]
fn an_upgrade_in_place_is_one_reload_to_systemd() {
    let dir = tests::scratch::ScratchDir::new("notify-upgrade");
    let deploy = tests::deploy::Deploy::new("notify-upgrade", FIXTURE);
    let path = dir.join("notify.sock");
    let received = NotifySocket::bind(&path);
    let c = Cluster::start(
        &deploy.app(),
        &[
            ("REGIMENT_WORKERS", "2"),
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
        ],
    );
    c.wait_serving(2);
    received.wait_for("READY=1", |m| count(m, "READY=1") == 1);
    let pid = c.pid();

    deploy.install(FIXTURE);
    c.signal(Signal::SIGUSR2);
    received.wait_for("the upgrade's end", |m| {
        m.iter().any(|m| carries(m, "STATUS=upgrade 1 done"))
    });
    let m = received.messages();
    let reloading: Vec<usize> = (0..m.len())
        .filter(|i| carries(&m[*i], "RELOADING=1"))
        .collect();
    assert_eq!(reloading.len(), 1, "one reload: {m:?}");
    let began = &m[reloading[0]];
    assert!(
        value(began, "MONOTONIC_USEC").is_some_and(|v| v.parse::<u64>().is_ok())
            && value(began, "STATUS").is_some_and(|s| s.contains("upgrade 1")),
        "{began:?}"
    );
    let after = &m[reloading[0]..];
    let extended = after
        .iter()
        .position(|m| value(m, "EXTEND_TIMEOUT_USEC").is_some())
        .expect("EXTEND_TIMEOUT_USEC before the exec");
    let ready = after
        .iter()
        .position(|m| carries(m, "READY=1"))
        .expect("READY=1 once the upgrade ended");
    assert!(extended < ready, "{after:?}");
    assert_eq!(
        count(after, "READY=1"),
        1,
        "one READY=1 for the reload: {after:?}"
    );
    assert_eq!(c.pid(), pid);
}

#[test]
fn the_master_tells_systemd_ready_reloading_stopping_status_and_watchdog() {
    let dir = std::env::temp_dir().join(format!("regiment-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let received = NotifySocket::bind(&path);
    let mut c = Cluster::start(
        FIXTURE.as_ref(),
        &[
            ("REGIMENT_WORKERS", "2"),
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    c.wait_serving(2);
    received.wait_for("READY=1", |m| count(m, "READY=1") == 1);
    received.wait_for("the summary", |m| {
        m.iter()
            .any(|m| m == "STATUS=2/2 workers ready, generation 1 (good 1)")
    });
    received.wait_for("two watchdog pings", |m| count(m, "WATCHDOG=1") >= 2);
    assert_eq!(
        ask(c.addr(), "env NOTIFY_SOCKET").unwrap().trim(),
        "",
        "workers do not inherit the socket"
    );

    // A rolling restart: RELOADING=1 with the monotonic time in the same message, then READY=1.
    c.signal(Signal::SIGHUP);
    received.wait_for("RELOADING=1", |m| {
        m.iter().any(|m| {
            carries(m, "RELOADING=1")
                && value(m, "MONOTONIC_USEC").is_some_and(|v| v.parse::<u64>().is_ok())
        })
    });
    received.wait_for("READY=1 after the rollout", |m| {
        let reloading = m.iter().position(|m| carries(m, "RELOADING=1")).unwrap();
        count(&m[reloading..], "READY=1") == 1
    });
    received.wait_for("the summary of the rollout", |m| {
        m.iter().any(|m| {
            m.starts_with("STATUS=2/2 workers ready, generation 2 (good 2); last rollout 2 done")
        })
    });

    c.signal(Signal::SIGTERM);
    received.wait_for("STOPPING=1", |m| count(m, "STOPPING=1") == 1);
    c.wait_exit(CEILING);
    let _ = std::fs::remove_dir_all(&dir);
}
