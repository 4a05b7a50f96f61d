//! systemd's notification protocol, spoken to a real datagram socket as systemd listens on one:
//! `READY=1` once every slot serves, `RELOADING=1` with `MONOTONIC_USEC` then `READY=1` around a
//! rolling restart, `STOPPING=1`, a `STATUS=` summary, `WATCHDOG=1` at half of `WATCHDOG_USEC`.
//! Workers do not inherit the socket.

use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tests::cluster::{CEILING, Cluster, ask};

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");

/// Every datagram received so far.
type Received = Arc<Mutex<Vec<String>>>;

fn listen(path: &std::path::Path) -> Received {
    let socket = UnixDatagram::bind(path).expect("bind the notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let received: Received = Arc::default();
    let r = received.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline && Arc::strong_count(&r) > 1 {
            if let Ok(n) = socket.recv(&mut buf) {
                // One message per datagram, newline-terminated lines.
                r.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).trim_end().to_owned());
            }
        }
    });
    received
}

fn wait_for(received: &Received, what: &str, pred: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + CEILING;
    loop {
        if pred(&received.lock().unwrap()) {
            return;
        }
        if Instant::now() > deadline {
            let seen: Vec<String> = received
                .lock()
                .unwrap()
                .iter()
                .filter(|m| *m != "WATCHDOG=1")
                .cloned()
                .collect();
            panic!("timed out waiting for {what}; received (watchdog pings left out): {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn count(msgs: &[String], needle: &str) -> usize {
    msgs.iter()
        .filter(|m| m.lines().any(|l| l == needle))
        .count()
}

#[test]
fn the_master_tells_systemd_ready_reloading_stopping_status_and_watchdog() {
    let dir = std::env::temp_dir().join(format!("regiment-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let received = listen(&path);
    let mut c = Cluster::start(
        FIXTURE.as_ref(),
        &[
            ("REGIMENT_WORKERS", "2"),
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    c.wait_serving(2);
    wait_for(&received, "READY=1", |m| count(m, "READY=1") == 1);
    wait_for(&received, "the summary", |m| {
        m.iter()
            .any(|m| m == "STATUS=2/2 workers ready, generation 1 (good 1)")
    });
    wait_for(&received, "two watchdog pings", |m| {
        count(m, "WATCHDOG=1") >= 2
    });
    assert_eq!(
        ask(c.addr(), "env NOTIFY_SOCKET").unwrap().trim(),
        "",
        "workers do not inherit the socket"
    );

    // A rolling restart: RELOADING=1 with the monotonic time in the same message, then READY=1.
    c.signal(Signal::SIGHUP);
    wait_for(&received, "RELOADING=1", |m| {
        m.iter().any(|m| {
            m.lines().any(|l| l == "RELOADING=1")
                && m.lines().any(|l| {
                    l.strip_prefix("MONOTONIC_USEC=")
                        .is_some_and(|v| v.parse::<u64>().is_ok())
                })
        })
    });
    wait_for(&received, "READY=1 after the rollout", |m| {
        let reloading = m
            .iter()
            .position(|m| m.lines().any(|l| l == "RELOADING=1"))
            .unwrap();
        count(&m[reloading..], "READY=1") == 1
    });
    wait_for(&received, "the summary of the rollout", |m| {
        m.iter().any(|m| {
            m.starts_with("STATUS=2/2 workers ready, generation 2 (good 2); last rollout 2 done")
        })
    });

    c.signal(Signal::SIGTERM);
    wait_for(&received, "STOPPING=1", |m| count(m, "STOPPING=1") == 1);
    c.wait_exit(CEILING);
    let _ = std::fs::remove_dir_all(&dir);
}
