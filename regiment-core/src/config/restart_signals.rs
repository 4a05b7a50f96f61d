//! The signals that start a rolling restart: which are accepted, and how they are spelt.

use nix::sys::signal::Signal;

use crate::error::{Error, Result};

/// The signals that may start a rolling restart. An allow-list, not a list of exceptions: a
/// signal is accepted only if nothing but a person or a deploy tool sends it, and it means
/// nothing else to the master. Every other signal is sent by the kernel or a terminal for a
/// reason of its own (SIGPIPE at every write to a closed connection, SIGWINCH at every resize
/// of a terminal, SIGALRM and SIGPROF to timers and profilers, SIGCHLD at every worker exit,
/// SIGSEGV and the other faults), cannot be handled (SIGKILL, SIGSTOP), or already stops or
/// scales the master. Real-time signals are not listed: [`Signal`] cannot name them.
/// SIGUSR2 upgrades the master ([`crate::defaults::UPGRADE_SIGNAL`]).
const ACCEPTED: [Signal; 2] = [Signal::SIGHUP, Signal::SIGUSR1];

/// What the restart signals accept, in words.
const EXPECTED: &str = "SIGHUP or SIGUSR1 (the signals that mean nothing else to the master, \
                        its terminal or the kernel; SIGUSR2 upgrades the master)";

/// Comma-separated restart signals, as `REGIMENT_RESTART_SIGNAL` gives them; an error names
/// `option` and the whole value.
pub(super) fn parse_restart_signals(option: &'static str, v: &str) -> Result<Vec<Signal>> {
    v.split(',')
        .map(|s| {
            parse_signal(s.trim())
                .filter(|s| is_restart_signal(*s))
                .ok_or_else(|| {
                    Error::invalid(
                        option,
                        v,
                        format!("a comma-separated list of {EXPECTED}, such as SIGHUP,SIGUSR1"),
                    )
                })
        })
        .collect()
}

/// Whether `s` may start a rolling restart: one of [`ACCEPTED`]. Checked at build, because a
/// handler that cannot be installed only fails once the master runs, and a signal the system
/// sends by itself would roll every worker when it does.
fn is_restart_signal(s: Signal) -> bool {
    ACCEPTED.contains(&s)
}

pub(super) fn parse_signal(s: &str) -> Option<Signal> {
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().ok()
}

/// Refuses an empty list and any signal that cannot start a rolling restart.
pub(super) fn check_restart_signals(signals: &[Signal]) -> Result<()> {
    if signals.is_empty() {
        return Err(Error::invalid(
            "restart_signals",
            "[]",
            format!("at least one of {EXPECTED}"),
        ));
    }
    if let Some(s) = signals.iter().find(|s| !is_restart_signal(**s)) {
        return Err(Error::invalid("restart_signals", s, EXPECTED));
    }
    Ok(())
}
