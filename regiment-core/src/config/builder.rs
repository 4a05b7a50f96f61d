//! [`Builder`]: the options of a supervisor and their defaults. What workers run (and as whom)
//! is set by the methods in `worker_options.rs`, how rollouts go by those in
//! `rollout_options.rs`; the checks are in `validated.rs` and the environment overrides in
//! `overrides.rs`. [`Builder::build`] is with the master it builds (`master/build.rs`).

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::applied_overrides::AppliedOverrides;
use super::choices::{EnvOverrides, WatchProgram};
use super::inherited_env::WorkerEnv;
use super::spawn_plan::BeforeSpawn;
use crate::defaults;
use crate::readiness::Readiness;

pub(super) enum WorkerCount {
    Cpus,
    Fixed(usize),
    Computed(Box<dyn FnOnce() -> usize + Send>),
}

/// Options of a supervisor, with their defaults and environment overrides.
///
/// Every option an operator would set in a unit file can be overridden at start by a
/// `REGIMENT_*` environment variable, without a rebuild: `REGIMENT_WORKERS`, `REGIMENT_BIND`
/// (comma-separated), `REGIMENT_DRAIN_TIMEOUT`, `REGIMENT_START_TIMEOUT` (`30s`, `500ms`),
/// `REGIMENT_MAX_SURGE`, `REGIMENT_BACKOFF_INITIAL`, `REGIMENT_BACKOFF_MAX`,
/// `REGIMENT_BACKOFF_RESET`, `REGIMENT_ROLLOUT_FAILURE_LIMIT`, `REGIMENT_ROLLOUT_SETTLE`,
/// `REGIMENT_ROLLOUT_TIMEOUT`,
/// `REGIMENT_READINESS`, `REGIMENT_RESTART_SIGNAL` (`SIGHUP,SIGUSR1`), `REGIMENT_PROCESS_NAME`,
/// `REGIMENT_HEARTBEAT_INTERVAL`, `REGIMENT_HEARTBEAT_TIMEOUT` (`10s`, `off`),
/// `REGIMENT_UNRESPONSIVE_GRACE`,
/// `REGIMENT_KILL_REPORT_TIMEOUT` (`1s`, `0s`: no report),
/// `REGIMENT_CANARY_*`, `REGIMENT_CONTROL_SOCKET`, `REGIMENT_WORKER_USER`,
/// `REGIMENT_WORKER_GROUP`, `REGIMENT_WORKER_ENV`, `REGIMENT_ADMIN_BIND`, `REGIMENT_WATCH`
/// (`1` or `0`), `REGIMENT_MEMORY_BUDGET` (`1500MB`, `80%`). A wrong value is an error that
/// names the variable and what it accepts, and an
/// empty value is a wrong one (unset the variable for the default); options checked together
/// (the backoff's first and longest delays, the heartbeat's interval and timeout) are refused
/// under the variable that set one, if one did. The variables that set options are logged at
/// build (info) with their values; a `REGIMENT_*` variable regiment does not read (a typo) is
/// logged as a warning, naming the closest known one.
///
/// ```no_run
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), regiment_core::Error> {
/// let supervisor = regiment_core::Builder::new()
///     .workers(4)
///     .bind("127.0.0.1:3000")
///     .drain_timeout(Duration::from_secs(10))
///     .env("APP_ENV", "production")
///     .build()?; // binds now: a busy address is an error before any worker starts
/// supervisor.run().await
/// # }
/// ```
pub struct Builder {
    pub(super) workers: WorkerCount,
    pub(super) binds: Vec<String>,
    pub(super) drain_timeout: Duration,
    pub(super) start_timeout: Duration,
    pub(super) max_surge: Option<usize>,
    pub(super) backoff_initial: Duration,
    pub(super) backoff_max: Duration,
    pub(super) backoff_reset: Duration,
    pub(super) rollout_failures: u32,
    pub(super) rollout_settle: Duration,
    /// `None`: derived from the other options when each rollout starts.
    pub(super) rollout_timeout: Option<Duration>,
    pub(super) readiness: Readiness,
    pub(super) restart_signals: Vec<Signal>,
    pub(super) env: Vec<(OsString, OsString)>,
    pub(super) args: Option<Vec<OsString>>,
    pub(super) program: Option<PathBuf>,
    pub(super) before_spawn: Option<BeforeSpawn>,
    pub(super) process_name: Option<String>,
    pub(super) heartbeat: Duration,
    pub(super) heartbeat_timeout: Option<Duration>,
    pub(super) unresponsive_grace: Duration,
    pub(super) kill_report_timeout: Duration,
    pub(super) canary: Option<crate::Canary>,
    pub(super) watch_program: WatchProgram,
    pub(super) control_socket: Option<PathBuf>,
    pub(super) worker_user: Option<String>,
    pub(super) worker_group: Option<String>,
    pub(super) worker_env: WorkerEnv,
    pub(super) admin_bind: Option<String>,
    pub(super) memory_budget: Option<crate::MemoryBudget>,
    pub(super) env_overrides: EnvOverrides,
    /// The variables that set options, so that errors and the start's log name them.
    pub(super) applied_overrides: AppliedOverrides,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("binds", &self.binds)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Defaults: one worker per CPU, no listener, drain deadline 30 s, start timeout 30 s,
    /// surge 25 % of the workers (at least 1), backoff 100 ms doubling to 30 s (reset after a
    /// worker stayed up 60 s), readiness `listening`, rolling restart on SIGHUP,
    /// heartbeats every second and no heartbeat timeout; see [`crate::defaults`].
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// // Every option has a default: this is a working master already.
    /// let supervisor = Builder::new().env_overrides(EnvOverrides::Ignore).build()?;
    /// assert!(supervisor.handle().status().workers_wanted >= 1);
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn new() -> Self {
        Self {
            workers: WorkerCount::Cpus,
            binds: Vec::new(),
            drain_timeout: defaults::DRAIN_TIMEOUT,
            start_timeout: defaults::START_TIMEOUT,
            max_surge: None,
            backoff_initial: defaults::BACKOFF_INITIAL,
            backoff_max: defaults::BACKOFF_MAX,
            backoff_reset: defaults::BACKOFF_RESET,
            rollout_failures: defaults::ROLLOUT_FAILURE_LIMIT,
            rollout_settle: defaults::ROLLOUT_SETTLE,
            rollout_timeout: None,
            readiness: Readiness::default(),
            restart_signals: defaults::RESTART_SIGNALS.to_vec(),
            env: Vec::new(),
            args: None,
            program: None,
            before_spawn: None,
            process_name: None,
            heartbeat: defaults::HEARTBEAT_INTERVAL,
            heartbeat_timeout: None,
            unresponsive_grace: defaults::UNRESPONSIVE_GRACE,
            kill_report_timeout: defaults::KILL_REPORT_TIMEOUT,
            canary: None,
            watch_program: WatchProgram::Off,
            control_socket: None,
            worker_user: None,
            worker_group: None,
            worker_env: WorkerEnv::Inherit,
            admin_bind: None,
            memory_budget: None,
            env_overrides: EnvOverrides::Apply,
            applied_overrides: AppliedOverrides::default(),
        }
    }

    /// The number of workers, from 1 to [`crate::MAX_WORKERS`] (1024). The default is the
    /// number of CPUs the master may use: its CPU affinity, fewer if its cgroup's CPU quota is
    /// lower (rounded up), at least 1.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// let supervisor = Builder::new().workers(3).env_overrides(EnvOverrides::Ignore).build()?;
    /// assert_eq!(supervisor.handle().status().workers_wanted, 3);
    /// // Zero workers would serve nothing: refused.
    /// assert!(Builder::new().workers(0).env_overrides(EnvOverrides::Ignore).build().is_err());
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = WorkerCount::Fixed(n);
        self
    }

    /// The number of workers, computed once when the supervisor is built.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// // Half the CPUs, leaving the rest to a database on the same host.
    /// let supervisor = Builder::new()
    ///     .workers_with(|| std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)))
    ///     .env_overrides(EnvOverrides::Ignore)
    ///     .build()?;
    /// assert!(supervisor.handle().status().workers_wanted >= 1);
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn workers_with(mut self, f: impl FnOnce() -> usize + Send + 'static) -> Self {
        self.workers = WorkerCount::Computed(Box::new(f));
        self
    }

    /// Adds a listener: `127.0.0.1:3000`, `[::]:80`, `unix:/run/app.sock`. May be repeated.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// // Port 0: the system picks a free port, which `listeners` reports.
    /// let supervisor = Builder::new()
    ///     .bind("127.0.0.1:0")
    ///     .env_overrides(EnvOverrides::Ignore)
    ///     .build()?;
    /// let addr = &supervisor.listeners()[0];
    /// assert!(addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"));
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.binds.push(addr.into());
        self
    }

    /// How long a draining worker may take before it is killed with SIGKILL.
    ///
    /// ```
    /// use std::time::Duration;
    /// use regiment_core::{Builder, EnvOverrides};
    /// // Requests are short here: a worker still busy after 10 s is stuck, not slow.
    /// let builder = Builder::new().drain_timeout(Duration::from_secs(10));
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// // Zero would kill every worker the moment it is told to drain: refused.
    /// let builder = Builder::new().drain_timeout(Duration::ZERO);
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_err());
    /// ```
    pub fn drain_timeout(mut self, d: Duration) -> Self {
        self.drain_timeout = d;
        self
    }

    /// How long a new worker may take to become ready before it is killed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use regiment_core::{Builder, EnvOverrides};
    /// // Workers load a large model before they are ready: give them two minutes.
    /// let builder = Builder::new().start_timeout(Duration::from_secs(120));
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// ```
    pub fn start_timeout(mut self, d: Duration) -> Self {
        self.start_timeout = d;
        self
    }

    /// At most this many replacements starting at once (default 25 % of workers, at least 1).
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// // At most 2 extra workers (and their memory) while a rolling restart runs.
    /// let builder = Builder::new().workers(8).max_surge(2);
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// // A surge of 0 would never replace anything: refused.
    /// assert!(Builder::new().max_surge(0).env_overrides(EnvOverrides::Ignore).build().is_err());
    /// ```
    pub fn max_surge(mut self, n: usize) -> Self {
        self.max_surge = Some(n);
        self
    }

    /// Respawn backoff: first delay, longest delay, and the time a worker must stay up for the
    /// delay to start over. A slot waits it out after a crash, after a failed start, and before
    /// replacing a worker that asked to be replaced before it served anything (see
    /// [`crate::Event::ReplacementDelayed`]).
    ///
    /// Refused at build: a first delay of zero (doubled, it stays zero: a crash loop with no
    /// pause), a `reset_after` of zero (every worker would count as healthy the moment it is
    /// ready, so one that crashes soon after would always be retried after the first delay), a
    /// longest delay shorter than the first, and durations longer than [`crate::MAX_DURATION`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use regiment_core::{Builder, EnvOverrides};
    /// // Retry after 50 ms, wait at most 5 s, and forgive a worker that stayed up 2 minutes.
    /// let (ms, s) = (Duration::from_millis, Duration::from_secs);
    /// let builder = Builder::new().backoff(ms(50), s(5), s(120));
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// // A longest delay shorter than the first makes no sense: refused.
    /// let builder = Builder::new().backoff(s(5), s(1), s(60));
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_err());
    /// // Forgiving a worker as soon as it is up would keep a crash loop at the first delay.
    /// let err = Builder::new()
    ///     .backoff(ms(50), s(5), Duration::ZERO)
    ///     .env_overrides(EnvOverrides::Ignore)
    ///     .build();
    /// assert!(err.unwrap_err().to_string().contains("`backoff`"));
    /// ```
    pub fn backoff(mut self, initial: Duration, max: Duration, reset_after: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max;
        self.backoff_reset = reset_after;
        self
    }

    /// When a new worker counts as ready.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides, Readiness};
    /// // Workers warm their caches first and call `worker::ready()` when done.
    /// let builder = Builder::new().readiness(Readiness::Manual);
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// ```
    pub fn readiness(mut self, r: Readiness) -> Self {
        self.readiness = r;
        self
    }

    /// The signals that start a rolling restart (default SIGHUP).
    ///
    /// SIGHUP and SIGUSR1 are accepted: the signals only a person or a deploy tool sends, and
    /// that mean nothing else to the master (SIGUSR2 upgrades the master itself, see
    /// [`crate::Handle::upgrade`]). Refused at build (under the name
    /// `restart_signals`, or `REGIMENT_RESTART_SIGNAL` for the environment override): no
    /// signal at all, and every other signal, because it cannot be handled (SIGKILL,
    /// SIGSTOP), the kernel, a terminal or a timer sends it for a reason of its own (SIGPIPE
    /// at each write to a closed connection, SIGWINCH at each resize of the terminal,
    /// SIGALRM, SIGCHLD at each worker exit, the faults), or it already stops (SIGTERM,
    /// SIGINT) or scales (SIGTTIN, SIGTTOU) the master.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides, Signal};
    /// // SIGHUP means "reload the config" to this program's users: deploy on SIGUSR1 only.
    /// let builder = Builder::new().restart_signals([Signal::SIGUSR1]);
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// // No signal at all: refused, an operator could not deploy.
    /// let builder = Builder::new().restart_signals(Vec::new());
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_err());
    /// // SIGPIPE comes at every write to a closed connection: refused at build, with the
    /// // signals that are accepted.
    /// let err = Builder::new()
    ///     .restart_signals([Signal::SIGPIPE])
    ///     .env_overrides(EnvOverrides::Ignore)
    ///     .build();
    /// assert!(err.unwrap_err().to_string().contains("SIGHUP or SIGUSR1"));
    /// ```
    pub fn restart_signals(mut self, signals: impl IntoIterator<Item = Signal>) -> Self {
        self.restart_signals = signals.into_iter().collect();
        self
    }

    /// The interval of worker heartbeats.
    ///
    /// ```
    /// use std::time::Duration;
    /// use regiment_core::{Builder, EnvOverrides};
    /// // Fresher figures in `Handle::status`, for one small message per worker every 250 ms.
    /// let builder = Builder::new().heartbeat_interval(Duration::from_millis(250));
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// ```
    pub fn heartbeat_interval(mut self, d: Duration) -> Self {
        self.heartbeat = d;
        self
    }

    /// Replace a ready worker that sent nothing for this long (a blocked runtime). Off by
    /// default. It applies only to workers that have sent at least one heartbeat (regiment-axum's
    /// workers send them from the runtime that serves), so a worker that never sends any is not
    /// replaced for its silence.
    ///
    /// ```
    /// use std::time::Duration;
    /// use regiment_core::{Builder, EnvOverrides};
    /// // A worker whose runtime is blocked for 10 s is replaced.
    /// let builder = Builder::new().heartbeat_timeout(Duration::from_secs(10));
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// // Not longer than the interval (1 s): healthy workers would be replaced. Refused.
    /// let builder = Builder::new().heartbeat_timeout(Duration::from_secs(1));
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_err());
    /// ```
    pub fn heartbeat_timeout(mut self, d: Duration) -> Self {
        self.heartbeat_timeout = Some(d);
        self
    }

    /// How long a worker judged unresponsive by the heartbeat timeout is given once its
    /// replacement serves, before it is killed (2 s by default; the drain timeout if that is
    /// shorter): a blocked runtime drains nothing, and waiting only holds the connections it
    /// accepted.
    ///
    /// ```
    /// use std::time::Duration;
    /// use regiment_core::{Builder, EnvOverrides};
    /// let builder = Builder::new()
    ///     .heartbeat_timeout(Duration::from_secs(5))
    ///     .unresponsive_grace(Duration::from_millis(500));
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// ```
    pub fn unresponsive_grace(mut self, d: Duration) -> Self {
        self.unresponsive_grace = d;
        self
    }

    /// A control socket at `path`, for the `regiment` command (off by default): status,
    /// metrics, rolling restarts answered with their outcome, scale, replace, stop. The file
    /// is created with mode 0600 and only the master's user and root are served; a file left
    /// by a dead master is replaced, a live master's is never taken over. The path holds at
    /// most 107 bytes, what a Unix socket's address holds: a longer one is refused at build.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), regiment_core::Error> {
    /// // A deploy script ends with `regiment --socket /run/shop/control.sock reload --wait`.
    /// let supervisor = regiment_core::Builder::new()
    ///     .bind("127.0.0.1:3000")
    ///     .control_socket("/run/shop/control.sock")
    ///     .build()?;
    /// supervisor.run().await
    /// # }
    /// ```
    pub fn control_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.control_socket = Some(path.into());
        self
    }

    /// Serves the admin HTTP endpoints from the master on this address (off by default):
    /// `GET /metrics` (the Prometheus text format, see [`crate::Handle::metrics`]), `/status`
    /// (the [`crate::Status`] as JSON), `/healthz` (200 while the supervisor loop runs) and
    /// `/readyz` (200 while at least one worker is ready and its heartbeats are not overdue, so
    /// a rolling restart never fails a readiness probe). A TCP address (`127.0.0.1:9100`; port 0 picks one, shown in
    /// [`crate::Status::admin`]) or `unix:/path`. Bound at build; never inherited by workers.
    /// `REGIMENT_ADMIN_BIND` overrides it.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// let supervisor = Builder::new()
    ///     .admin_bind("127.0.0.1:0")
    ///     .env_overrides(EnvOverrides::Ignore)
    ///     .build()?;
    /// // Bound now: the port is known before `run` (the endpoints answer once it runs).
    /// let admin = supervisor.handle().status().admin.unwrap();
    /// assert!(admin.starts_with("127.0.0.1:") && !admin.ends_with(":0"));
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn admin_bind(mut self, addr: impl Into<String>) -> Self {
        self.admin_bind = Some(addr.into());
        self
    }

    /// Keeps the sum of the private memory of the master and its workers under a budget (off
    /// by default): a size, or a share of the memory limit (the cgroup's, else the machine's)
    /// read at build. See [`crate::MemoryBudget`]. `REGIMENT_MEMORY_BUDGET` overrides it
    /// (`1500MB`, `80%`).
    ///
    /// ```
    /// use regiment_core::events::BudgetSource;
    /// use regiment_core::{Builder, EnvOverrides, MemoryBudget};
    /// let supervisor = Builder::new()
    ///     .memory_budget(MemoryBudget::percent_of_limit(80))
    ///     .env_overrides(EnvOverrides::Ignore)
    ///     .build()?;
    /// // Resolved at build: the status shows the budget and the limit it is a share of.
    /// let memory = supervisor.handle().status().memory;
    /// let budget = memory.budget.unwrap();
    /// assert_eq!(budget.source, BudgetSource::PercentOfLimit { percent: 80 });
    /// assert!(budget.bytes < memory.limit.unwrap().bytes);
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn memory_budget(mut self, budget: crate::MemoryBudget) -> Self {
        self.memory_budget = Some(budget);
        self
    }

    /// Development reload ([`WatchProgram::Off`] by default; `REGIMENT_WATCH=1` is
    /// [`WatchProgram::Reload`]): when the program file changes, a rebuild say, the workers roll
    /// as on SIGHUP, once the file was left alone for half a second. Each reload is logged at
    /// info with its cause. For development: in production a deploy asks for its rollout
    /// (SIGHUP, [`crate::Handle::rolling_restart_and_wait`]).
    ///
    /// ```no_run
    /// use regiment_core::WatchProgram;
    /// # async fn run() -> Result<(), regiment_core::Error> {
    /// // `cargo build` in another terminal reloads this server, without dropping a request.
    /// let supervisor = regiment_core::Builder::new()
    ///     .bind("127.0.0.1:3000")
    ///     .watch_program(WatchProgram::Reload)
    ///     .build()?;
    /// supervisor.run().await
    /// # }
    /// ```
    pub fn watch_program(mut self, watch: WatchProgram) -> Self {
        self.watch_program = watch;
        self
    }

    /// Whether `REGIMENT_*` environment variables override the options
    /// ([`EnvOverrides::Apply`] by default).
    ///
    /// ```
    /// use regiment_core::EnvOverrides;
    /// // An embedded master (or a test) runs with what the code says, whatever REGIMENT_* holds.
    /// let builder = regiment_core::Builder::new().workers(2);
    /// let supervisor = builder.env_overrides(EnvOverrides::Ignore).build()?;
    /// assert_eq!(supervisor.handle().status().workers_wanted, 2);
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn env_overrides(mut self, overrides: EnvOverrides) -> Self {
        self.env_overrides = overrides;
        self
    }
}
