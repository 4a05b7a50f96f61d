//! A worker process as the driver waits for it: a child it spawned (tokio's `Child`), or one
//! an earlier program of this master spawned and handed over with an upgrade in place. The
//! exec kept it this process's child (same pid), but not tokio's books: it is waited for by
//! pid, with `waitpid`, which only this driver calls on it.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::process::Child;

/// A worker process, until reaped.
#[derive(Debug)]
pub(crate) enum WorkerChild {
    Spawned(Child),
    /// Handed over by the program this master ran before its exec.
    Adopted(Pid),
}

impl WorkerChild {
    /// Its exit status if it exited (reaped now), `None` while it runs.
    pub(crate) fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        match self {
            WorkerChild::Spawned(child) => child.try_wait(),
            WorkerChild::Adopted(pid) => {
                match waitpid(*pid, Some(WaitPidFlag::WNOHANG)).map_err(std::io::Error::from)? {
                    WaitStatus::Exited(_, code) => {
                        Ok(Some(ExitStatus::from_raw((code & 0xff) << 8)))
                    }
                    WaitStatus::Signaled(_, signal, core) => {
                        let core = if core { 0x80 } else { 0 };
                        Ok(Some(ExitStatus::from_raw(signal as i32 | core)))
                    }
                    _ => Ok(None),
                }
            }
        }
    }

    /// Kills it (SIGKILL), for a spawn whose channel could not be set up.
    pub(crate) fn start_kill(&mut self) -> std::io::Result<()> {
        match self {
            WorkerChild::Spawned(child) => child.start_kill(),
            WorkerChild::Adopted(pid) => {
                nix::sys::signal::kill(*pid, nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An adopted child is reaped by pid with the status it exited with: a code, or a signal.
    #[test]
    fn an_adopted_child_is_reaped_by_pid_with_its_status() {
        // Reaped by pid, through the type under test, as a worker handed over is.
        #[allow(clippy::zombie_processes)]
        let spawn = |script: &str| {
            let child = std::process::Command::new("/bin/sh")
                .args(["-c", script])
                .spawn()
                .unwrap();
            WorkerChild::Adopted(Pid::from_raw(child.id() as i32))
        };
        let wait = |mut c: WorkerChild| loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(wait(spawn("exit 3")).code(), Some(3));
        let killed = wait(spawn("kill -9 $$"));
        assert_eq!((killed.code(), killed.signal()), (None, Some(9)));
        let mut running = spawn("sleep 30");
        assert!(running.try_wait().unwrap().is_none());
        running.start_kill().unwrap();
        assert_eq!(wait(running).signal(), Some(9));
    }
}
