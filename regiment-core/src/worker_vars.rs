//! The variables a master sets in each worker's environment: the master → worker contract.
//!
//! Besides these, a worker gets `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES` (the systemd
//! socket-activation convention, see [`crate::listen`]), the `REGIMENT_*` variables of the
//! master's environment that workers read (regiment-axum's HTTP options, whatever
//! [`crate::Builder::worker_env`] says) and the variables configured with
//! [`crate::Builder::env`], on top of the master's environment unless
//! [`crate::WorkerEnv::OnlyConfigured`] says otherwise.
//!
//! ```
//! // The master sets these itself: a worker's own environment cannot fake its slot.
//! assert!(regiment_core::worker_vars::WORKER_ID.starts_with("REGIMENT_"));
//! ```

/// The worker's slot, `0..workers`; a replacement takes the slot of the worker it replaces.
///
/// ```
/// // A script run by a worker reads its slot here, e.g. to pick a per-slot log file.
/// assert_eq!(regiment_core::worker_vars::WORKER_ID, "REGIMENT_WORKER_ID");
/// ```
pub const WORKER_ID: &str = "REGIMENT_WORKER_ID";
/// The generation the worker belongs to: 1 at start, +1 for each rolling restart.
///
/// ```
/// // Logs that carry it tell which deploy a worker came from.
/// assert_eq!(regiment_core::worker_vars::GENERATION, "REGIMENT_GENERATION");
/// ```
pub const GENERATION: &str = "REGIMENT_GENERATION";
/// The fd number of the worker's end of its private IPC socketpair.
///
/// ```
/// // Only the process the master spawned owns this fd; `LISTEN_PID` says which one that is.
/// assert_eq!(regiment_core::worker_vars::IPC_FD, "REGIMENT_IPC_FD");
/// ```
pub const IPC_FD: &str = "REGIMENT_IPC_FD";
/// `listening`, `started` or `manual`: when the worker counts as ready.
///
/// ```
/// use regiment_core::Readiness;
/// assert_eq!(regiment_core::worker_vars::READINESS, "REGIMENT_READINESS");
/// // Its values are the names of `Readiness`.
/// assert_eq!("started".parse(), Ok(Readiness::Started));
/// ```
pub const READINESS: &str = "REGIMENT_READINESS";
/// Milliseconds a worker has to drain before it is killed.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(regiment_core::worker_vars::DRAIN_TIMEOUT_MS, "REGIMENT_DRAIN_TIMEOUT_MS");
/// // Milliseconds, so the default drain deadline reads as 30000.
/// assert_eq!(regiment_core::defaults::DRAIN_TIMEOUT, Duration::from_millis(30_000));
/// ```
pub const DRAIN_TIMEOUT_MS: &str = "REGIMENT_DRAIN_TIMEOUT_MS";
/// Milliseconds between heartbeats.
///
/// ```
/// assert_eq!(regiment_core::worker_vars::HEARTBEAT_MS, "REGIMENT_HEARTBEAT_MS");
/// // `worker::heartbeat_interval()` is this value; outside a cluster there is none.
/// assert_eq!(regiment_core::worker::heartbeat_interval(), None);
/// ```
pub const HEARTBEAT_MS: &str = "REGIMENT_HEARTBEAT_MS";
/// The file name of the program, set when the master executes it through a descriptor. The
/// kernel then names the process (`/proc/PID/comm`, what `ps -e`, `top` and `pgrep` show) after
/// the descriptor's number (before Linux 6.14) or the file it resolves to, so the worker takes
/// this name as it starts: the name an execution by path would have given it, the master's own.
///
/// ```
/// // A worker of `/srv/app/current/bin/shop` shows in `ps -e` as `shop`, as its master does.
/// assert_eq!(regiment_core::worker_vars::PROGRAM_NAME, "REGIMENT_PROGRAM_NAME");
/// ```
pub const PROGRAM_NAME: &str = "REGIMENT_PROGRAM_NAME";

/// The service manager's variables: socket activation, its notification channel and its
/// watchdog. They are addressed to the master: a worker that notified would be ignored
/// (NotifyAccess=main) or, worse, taken for the service, and no process the master starts is
/// given them.
pub(crate) const SERVICE_MANAGER: &[&str] = &[
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
];

/// An upgrade in place's, between two masters (see `master::driver::handover` and
/// `master::driver::preflight`): a worker that found them would take itself for a master's
/// preflight, or look for a handover that is not its own; a preflight is given them afresh.
pub(crate) const UPGRADE: &[&str] = &[
    UPGRADE_PREFLIGHT,
    UPGRADE_HANDOVER_FD,
    UPGRADE_PREVIOUS_FD,
    UPGRADE_ROLLED_BACK,
];

/// The variable that puts a program in preflight mode (`master::driver::preflight`).
pub(crate) const UPGRADE_PREFLIGHT: &str = "REGIMENT_PREFLIGHT";
/// The variable that gives a new master its handover file (`master::driver::handover`).
pub(crate) const UPGRADE_HANDOVER_FD: &str = "REGIMENT_HANDOVER_FD";
/// The variable that gives a new master the descriptor of the program it replaced, for the
/// way back (`master::driver::upgrade::takeover`).
pub(crate) const UPGRADE_PREVIOUS_FD: &str = "REGIMENT_UPGRADE_PREVIOUS_FD";
/// Set, with the reason, when a new master that could not take over executes its previous
/// program again: that master reports the upgrade as rolled back.
pub(crate) const UPGRADE_ROLLED_BACK: &str = "REGIMENT_UPGRADE_ROLLED_BACK";

/// Variables a master removes from what it passes on to its workers, because it sets them
/// itself ([`WORKER_ID`] to [`PROGRAM_NAME`]), or because they are the service manager's or an
/// upgrade's.
pub(crate) fn reset_for_workers() -> impl Iterator<Item = &'static str> {
    [
        WORKER_ID,
        GENERATION,
        IPC_FD,
        READINESS,
        DRAIN_TIMEOUT_MS,
        HEARTBEAT_MS,
        PROGRAM_NAME,
    ]
    .into_iter()
    .chain(SERVICE_MANAGER.iter().copied())
    .chain(UPGRADE.iter().copied())
}
