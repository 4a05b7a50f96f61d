//! Starting one worker process: a fresh execution of the program with the listeners at fds 3..,
//! the IPC socket after them, the systemd variables, in a process group of its own, as the
//! configured user.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use command_fds::{CommandFdExt, FdMapping};
use tokio::process::{Child, Command};

use super::exec_plan::{ExecPlan, ListenPid};
use super::program::Program;
use crate::WorkerEnv;
use crate::identity::WorkerIdentity;
use crate::listen::{Listener, SD_LISTEN_FDS_START};
use crate::plumbing::PassedOnVariable;
use crate::readiness::Readiness;
use crate::worker_vars;

/// Everything that varies between spawns.
pub(crate) struct SpawnRequest<'a> {
    pub program: &'a Program,
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
    pub worker_env: WorkerEnv,
    /// Who the worker runs as; `None`: as the master.
    pub identity: Option<&'a WorkerIdentity>,
    /// Workers wanted now, whose share of the CPUs sets the worker's runtime threads.
    pub workers_wanted: usize,
}

/// What tokio reads for the threads of a multi-threaded runtime (`#[tokio::main]`).
const TOKIO_WORKER_THREADS: &str = "TOKIO_WORKER_THREADS";

/// The tokio runtime threads a worker gets unless `TOKIO_WORKER_THREADS` is set: its share of
/// the CPUs the master may run on, at least one.
///
/// A multi-threaded runtime starts one thread per CPU. Workers on one machine are N such
/// runtimes, N times more threads than cores: they cannot steal work from each other as the
/// threads of one process do, so a request waits behind another process's thread that the
/// scheduler ran instead (the p99 of BENCHMARKS.md's runtime table). A share each keeps the
/// threads of all workers to the cores there are.
pub(crate) fn runtime_threads(workers_wanted: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus / workers_wanted.max(1)).max(1)
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

    // A map, so that a later value replaces an earlier one: with two entries for one name,
    // getenv would return the first (the master's, not the configured one).
    let mut vars: BTreeMap<OsString, OsString> = BTreeMap::new();
    if req.worker_env == WorkerEnv::Inherit {
        vars.extend(
            std::env::vars_os()
                .filter(|(k, _)| !worker_vars::reset_for_workers().any(|r| OsStr::new(r) == k)),
        );
    }
    // What workers read of regiment's own, whatever `worker_env` says (only-configured would
    // leave them out); no other REGIMENT_* of the master's.
    vars.extend(
        PassedOnVariable::ALL
            .iter()
            .filter_map(|v| Some((v.name().into(), std::env::var_os(v.name())?))),
    );
    if let Some(identity) = req.identity {
        identity.set_login_vars(&mut vars);
    }
    vars.extend(req.env.iter().cloned());
    // A value the user gave (inherited or configured) is theirs.
    vars.entry(TOKIO_WORKER_THREADS.into())
        .or_insert_with(|| runtime_threads(req.workers_wanted).to_string().into());
    let own = [
        (worker_vars::WORKER_ID, req.slot.to_string()),
        (worker_vars::GENERATION, req.generation.to_string()),
        (worker_vars::IPC_FD, ipc_fd.to_string()),
        (worker_vars::READINESS, req.readiness.to_string()),
        (
            worker_vars::DRAIN_TIMEOUT_MS,
            req.drain_timeout_ms.to_string(),
        ),
        (worker_vars::HEARTBEAT_MS, req.heartbeat_ms.to_string()),
        ("LISTEN_FDS", n.to_string()),
        ("LISTEN_FDNAMES", req.listener_names.to_string()),
    ];
    vars.extend(own.into_iter().map(|(k, v)| (k.into(), v.into())));
    // Executed by path, the kernel names the process after the path; through a descriptor, the
    // worker names itself (see `worker_vars::PROGRAM_NAME`).
    if req.program.fd().is_some()
        && let Some(name) = req.program.path().file_name()
    {
        vars.insert(worker_vars::PROGRAM_NAME.into(), name.to_owned());
    }
    let vars: Vec<(OsString, OsString)> = vars.into_iter().collect();

    // Above every fd the child is given: command-fds' mapping hook dup2s onto 3..=ipc_fd (and
    // closes whatever was there) before our hook runs; fds above them it leaves alone.
    let mut plan = ExecPlan::new(
        req.program,
        ipc_fd + 1,
        &req.argv0,
        req.args,
        &vars,
        ListenPid::Own,
    )?;
    plan.drop_to = req.identity.map(|i| i.ids);

    // The program std is given is never executed by std: `plan.exec` execs first, and on
    // failure the spawn fails with its error. It names the process for std's own messages.
    let mut cmd = Command::new(req.program.path());
    cmd.process_group(0)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(false)
        .fd_mappings(mappings)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    if let Some(dir) = &req.current_dir {
        cmd.current_dir(dir);
    }
    // SAFETY: `ExecPlan::exec` only writes into memory it owns and calls getpid, setgroups,
    // setgid, setuid, the get*id calls, execveat and execve, all async-signal-safe; it
    // allocates nothing. It runs after command-fds' mapping hook, which does not touch the
    // program's descriptor (above every mapped child fd).
    unsafe {
        let mut plan = plan;
        cmd.pre_exec(move || plan.exec());
    }
    let child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("spawned child has no pid"))?;
    // `cmd` holds the parent copies of the mapped fds and of the program's descriptor; close
    // them now.
    drop(cmd);
    Ok(Spawned {
        child,
        pid,
        ipc: master_end,
    })
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::path::Path;

    use super::*;
    use crate::identity::Ids;
    use crate::listen::{self, ListenAddr};
    use crate::test_support::scratch_dir;

    /// Copies `from` to `to` by a rename over it, as a deploy does.
    fn deploy(from: &str, to: &Path) {
        let tmp = to.with_extension("new");
        std::fs::copy(from, &tmp).unwrap();
        std::fs::rename(&tmp, to).unwrap();
    }

    /// A worker of slot 0, generation 1, ready once started.
    fn request<'a>(
        program: &'a Program,
        listeners: &'a [Listener],
        identity: Option<&'a WorkerIdentity>,
    ) -> SpawnRequest<'a> {
        SpawnRequest {
            program,
            argv0: String::from("regiment-test worker"),
            args: &[],
            listeners,
            listener_names: "",
            slot: 0,
            generation: 1,
            readiness: Readiness::Started,
            drain_timeout_ms: 1000,
            heartbeat_ms: 1000,
            env: &[],
            current_dir: None,
            worker_env: WorkerEnv::Inherit,
            identity,
            workers_wanted: 1,
        }
    }

    /// Spawns `program` with `listeners` and returns its exit code.
    async fn run(program: &Program, listeners: &[Listener]) -> i32 {
        let mut attempts = 0;
        let spawned = loop {
            let spawned = spawn(request(program, listeners, None));
            match spawned {
                // A file just written is busy while a test running in parallel forks with its
                // write descriptor (close-on-exec, but not closed before that child's exec).
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 50 => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                other => break other.unwrap(),
            }
        };
        let status = { spawned.child }.wait().await.unwrap();
        status.code().expect("exited, not killed")
    }

    #[tokio::test]
    async fn a_spawn_executes_the_file_opened_not_what_the_path_holds_now() {
        let dir = scratch_dir("spawn-renamed");
        let app = dir.join("app");
        deploy("/bin/true", &app);
        let before = Program::open(&app).unwrap();
        assert_eq!(before.fallback(), None);
        // As many listeners as it takes for the program's descriptor to be one of the child fds
        // 3.. that command-fds dup2s over: the spawn must still execute the program.
        let program_fd = before.fd().unwrap().as_raw_fd();
        let addr: ListenAddr = "127.0.0.1:0".parse().unwrap();
        let listeners: Vec<Listener> = (0..program_fd)
            .map(|_| listen::bind(&addr).unwrap())
            .collect();
        assert!(
            (SD_LISTEN_FDS_START..=SD_LISTEN_FDS_START + listeners.len() as i32)
                .contains(&program_fd)
        );

        deploy("/bin/false", &app);
        assert_eq!(
            run(&before, &listeners).await,
            0,
            "ran the file opened: true"
        );
        let after = Program::open(&app).unwrap();
        assert_eq!(
            run(&after, &listeners).await,
            1,
            "ran the file deployed: false"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_switch_of_user_that_fails_fails_the_spawn_and_nothing_runs() {
        let dir = scratch_dir("spawn-drop");
        let marker = dir.join("ran");
        let app = dir.join("app.sh");
        std::fs::write(&app, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        std::fs::set_permissions(&app, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let program = Program::open(&app).unwrap();
        // uid -1 is no uid: setuid refuses it (EINVAL), even for root, after setgroups and
        // setgid succeeded (as root; otherwise setgroups already fails, EPERM).
        let identity = WorkerIdentity::from_ids(Ids {
            uid: u32::MAX,
            gid: 65534,
        });
        let spawned = spawn(request(&program, &[], Some(&identity)));
        let err = spawned.err().expect("the spawn fails");
        assert!(
            matches!(err.raw_os_error(), Some(libc::EINVAL | libc::EPERM)),
            "{err}"
        );
        assert!(!marker.exists(), "the program ran");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_script_is_executed_by_its_path() {
        let dir = scratch_dir("spawn-script");
        let app = dir.join("app.sh");
        std::fs::write(&app, "#!/bin/sh\nexit 7\n").unwrap();
        std::fs::set_permissions(&app, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let program = Program::open(&app).unwrap();
        assert!(program.fallback().is_some());
        assert_eq!(run(&program, &[]).await, 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
