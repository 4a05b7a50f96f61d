//! Names of the environment variables that make up the master → worker contract.
//!
//! Besides these, a worker gets `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES` (the systemd
//! socket-activation convention, see [`crate::listen`]) and the variables configured with
//! [`crate::Builder::env`].

/// The worker's slot, `0..workers`; a replacement takes the slot of the worker it replaces.
pub const WORKER_ID: &str = "REGIMENT_WORKER_ID";
/// The generation the worker belongs to: 1 at start, +1 for each rolling restart.
pub const GENERATION: &str = "REGIMENT_GENERATION";
/// The fd number of the worker's end of its private IPC socketpair.
pub const IPC_FD: &str = "REGIMENT_IPC_FD";
/// `listening`, `started` or `manual`: when the worker counts as ready.
pub const READINESS: &str = "REGIMENT_READINESS";
/// Milliseconds a worker has to drain before it is killed.
pub const DRAIN_TIMEOUT_MS: &str = "REGIMENT_DRAIN_TIMEOUT_MS";
/// Milliseconds between heartbeats.
pub const HEARTBEAT_MS: &str = "REGIMENT_HEARTBEAT_MS";

/// Variables a master removes from what it passes on, because it sets them itself (or because
/// they described the master's own activation, not the worker's).
pub(crate) const INHERITED_AND_RESET: &[&str] = &[
    WORKER_ID,
    GENERATION,
    IPC_FD,
    READINESS,
    DRAIN_TIMEOUT_MS,
    HEARTBEAT_MS,
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
];
