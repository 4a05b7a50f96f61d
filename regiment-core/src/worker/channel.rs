//! The IPC channel a master hands each worker it spawns (a Unix socket, its number in
//! `REGIMENT_IPC_FD`): found without side effects, which is all [`crate::worker::is_worker`] and
//! [`crate::role`] need, and taken once, when the worker attaches.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::listen::activation::activation_env;
use crate::worker_vars;

/// The descriptor of the channel this process's master handed it, if it was handed one:
/// `REGIMENT_IPC_FD` names it, `LISTEN_PID` says the variables are addressed to this very
/// process (a child of a worker inherits them, not the fd they name), and it is a Unix socket.
/// Looked up once; nothing is taken or changed.
pub(crate) fn inherited() -> Option<RawFd> {
    static FOUND: OnceLock<Option<RawFd>> = OnceLock::new();
    *FOUND.get_or_init(find)
}

fn find() -> Option<RawFd> {
    let ipc_fd: RawFd = std::env::var(worker_vars::IPC_FD)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    activation_env()?;
    if !is_unix_socket(ipc_fd) {
        tracing::error!(ipc_fd, "REGIMENT_IPC_FD names no Unix socket; not a worker");
        return None;
    }
    Some(ipc_fd)
}

/// Whether `fd` is an open Unix socket. Only what is verifiably our channel is taken: an fd
/// that is something else must not be closed under its owner.
fn is_unix_socket(fd: RawFd) -> bool {
    // SAFETY (both borrows): fstat and getsockname on a number that may not be open at all
    // only fail with EBADF; nothing is closed or kept.
    nix::sys::stat::fstat(unsafe { BorrowedFd::borrow_raw(fd) })
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFSOCK)
        && socket2::SockRef::from(&unsafe { BorrowedFd::borrow_raw(fd) })
            .local_addr()
            .is_ok_and(|a| a.domain() == socket2::Domain::UNIX)
}

/// Takes the channel, close-on-exec (children of this worker must not inherit it): the first
/// call in a worker gets it; later calls, and any call outside a cluster, get `None`.
pub(super) fn take() -> Option<UnixStream> {
    static TAKEN: AtomicBool = AtomicBool::new(false);
    let fd = inherited()?;
    if TAKEN.swap(true, Ordering::SeqCst) {
        return None;
    }
    // Looked up earlier, maybe long before: the application may have closed that number
    // since, or reused it for something else.
    if !is_unix_socket(fd) {
        tracing::error!(
            fd,
            "the IPC channel's descriptor is no Unix socket any more; not attached"
        );
        return None;
    }
    // SAFETY: the fd is an open Unix socket handed to this very process (LISTEN_PID), and
    // TAKEN makes this its one owner.
    let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    if let Err(e) = nix::fcntl::fcntl(
        &stream,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    ) {
        tracing::warn!(error = %e, "could not set close-on-exec on the IPC channel");
    }
    Some(stream)
}
