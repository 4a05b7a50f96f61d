//! Starting one worker process: a fresh execution of the program with the listeners at fds 3..,
//! the IPC socket after them, the systemd variables, in a process group of its own.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use command_fds::{CommandFdExt, FdMapping};
use tokio::process::{Child, Command};

use crate::env;
use crate::listen::{Listener, SD_LISTEN_FDS_START};
use crate::readiness::Readiness;

/// Everything that varies between spawns.
pub(crate) struct SpawnRequest<'a> {
    pub program: &'a Path,
    pub argv0: String,
    pub args: &'a [OsString],
    pub listeners: &'a [Listener],
    pub listener_names: &'a str,
    pub slot: usize,
    pub generation: u64,
    pub readiness: Readiness,
    pub drain_timeout_ms: u64,
    pub heartbeat_ms: u64,
    pub env: &'a [(OsString, OsString)],
    pub current_dir: Option<PathBuf>,
}

/// A started worker: the child and the master's end of its IPC channel.
pub(crate) struct Spawned {
    pub child: Child,
    pub pid: u32,
    pub ipc: UnixStream,
}

pub(crate) fn spawn(req: SpawnRequest<'_>) -> std::io::Result<Spawned> {
    let (master_end, worker_end) = UnixStream::pair()?;
    let n = req.listeners.len();
    let ipc_fd = SD_LISTEN_FDS_START + n as i32;

    let mut mappings = Vec::with_capacity(n + 1);
    for (i, l) in req.listeners.iter().enumerate() {
        mappings.push(FdMapping {
            parent_fd: l.try_clone_fd()?,
            child_fd: SD_LISTEN_FDS_START + i as i32,
        });
    }
    mappings.push(FdMapping {
        parent_fd: OwnedFd::from(worker_end),
        child_fd: ipc_fd,
    });

    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| !env::INHERITED_AND_RESET.iter().any(|r| OsStr::new(r) == k))
        .collect();
    vars.extend(req.env.iter().cloned());
    let own = [
        (env::WORKER_ID, req.slot.to_string()),
        (env::GENERATION, req.generation.to_string()),
        (env::IPC_FD, ipc_fd.to_string()),
        (env::READINESS, req.readiness.to_string()),
        (env::DRAIN_TIMEOUT_MS, req.drain_timeout_ms.to_string()),
        (env::HEARTBEAT_MS, req.heartbeat_ms.to_string()),
        ("LISTEN_FDS", n.to_string()),
        ("LISTEN_FDNAMES", req.listener_names.to_string()),
    ];
    vars.extend(own.into_iter().map(|(k, v)| (k.into(), v.into())));

    let plan = ExecPlan::new(req.program, &req.argv0, req.args, &vars)?;

    let mut cmd = Command::new(req.program);
    cmd.process_group(0)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(false)
        .fd_mappings(mappings)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    if let Some(dir) = &req.current_dir {
        cmd.current_dir(dir);
    }
    // SAFETY: `ExecPlan::exec` only writes into memory it owns and calls getpid and execve,
    // both async-signal-safe; it allocates nothing. It runs after command-fds' mapping hook.
    unsafe {
        let mut plan = plan;
        cmd.pre_exec(move || plan.exec());
    }
    let child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("spawned child has no pid"))?;
    // `cmd` holds the parent copies of the mapped fds; close them now.
    drop(cmd);
    Ok(Spawned {
        child,
        pid,
        ipc: master_end,
    })
}

/// argv and envp prepared before fork, so that the child only has to write its own pid into
/// `LISTEN_PID` and exec. std's `Command` cannot do this itself: it fixes the environment
/// before fork, when the child's pid is not known yet, and `sd_listen_fds` (and regiment's
/// workers) ignore listeners whose `LISTEN_PID` is not their own.
struct ExecPlan {
    program: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _envs: Vec<CString>,
    env_ptrs: Vec<*const libc::c_char>,
    /// `LISTEN_PID=` followed by room for the digits and the NUL.
    listen_pid: Box<[u8; 40]>,
}

// SAFETY: the raw pointers point into the CStrings owned by the same struct; the plan is only
// used (mutated) in the forked child.
unsafe impl Send for ExecPlan {}
unsafe impl Sync for ExecPlan {}

const LISTEN_PID_PREFIX: &[u8] = b"LISTEN_PID=";

impl ExecPlan {
    fn new(
        program: &Path,
        argv0: &str,
        args: &[OsString],
        vars: &[(OsString, OsString)],
    ) -> std::io::Result<Self> {
        fn cstring(bytes: &[u8], what: &str) -> std::io::Result<CString> {
            CString::new(bytes).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{what} contains a NUL byte"),
                )
            })
        }
        let program = cstring(program.as_os_str().as_bytes(), "program path")?;
        let mut argv = vec![cstring(argv0.as_bytes(), "process name")?];
        for a in args {
            argv.push(cstring(a.as_bytes(), "worker argument")?);
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
        env_ptrs.push(listen_pid.as_ptr().cast());
        env_ptrs.push(std::ptr::null());
        Ok(Self {
            program,
            _argv: argv,
            argv_ptrs,
            _envs: envs,
            env_ptrs,
            listen_pid,
        })
    }

    /// Runs in the child between fork and exec: no allocation, no lock.
    fn exec(&mut self) -> std::io::Result<()> {
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
        // SAFETY: every pointer is into a NUL-terminated buffer owned by `self`, and both arrays
        // end with a null pointer.
        unsafe {
            libc::execve(
                self.program.as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.env_ptrs.as_ptr(),
            )
        };
        Err(std::io::Error::last_os_error())
    }
}
