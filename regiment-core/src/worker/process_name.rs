//! The worker's process name (`/proc/PID/comm`: what `ps -e`, `top` and `pgrep` show).
//!
//! A worker executed through a descriptor (`execveat(fd, "", AT_EMPTY_PATH)`) is named by the
//! kernel after the descriptor's number before Linux 6.14, and after the file the descriptor
//! resolves to since. The kernel sets the name at exec, so only the worker can set it after: it
//! takes the name its master gave in [`crate::worker_vars::PROGRAM_NAME`], the file name of the
//! program's path, which is what an execution by path, and the master's own start, would give.

use std::io;

use crate::worker_vars;

/// The longest process name the kernel keeps (`TASK_COMM_LEN` less its NUL); longer names are
/// cut to this many bytes, as the kernel cuts them at exec.
const COMM_MAX: usize = 15;

/// Names this process as its master said, if it said; a failure is logged, never fatal.
pub(super) fn adopt() {
    let Some(name) = std::env::var_os(worker_vars::PROGRAM_NAME) else {
        return;
    };
    let name = name.as_encoded_bytes();
    let name = &name[..name.len().min(COMM_MAX)];
    if let Err(e) = set(name) {
        tracing::debug!(error = %e, "could not set the worker's process name");
    }
}

/// Names this process after the file name of `path`, as an execution by path would have: the
/// master, after an upgrade executed it through a descriptor.
pub(crate) fn name_after(path: &std::path::Path) {
    let Some(name) = path.file_name() else {
        return;
    };
    let name = name.as_encoded_bytes();
    if let Err(e) = set(&name[..name.len().min(COMM_MAX)]) {
        tracing::debug!(error = %e, "could not set the master's process name");
    }
}

/// Sets the name of the process, that is of its main thread, from whichever thread calls:
/// `/proc/self/comm` names the main thread (a thread may rename its siblings), where
/// `prctl(PR_SET_NAME)` names only the calling thread, so it is the fallback only on the main
/// thread (without `/proc`).
fn set(name: &[u8]) -> io::Result<()> {
    match std::fs::write("/proc/self/comm", name) {
        Ok(()) => Ok(()),
        Err(e) if nix::unistd::gettid() != nix::unistd::getpid() => Err(e),
        Err(_) => {
            let name = std::ffi::CString::new(name)?;
            nix::sys::prctl::set_name(&name).map_err(io::Error::from)
        }
    }
}
