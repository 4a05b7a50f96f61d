//! The old master's side of the preflight: the new program run in check mode, bounded in time,
//! its output kept to its last lines, passed only on exit 0 after the line that says so.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::tail::Tail;
use super::{PREFLIGHT_VAR, ok_line};
use crate::master::driver::exec_plan::{ExecPlan, ListenPid};
use crate::master::driver::program::Program;
use crate::worker_vars;

/// How long a preflight killed at its bound may take to be reaped: SIGKILL is not refused, so
/// only a process stuck in the kernel takes any time at all.
const REAP_AFTER_KILL: Duration = Duration::from_secs(10);

/// Whether the new program is not given `name` of the master's environment: the service
/// manager's channel and the socket activation are the master's own (a preflight that notified
/// systemd would be taken for the service; one that found `LISTEN_FDS` would look for sockets
/// it does not have), and the upgrade's own variables are set afresh.
fn not_passed(name: &OsStr) -> bool {
    let listed = |names: &[&str]| names.iter().any(|n| OsStr::new(n) == name);
    listed(worker_vars::SERVICE_MANAGER) || listed(worker_vars::UPGRADE)
}

/// A preflight to run.
#[derive(Debug)]
pub(crate) struct Preflight<'a> {
    /// The new program, pinned: the file the exec would execute.
    pub(crate) program: &'a Program,
    /// The command line the new master would get: the master's own.
    pub(crate) argv0: &'a str,
    pub(crate) args: &'a [OsString],
    /// Variables on top of the master's environment (none for an upgrade: the new master gets
    /// the old one's).
    pub(crate) extra_env: &'a [(OsString, OsString)],
    /// The handover version the old master will write.
    pub(crate) version: u32,
    /// How long the new program has to pass: killed (its process group) past it.
    pub(crate) bound: Duration,
}

/// Why the new program is not to be executed, with its last lines of output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the new program {program} failed its preflight: {why}{}",
    shown(output)
)]
pub(crate) struct Refusal {
    pub(crate) program: String,
    pub(crate) why: String,
    /// Its last lines, stdout and stderr as they came (see `tail`).
    pub(crate) output: String,
}

fn shown(output: &str) -> String {
    if output.is_empty() {
        String::from("; it wrote nothing")
    } else {
        format!("; its last lines of output:\n{output}")
    }
}

impl Preflight<'_> {
    /// Runs the new program in check mode; `Ok` once it passed.
    pub(crate) async fn run(&self) -> Result<(), Refusal> {
        let refusal = |why: String, output: String| Refusal {
            program: self.program.path().display().to_string(),
            why,
            output,
        };
        let (mut child, output) = self
            .spawn()
            .map_err(|e| refusal(format!("it cannot be started: {e}"), String::new()))?;
        let pid = child.id();
        let expected = ok_line(self.version);
        let mut tail = Tail::default();
        let mut confirmed = false;
        let deadline = Instant::now() + self.bound;
        let finished = tokio::time::timeout_at(deadline, async {
            let mut output = output;
            let mut buf = [0u8; 4096];
            // To EOF: every line it wrote is seen before its status is judged.
            loop {
                match output.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => tail.push(&buf[..n], |line| confirmed |= line == expected),
                }
            }
            child.wait().await
        })
        .await;
        let status = match finished {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => return Err(refusal(format!("cannot wait for it: {e}"), tail.text())),
            Err(_) => {
                if let Some(pid) = pid {
                    // Its group: whatever it started goes with it.
                    let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                }
                let _ = child.start_kill();
                let _ = tokio::time::timeout(REAP_AFTER_KILL, child.wait()).await;
                return Err(refusal(
                    format!(
                        "it did not finish within {}: killed",
                        humantime::format_duration(self.bound)
                    ),
                    tail.text(),
                ));
            }
        };
        judge(status, confirmed, self.version).map_err(|why| refusal(why, tail.text()))
    }

    /// Starts the program, its stdout and stderr on one pipe (their lines interleaved as they
    /// were written), in a process group of its own (a Ctrl+C at the terminal is the master's),
    /// with nothing else inherited: every descriptor of the master is close-on-exec.
    fn spawn(&self) -> std::io::Result<(tokio::process::Child, tokio::net::unix::pipe::Receiver)> {
        // A map, so that a later value replaces an earlier one: with two entries for one name,
        // getenv would return the first.
        let mut vars: BTreeMap<OsString, OsString> = std::env::vars_os()
            .filter(|(k, _)| !not_passed(k))
            .collect();
        vars.extend(self.extra_env.iter().cloned());
        // The version, and who asks: the program checks that its parent is this master.
        let asked = format!("{}:{}", self.version, std::process::id());
        vars.insert(PREFLIGHT_VAR.into(), asked.into());
        let vars: Vec<(OsString, OsString)> = vars.into_iter().collect();
        // 3: no descriptor is mapped into the child; any number above stdio will do.
        let mut plan = ExecPlan::new(
            self.program,
            3,
            self.argv0,
            self.args,
            &vars,
            ListenPid::Unset,
        )?;
        let (reader, writer) = std::io::pipe()?;
        let mut cmd = tokio::process::Command::new(self.program.path());
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer)
            .kill_on_drop(true);
        // SAFETY: `ExecPlan::exec` only writes into memory it owns and calls getpid, execveat
        // and execve (no identity to switch to), all async-signal-safe; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || plan.exec());
        }
        let child = cmd.spawn()?;
        // The write ends and the plan's descriptor: the pipe ends when the program is gone.
        drop(cmd);
        let output = tokio::net::unix::pipe::Receiver::from_owned_fd(reader.into())?;
        Ok((child, output))
    }
}

/// Opens the program at `path` (pins it) and runs its preflight, named by its path.
pub(crate) async fn preflight_at_path(
    path: &std::path::Path,
    args: &[OsString],
    extra_env: &[(OsString, OsString)],
    version: u32,
    bound: Duration,
) -> Result<(), String> {
    let program = Program::open(path).map_err(|e| format!("cannot open the new program: {e}"))?;
    let argv0 = path.display().to_string();
    Preflight {
        program: &program,
        argv0: &argv0,
        args,
        extra_env,
        version,
        bound,
    }
    .run()
    .await
    .map_err(|refusal| refusal.to_string())
}

/// Passed: exit 0 after the line. Anything else says what happened.
fn judge(status: ExitStatus, confirmed: bool, version: u32) -> Result<(), String> {
    match (status.success(), confirmed) {
        (true, true) => Ok(()),
        (true, false) => Err(format!(
            "it exited 0 without confirming that it reached the master's serve and reads \
             handover version {version} (no line \"{}\"): it is not a regiment master, or one \
             that knows no preflight",
            ok_line(version)
        )),
        (false, _) => Err(format!("it ended with {status}")),
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
