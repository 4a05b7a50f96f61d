//! How a worker process ended, as its driver reaped it: its exit code, or the signal that
//! killed it, and whether that signal can have been its own doing; or, as the driver found out,
//! that the kernel's OOM killer killed it.

use std::fmt;

use nix::sys::signal::Signal;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Termination {
    /// It exited with this status.
    Exit(i32),
    /// This signal killed it.
    Signal(i32),
    /// The kernel's OOM killer killed it (with SIGKILL): the master sent it no SIGKILL, and its
    /// memory cgroup counted one more OOM kill than earlier exits explained (see the driver's
    /// `oom_kills`).
    OomKilled,
}

/// The signals a program gets from its own execution: a fault (a bad address, an illegal
/// instruction, a division by zero, a trap, a forbidden system call) or an abort (a panic with
/// `panic = "abort"`, a failed assertion in C). Death by one of them is the program's crash,
/// whoever may have sent it.
const OWN_FAULTS: [Signal; 7] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGILL,
    Signal::SIGFPE,
    Signal::SIGTRAP,
    Signal::SIGSYS,
    Signal::SIGABRT,
];

impl Termination {
    /// How `status`, a reaped child's, ended.
    pub(crate) fn of(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.signal(), status.code()) {
            (Some(signal), _) => Termination::Signal(signal),
            (None, code) => Termination::Exit(code.unwrap_or(-1)),
        }
    }

    /// The name of the signal that killed the process, unless the program raises it on its own
    /// fault: for a worker the master sent no signal, it came from outside (an operator's
    /// `kill -9`, the kernel's OOM killer, a service manager), not from the program's code. An
    /// OOM kill the driver recognised is a SIGKILL from outside too.
    pub(crate) fn outside_signal(self) -> Option<String> {
        let number = match self {
            Termination::Exit(_) => return None,
            Termination::Signal(number) => number,
            Termination::OomKilled => Signal::SIGKILL as i32,
        };
        match Signal::try_from(number) {
            Ok(signal) if OWN_FAULTS.contains(&signal) => None,
            Ok(signal) => Some(signal.as_str().to_owned()),
            Err(_) => Some(format!("signal {number}")),
        }
    }
}

/// `exit 0`, `signal 9 (SIGKILL)`, `killed by the OOM killer`: how events and logs write it.
impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Termination::Exit(code) => write!(f, "exit {code}"),
            Termination::Signal(number) => match Signal::try_from(number) {
                Ok(signal) => write!(f, "signal {number} ({signal})"),
                Err(_) => write!(f, "signal {number}"),
            },
            Termination::OomKilled => f.write_str("killed by the OOM killer"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_is_from_outside_unless_a_program_raises_it_on_its_own_fault() {
        assert_eq!(
            Termination::Signal(9).outside_signal().as_deref(),
            Some("SIGKILL")
        );
        assert_eq!(
            Termination::Signal(15).outside_signal().as_deref(),
            Some("SIGTERM")
        );
        for own in OWN_FAULTS {
            assert_eq!(
                Termination::Signal(own as i32).outside_signal(),
                None,
                "{own}"
            );
        }
        assert_eq!(Termination::Exit(137).outside_signal(), None);
        // A real-time signal has no name in nix.
        assert_eq!(
            Termination::Signal(40).outside_signal().as_deref(),
            Some("signal 40")
        );
        assert_eq!(Termination::Signal(9).to_string(), "signal 9 (SIGKILL)");
        assert_eq!(Termination::Exit(0).to_string(), "exit 0");
        // The OOM killer's SIGKILL came from outside too, and says who sent it.
        assert_eq!(
            Termination::OomKilled.outside_signal().as_deref(),
            Some("SIGKILL")
        );
        assert_eq!(
            Termination::OomKilled.to_string(),
            "killed by the OOM killer"
        );
    }
}
