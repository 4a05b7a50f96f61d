//! The signals that start a rolling restart: which are accepted, and how they are spelt.

use nix::sys::signal::Signal;

use crate::error::{Error, Result};

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
                        restart_signals_expected("signal names such as SIGHUP,SIGUSR2"),
                    )
                })
        })
        .collect()
}

/// Whether `s` can start a rolling restart: the master can install a handler for it, and it
/// means nothing else to the master. Checked at build, because a handler that cannot be
/// installed only fails once the master runs.
fn is_restart_signal(s: Signal) -> bool {
    use Signal::*;
    !matches!(
        s,
        // Cannot be caught, or must not be (tokio refuses to register them).
        SIGKILL | SIGSTOP | SIGILL | SIGFPE | SIGSEGV
        // Received whenever a worker exits: every exit would roll all the workers.
        | SIGCHLD
        // Already mean stop and scale.
        | SIGTERM | SIGINT | SIGTTIN | SIGTTOU
    )
}

/// What the restart signals accept, after `examples` (in the option's own syntax).
fn restart_signals_expected(examples: &str) -> String {
    format!(
        "{examples}; not SIGKILL, SIGSTOP, SIGILL, SIGFPE or SIGSEGV (they cannot be handled), \
         SIGCHLD (sent at every worker exit), SIGTERM or SIGINT (they stop), SIGTTIN or SIGTTOU \
         (they scale)"
    )
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
            "at least one signal",
        ));
    }
    if let Some(s) = signals.iter().find(|s| !is_restart_signal(**s)) {
        return Err(Error::invalid(
            "restart_signals",
            s,
            restart_signals_expected("signals such as SIGHUP or SIGUSR2"),
        ));
    }
    Ok(())
}
