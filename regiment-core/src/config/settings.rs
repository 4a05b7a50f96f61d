//! [`Config`]: the checked options, grouped at validation for those who take them, so that
//! no one regroups them: the policy's settings ([`PolicyConfig`], the policy's own type), what
//! each spawn takes ([`SpawnSettings`]), what the master binds ([`ListenSettings`]) and what
//! starts a rolling restart besides a command ([`RolloutTriggers`]).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::choices::WatchProgram;
use super::inherited_env::WorkerEnv;
use super::spawn_plan::BeforeSpawn;
use crate::identity::WorkerIdentity;
use crate::listen::ListenAddr;
use crate::master::policy::PolicyConfig;
use crate::readiness::Readiness;

/// The checked options a supervisor runs with, made by `Builder::into_config`.
pub(crate) struct Config {
    pub(crate) policy: PolicyConfig,
    pub(crate) spawn: SpawnSettings,
    pub(crate) listen: ListenSettings,
    pub(crate) triggers: RolloutTriggers,
    pub(crate) memory: MemorySettings,
    /// How long a report before a kill may take (`Builder::kill_report_timeout`).
    pub(crate) kill_report_timeout: Duration,
}

/// The memory budget, resolved when the master is built, and the limit it was read against:
/// what the status shows. The policy holds the budget's bytes (`PolicyConfig::memory_budget`).
#[derive(Debug, Clone, Default)]
pub(crate) struct MemorySettings {
    pub(crate) budget: Option<crate::events::MemoryBudgetStatus>,
    pub(crate) limit: Option<crate::events::MemoryLimitStatus>,
}

/// What every spawn of a worker takes: the program (resolved once, at start) with its
/// arguments, the variables configured for workers (before a `before_spawn` hook adds its
/// own) and the hook, the name workers show in `ps` (`NAME worker SLOT gen GENERATION`), who
/// they run as (`None`: as the master) and what they inherit of the master's environment; and
/// what each worker is told: when it counts as ready, how long it has to drain, how often it
/// sends heartbeats.
pub(crate) struct SpawnSettings {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<OsString>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) before_spawn: Option<BeforeSpawn>,
    pub(crate) process_name: String,
    pub(crate) identity: Option<WorkerIdentity>,
    pub(crate) worker_env: WorkerEnv,
    pub(crate) readiness: Readiness,
    pub(crate) drain_timeout: Duration,
    pub(crate) heartbeat_interval: Duration,
}

/// What the master binds at build: the listeners workers inherit (unless systemd hands them
/// over), each error naming the option that gave them (`bind` or `REGIMENT_BIND`); the control
/// socket and the admin listener, each with the option that gave it too.
pub(crate) struct ListenSettings {
    pub(crate) binds: Vec<ListenAddr>,
    pub(crate) bind_option: &'static str,
    pub(crate) control_socket: Option<ControlSocketPath>,
    pub(crate) admin: Option<AdminBind>,
}

/// The control socket's path, with the option that gave it.
pub(crate) struct ControlSocketPath {
    pub(crate) option: &'static str,
    pub(crate) path: PathBuf,
}

/// The admin listener's address, checked, with the option that gave it.
pub(crate) struct AdminBind {
    pub(crate) option: &'static str,
    pub(crate) addr: ListenAddr,
}

/// What starts a rolling restart besides a command: the signals installed at build, and
/// whether a change of the program file does.
pub(crate) struct RolloutTriggers {
    pub(crate) restart_signals: Vec<Signal>,
    pub(crate) watch_program: WatchProgram,
}
