//! Worker programs of the tests that speak on their IPC channel raw, without regiment's worker
//! side (`ipc_flood_under_test`, `last_words_under_test`): what a worker of another build, or a
//! hostile one, could write. They make no regiment worker call: any would attach regiment's
//! worker side, which would then share the channel with what they write themselves.

use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;

use regiment_core::worker_vars;

/// Whether this process is a worker its master spawned: it was handed a channel, and the
/// variables are addressed to this very process (`LISTEN_PID`), not inherited from one. Read
/// from the environment only.
pub fn spawned_by_a_master() -> bool {
    std::env::var_os(worker_vars::IPC_FD).is_some()
        && std::env::var("LISTEN_PID").ok() == Some(std::process::id().to_string())
}

/// The channel the master handed this worker, blocking: the worker writes as fast as the
/// master reads, no faster. Only in a process for which [`spawned_by_a_master`] holds.
pub fn take_channel() -> UnixStream {
    let fd: RawFd = std::env::var(worker_vars::IPC_FD)
        .expect("a worker has an IPC fd")
        .parse()
        .expect("an fd number");
    // SAFETY: the master gave this process the fd; regiment's worker side, which would own it
    // otherwise, is never started in these programs, and each takes it once.
    #[allow(unsafe_code)]
    let channel = unsafe { UnixStream::from_raw_fd(fd) };
    channel.set_nonblocking(false).expect("a blocking channel");
    channel
}
