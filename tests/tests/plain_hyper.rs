//! The `plain_hyper` example: a tower service without axum, on regiment-axum's engine, served
//! by real workers on a Unix socket (its master prints no events: the test asks over HTTP).
//! It serves, rolls on SIGHUP to new worker processes, and stops on SIGTERM leaving nothing
//! behind, its socket file included.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tests::cluster::{CEILING, Cluster};

const PLAIN_HYPER: &str = env!("CARGO_BIN_EXE_plain_hyper_under_test");

/// One `GET path` with `Connection: close` over the Unix socket: (status, body).
fn get(sock: &Path, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {raw:?}")))?;
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    Ok((status, body))
}

/// The pid in `hello from a plain tower service, pid N`.
fn pid_in(body: &str) -> u32 {
    body.trim()
        .rsplit(' ')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {body:?}"))
}

/// Asks `/` until `check` holds for an answer, within the ceiling.
fn wait_answer(sock: &Path, what: &str, mut check: impl FnMut(u32) -> bool) -> u32 {
    let deadline = Instant::now() + CEILING;
    loop {
        if let Ok((200, body)) = get(sock, "/")
            && check(pid_in(&body))
        {
            return pid_in(&body);
        }
        assert!(Instant::now() < deadline, "never saw {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_plain_tower_service_serves_rolls_and_stops() {
    let dir = std::env::temp_dir().join(format!("regiment-plain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("plain.sock");
    let bind = format!("unix:{}", sock.display());
    let mut c = Cluster::start(
        Path::new(PLAIN_HYPER),
        &[("REGIMENT_WORKERS", "2"), ("REGIMENT_BIND", &bind)],
    );

    let first = wait_answer(&sock, "a first answer", |_| true);
    assert_ne!(first, c.pid(), "workers answer, not the master");
    assert_eq!(get(&sock, "/nowhere").unwrap().0, 404);
    let mut old = BTreeSet::from([first]);
    for _ in 0..20 {
        old.insert(pid_in(&get(&sock, "/").unwrap().1));
    }

    // A rolling restart: answers come from new worker processes, without a refused request.
    c.signal(Signal::SIGHUP);
    let deadline = Instant::now() + CEILING;
    let mut fresh_in_a_row = 0;
    let mut sent = 0;
    while fresh_in_a_row < 20 {
        sent += 1;
        assert!(sent <= 100_000, "the old workers kept answering");
        let (status, body) = get(&sock, "/").expect("no request is refused during the rollout");
        assert_eq!(status, 200, "{body}");
        if old.contains(&pid_in(&body)) {
            fresh_in_a_row = 0;
        } else {
            fresh_in_a_row += 1;
        }
        assert!(Instant::now() < deadline, "the old workers kept answering");
    }
    for pid in &old {
        tests::cluster::wait_gone(*pid, CEILING);
    }

    c.signal(Signal::SIGTERM);
    let status = c.wait_exit(CEILING);
    assert!(status.success(), "{status:?}\n{}", c.stderr());
    c.wait_all_gone(CEILING);
    assert!(
        !sock.exists(),
        "the master removes the socket file it created"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `plain_hyper --help` prints its help and starts nothing; a flag it does not take is refused
/// as a command line error (status 2), as `hello` does both.
#[test]
fn plain_hyper_help_prints_its_help_and_a_wrong_flag_is_refused() {
    let mut c = Cluster::start_command(
        {
            let mut cmd = std::process::Command::new(PLAIN_HYPER);
            cmd.arg("--help");
            cmd
        },
        &[],
    );
    let status = c.wait_exit(CEILING);
    assert!(status.success(), "{status:?}\n{}", c.stderr());
    c.wait_line("A plain tower service");
    c.wait_line("Usage: ");
    c.wait_line("REGIMENT_BIND");
    assert!(c.events().is_empty() && c.spawned_pids().is_empty());

    let mut c = Cluster::start_command(
        {
            let mut cmd = std::process::Command::new(PLAIN_HYPER);
            cmd.arg("--no-such-flag");
            cmd
        },
        &[],
    );
    assert_eq!(c.wait_exit(CEILING).code(), Some(2), "{}", c.stderr());
    assert!(c.stderr().contains("--no-such-flag"), "{}", c.stderr());
}
