//! The exec of a fresh program from a forked child: argv and envp prepared before the fork, so
//! that between fork and exec the child allocates nothing, takes no lock, and only writes its
//! own pid into `LISTEN_PID` (when it is given listeners), drops privileges if asked, and execs
//! the program through the descriptor that pins it. Workers are spawned so, and the preflight
//! of an upgrade runs the new program so.

use std::ffi::{CString, OsString};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use super::program::Program;
use crate::identity::Ids;

/// Whether the child announces itself as the process its listeners are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenPid {
    /// `LISTEN_PID=<its own pid>`: it is given listeners (a worker).
    Own,
    /// No `LISTEN_PID`: it is given none.
    Unset,
}

/// argv and envp prepared before fork, so that the child only has to write its own pid into
/// `LISTEN_PID` and exec. std's `Command` cannot do this itself: it fixes the environment
/// before fork, when the child's pid is not known yet, and `sd_listen_fds` (and regiment's
/// workers) ignore listeners whose `LISTEN_PID` is not their own.
pub(crate) struct ExecPlan {
    /// A copy of the program's descriptor, numbered above every fd the child is given, and
    /// close-on-exec; `None` when the program is executed by path (always, without execveat).
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    program_fd: Option<OwnedFd>,
    /// The path executed when there is no descriptor, or execveat does not exist (ENOSYS).
    program_path: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _envs: Vec<CString>,
    env_ptrs: Vec<*const libc::c_char>,
    /// `LISTEN_PID=` followed by room for the digits and the NUL.
    listen_pid: Box<[u8; 40]>,
    /// Whether `listen_pid` is in the environment, to be filled in.
    announce: ListenPid,
    /// The user and group to switch to before exec; `None`: stay the master's.
    pub(crate) drop_to: Option<Ids>,
}

// SAFETY: the raw pointers point into the CStrings owned by the same struct; the plan is only
// used (mutated) in the forked child, and dropped (closing its descriptor) in the parent.
unsafe impl Send for ExecPlan {}
unsafe impl Sync for ExecPlan {}

const LISTEN_PID_PREFIX: &[u8] = b"LISTEN_PID=";

impl ExecPlan {
    /// The exec of `program` (its descriptor copied to `min_fd` or above: above every fd the
    /// child is given) with `argv0`, `args` and exactly the variables `vars`, and `LISTEN_PID`
    /// as `announce` says.
    pub(crate) fn new(
        program: &Program,
        min_fd: RawFd,
        argv0: &str,
        args: &[OsString],
        vars: &[(OsString, OsString)],
        announce: ListenPid,
    ) -> std::io::Result<Self> {
        fn cstring(bytes: &[u8], what: &str) -> std::io::Result<CString> {
            CString::new(bytes).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{what} contains a NUL byte"),
                )
            })
        }
        let program_path = cstring(program.path().as_os_str().as_bytes(), "program path")?;
        let program_fd = match program.fd() {
            Some(fd) => {
                let raw = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(min_fd))?;
                // SAFETY: fcntl just created `raw`; nothing else owns it.
                Some(unsafe { OwnedFd::from_raw_fd(raw) })
            }
            None => None,
        };
        let mut argv = vec![cstring(argv0.as_bytes(), "process name")?];
        for a in args {
            argv.push(cstring(a.as_bytes(), "argument")?);
        }
        let mut envs = Vec::with_capacity(vars.len());
        for (k, v) in vars {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            envs.push(cstring(&kv, "environment variable")?);
        }
        let mut argv_ptrs: Vec<_> = argv.iter().map(|c| c.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut listen_pid = Box::new([0u8; 40]);
        listen_pid[..LISTEN_PID_PREFIX.len()].copy_from_slice(LISTEN_PID_PREFIX);
        let mut env_ptrs: Vec<_> = envs.iter().map(|c| c.as_ptr()).collect();
        if announce == ListenPid::Own {
            env_ptrs.push(listen_pid.as_ptr().cast());
        }
        env_ptrs.push(std::ptr::null());
        Ok(Self {
            program_fd,
            program_path,
            _argv: argv,
            argv_ptrs,
            _envs: envs,
            env_ptrs,
            listen_pid,
            announce,
            drop_to: None,
        })
    }

    /// Runs in the child between fork and exec: no allocation, no lock.
    pub(crate) fn exec(&mut self) -> std::io::Result<()> {
        if let Some(ids) = self.drop_to {
            drop_privileges(ids)?;
        }
        if self.announce == ListenPid::Own {
            self.write_listen_pid();
        }
        self.exec_program()
    }

    /// Writes this process's pid after `LISTEN_PID=`, without allocating.
    fn write_listen_pid(&mut self) {
        // SAFETY: getpid is async-signal-safe.
        let mut pid = unsafe { libc::getpid() } as u32;
        let mut digits = [0u8; 10];
        let mut len = 0;
        loop {
            digits[len] = b'0' + (pid % 10) as u8;
            len += 1;
            pid /= 10;
            if pid == 0 {
                break;
            }
        }
        let start = LISTEN_PID_PREFIX.len();
        for i in 0..len {
            self.listen_pid[start + i] = digits[len - 1 - i];
        }
        self.listen_pid[start + len] = 0;
    }

    /// Executes the program, through its descriptor when there is one; returns only on failure.
    fn exec_program(&self) -> std::io::Result<()> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(fd) = &self.program_fd {
            use std::os::fd::AsRawFd;
            // SAFETY: `fd` is open (owned by `self`); the empty path with AT_EMPTY_PATH executes
            // the file it refers to; every pointer is into a NUL-terminated buffer owned by
            // `self`, and both arrays end with a null pointer. Returns only on failure.
            unsafe {
                libc::syscall(
                    libc::SYS_execveat,
                    fd.as_raw_fd(),
                    c"".as_ptr(),
                    self.argv_ptrs.as_ptr(),
                    self.env_ptrs.as_ptr(),
                    libc::AT_EMPTY_PATH,
                )
            };
            // Reading errno allocates nothing (an OS error is stored inline).
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::ENOSYS) {
                return Err(err);
            }
            // A kernel without execveat (or a filter that hides it): the path is all there is.
        }
        // SAFETY: every pointer is into a NUL-terminated buffer owned by `self`, and both arrays
        // end with a null pointer.
        unsafe {
            libc::execve(
                self.program_path.as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.env_ptrs.as_ptr(),
            )
        };
        Err(std::io::Error::last_os_error())
    }
}

/// Switches the child to `ids` for good, in the only order that works: the supplementary
/// groups and the group while still root, the user last. Any failure is the spawn's error: the
/// child returns before exec, never running the program as the master's user. Runs between fork
/// and exec: libc calls only, no allocation.
fn drop_privileges(ids: Ids) -> std::io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    let groups = [ids.gid];
    // SAFETY: setgroups reads one gid from a live array; setgid and setuid take plain ids.
    // All three are async-signal-safe system calls (libc's wrappers apply them to every thread;
    // the child has only this one).
    unsafe {
        check(libc::setgroups(groups.len() as _, groups.as_ptr()))?;
        check(libc::setgid(ids.gid))?;
        check(libc::setuid(ids.uid))?;
    }
    // As root, setuid sets the real, effective and saved ids at once; check that it did, so
    // that a worker can never regain what the master had.
    // SAFETY: the get*id calls cannot fail and are async-signal-safe.
    let (uid, euid, gid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    if (uid, euid, gid, egid) != (ids.uid, ids.uid, ids.gid, ids.gid) {
        return Err(std::io::Error::from_raw_os_error(libc::EPERM));
    }
    Ok(())
}
