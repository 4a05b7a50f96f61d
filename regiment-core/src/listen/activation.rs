//! systemd's socket-activation variables (`LISTEN_FDS`, `LISTEN_PID`), as this process finds
//! them. Read only: nothing is taken or changed, and nothing of the worker side is needed, so
//! both the listeners (`take_inherited`) and the worker's channel can ask.

/// The systemd variables as found in this process's environment, if they are addressed to it.
pub(crate) struct ActivationEnv {
    /// `LISTEN_FDS`: how many listeners follow fd 3.
    pub(crate) count: usize,
}

/// Reads `LISTEN_FDS`/`LISTEN_PID`. Listeners addressed to another pid (inherited by a child of
/// the process they were meant for) are not ours and are ignored, as `sd_listen_fds` does.
pub(crate) fn activation_env() -> Option<ActivationEnv> {
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.trim().parse().ok()?;
    if pid != std::process::id() {
        return None;
    }
    let count: usize = std::env::var("LISTEN_FDS").ok()?.trim().parse().ok()?;
    Some(ActivationEnv { count })
}
