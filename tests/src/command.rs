//! A command line run by a test with a ceiling: a command that hangs fails its test instead of
//! hanging it.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use nix::sys::signal::Signal;

use crate::cluster::{CEILING, signal_pid};

/// Runs `regiment --socket SOCKET ARGS...` (`program` is the test's build of the command, whose
/// path only a test target knows): its output once it exits, printed for the test's log, or
/// `None` if it still runs after [`CEILING`] (then it is killed, by pid).
pub fn regiment_bounded(program: &str, socket: &Path, args: &[&str]) -> Option<Output> {
    let child = Command::new(program)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("REGIMENT_CONTROL_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run regiment");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(CEILING) {
        Ok(out) => {
            let out = out.expect("regiment's output");
            eprintln!(
                "$ regiment {}\n{}{}-> {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                out.status
            );
            Some(out)
        }
        Err(_) => {
            signal_pid(pid, Signal::SIGKILL);
            None
        }
    }
}
