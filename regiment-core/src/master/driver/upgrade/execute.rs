//! The exec of the new master: this very process (same pid) executes the pinned program.
//!
//! The signals the master handles are blocked across it: their handlers go with the old image,
//! and until the new master installs its own, a SIGTERM or a SIGHUP would take its default
//! action and end the service. Blocked, they wait (the mask survives the exec), and the new
//! master unblocks them once its handlers are in place ([`unblock_signals`]): none is lost.

use std::ffi::{CString, c_char};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

use super::super::program::Program;

/// The signals a master acts on: every one it may be told to restart, upgrade, stop or scale by.
fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
    ] {
        set.add(s);
    }
    set
}

/// What is executed: the file a descriptor refers to, or a path (a script).
enum Target<'a> {
    Fd(BorrowedFd<'a>),
    Path(CString),
}

/// Executes `program` with `argv` and `env`; returns only if the exec failed, with why, the
/// signals unblocked again.
pub(crate) fn execute(program: &Program, argv: &[CString], env: &[CString]) -> std::io::Error {
    let target = match program.fd() {
        Some(fd) => Target::Fd(fd),
        None => match CString::new(program.path().as_os_str().as_bytes()) {
            Ok(path) => Target::Path(path),
            Err(e) => return std::io::Error::other(e),
        },
    };
    exec(&target, argv, env)
}

/// [`execute`] of the file `fd` refers to.
pub(crate) fn execute_fd(fd: BorrowedFd<'_>, argv: &[CString], env: &[CString]) -> std::io::Error {
    exec(&Target::Fd(fd), argv, env)
}

fn exec(target: &Target<'_>, argv: &[CString], env: &[CString]) -> std::io::Error {
    let handled = handled_signals();
    if let Err(e) = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&handled), None) {
        return e.into();
    }
    let argv_ptrs = pointers(argv);
    let env_ptrs = pointers(env);
    match target {
        // SAFETY: `fd` is open (borrowed); the empty path with AT_EMPTY_PATH executes the file
        // it refers to; both arrays point into NUL-terminated strings that outlive the call,
        // and end with a null pointer. Returns only on failure.
        Target::Fd(fd) => unsafe {
            libc::syscall(
                libc::SYS_execveat,
                fd.as_raw_fd(),
                c"".as_ptr(),
                argv_ptrs.as_ptr(),
                env_ptrs.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
        },
        // SAFETY: a NUL-terminated path; both arrays as above. Returns only on failure.
        Target::Path(path) => unsafe {
            libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr());
        },
    }
    let err = std::io::Error::last_os_error();
    unblock_signals();
    err
}

/// Unblocks the signals [`execute`] blocked: the new master's handlers are installed (or the
/// exec failed). Those that came meanwhile are delivered now.
pub(crate) fn unblock_signals() {
    if let Err(e) = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&handled_signals()), None) {
        tracing::error!(error = %e, "cannot unblock the master's signals");
    }
}

/// A null-terminated array of pointers into `strings`.
fn pointers(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}
