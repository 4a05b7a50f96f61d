//! systemd's notification protocol, spoken to a real datagram socket as systemd listens on one:
//! `READY=1` once every slot serves, `RELOADING=1` with `MONOTONIC_USEC` then `READY=1` around a
//! rolling restart, `STOPPING=1`, a `STATUS=` summary, `WATCHDOG=1` at half of `WATCHDOG_USEC`.
//! Workers do not inherit the socket.

use nix::sys::signal::Signal;
use tests::cluster::{CEILING, Cluster, ask};
use tests::notify::{NotifySocket, carries, count, value};

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");

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
