//! A worker attaches to its master when something needs the channel (a worker call,
//! `listen::take_inherited`, regiment-axum's server), never as a side effect of asking what the
//! process is. Its own test binary (its own process): it makes itself a worker by setting the
//! variables a master sets its workers, with its own end of a socketpair as the channel.

// Setting the environment is unsafe in Rust 2024; see the SAFETY comment.
#![allow(unsafe_code)]
// regiment-core/clippy.toml keeps the policy from files and threads; this test reads /proc.
#![allow(clippy::disallowed_methods)]

use std::io::{ErrorKind, Read};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use regiment_core::{Role, plumbing, worker};

/// Generous: only a machine that stalls for this long fails the test.
const CEILING: Duration = Duration::from_secs(60);

/// How many threads this process runs. (Not their names: a thread names itself once it runs,
/// after the call that started it returned.)
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

/// Reads one frame's body from the master's end of the channel.
fn read_frame(master: &mut UnixStream) -> String {
    let mut len = [0; 4];
    master.read_exact(&mut len).expect("a frame's length");
    let mut body = vec![0; u32::from_be_bytes(len) as usize];
    master.read_exact(&mut body).expect("a frame's body");
    String::from_utf8(body).expect("JSON")
}

#[test]
fn asking_the_role_attaches_nothing_and_attaching_starts_the_channel() {
    let (mut master, worker_end) = UnixStream::pair().expect("a socketpair");
    // The worker's end is the worker's to take (as the fd a master hands it).
    let fd = worker_end.into_raw_fd();
    // SAFETY: this binary's only test, run before any thread of ours or of the crate's exists:
    // nothing reads the environment while it is written.
    unsafe {
        std::env::set_var("REGIMENT_IPC_FD", fd.to_string());
        std::env::set_var("LISTEN_PID", std::process::id().to_string());
        std::env::set_var("LISTEN_FDS", "0");
        // Ready as soon as it attaches: what the master hears tells when it attached.
        std::env::set_var("REGIMENT_READINESS", "started");
        // The test is long over before a worker whose master is gone exits on its own.
        std::env::set_var("REGIMENT_DRAIN_TIMEOUT_MS", "600000");
    }

    // Asked what it is, it is a worker, and that is all: no thread, nothing said.
    let before = threads();
    assert!(worker::is_worker());
    assert_eq!(regiment_core::role(), Role::Worker);
    assert_eq!(threads(), before, "asking the role started a thread");
    master.set_nonblocking(true).unwrap();
    let mut byte = [0];
    assert_eq!(
        master.read(&mut byte).map_err(|e| e.kind()),
        Err(ErrorKind::WouldBlock),
        "the master heard from a worker that only asked what it is"
    );

    // Attached: once, however many times asked.
    assert!(plumbing::attach_worker());
    assert_eq!(threads(), before + 1, "the IPC thread");
    assert!(plumbing::attach_worker());
    assert_eq!(threads(), before + 1, "one IPC thread");
    assert_eq!(worker::slot(), Some(0));
    master.set_nonblocking(false).unwrap();
    master.set_read_timeout(Some(CEILING)).unwrap();
    assert_eq!(read_frame(&mut master), r#"{"v":1,"type":"ready"}"#);

    // The thread watches the channel from the start: the master's death drains the worker.
    assert!(!worker::is_draining());
    drop(master);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { tokio::time::timeout(CEILING, worker::drained()).await })
        .expect("drained once the master is gone");
    assert!(worker::is_draining());
    assert!(worker::drain_deadline().is_some());
}
