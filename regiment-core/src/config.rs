//! Options of a supervisor: the [`Builder`], its defaults and its environment overrides.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::error::{Error, Result};
use crate::identity::{Requested, WorkerIdentity};
use crate::listen::ListenAddr;
use crate::readiness::Readiness;
use crate::worker_env::WorkerEnv;

/// The default drain deadline: how long a worker has to finish after `drain`.
///
/// ```
/// use std::time::Duration;
/// // Long enough for a slow upload; a service of quick requests can ask for less.
/// assert_eq!(regiment_core::DEFAULT_DRAIN_TIMEOUT, Duration::from_secs(30));
/// let builder = regiment_core::Builder::new().drain_timeout(Duration::from_secs(5));
/// # drop(builder);
/// ```
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The default start timeout: how long a new worker has to become ready.
///
/// ```
/// use std::time::Duration;
/// // A worker that warms big caches before it is ready may need more.
/// assert_eq!(regiment_core::DEFAULT_START_TIMEOUT, Duration::from_secs(30));
/// let builder = regiment_core::Builder::new().start_timeout(Duration::from_secs(120));
/// # drop(builder);
/// ```
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);
/// The first respawn delay after a crash or a failed start.
///
/// ```
/// use std::time::Duration;
/// use regiment_core::{Builder, DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_RESET};
/// // Keep the defaults but never wait more than 5 s between respawns.
/// let max = Duration::from_secs(5);
/// let builder = Builder::new().backoff(DEFAULT_BACKOFF_INITIAL, max, DEFAULT_BACKOFF_RESET);
/// assert!(builder.env_overrides(false).build().is_ok());
/// ```
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// The longest respawn delay.
///
/// ```
/// use regiment_core::{DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX};
/// // Doubling from 100 ms: nine doublings pass the 30 s cap.
/// assert_eq!(DEFAULT_BACKOFF_INITIAL * 2u32.pow(8), std::time::Duration::from_millis(25_600));
/// assert!(DEFAULT_BACKOFF_INITIAL * 2u32.pow(9) > DEFAULT_BACKOFF_MAX);
/// ```
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a worker must stay up for its slot's backoff to start over.
///
/// ```
/// use regiment_core::{DEFAULT_BACKOFF_MAX, DEFAULT_BACKOFF_RESET};
/// // Longer than the longest delay: a worker that crashes at every start never looks healthy.
/// assert!(DEFAULT_BACKOFF_RESET > DEFAULT_BACKOFF_MAX);
/// ```
pub const DEFAULT_BACKOFF_RESET: Duration = Duration::from_secs(60);
/// Consecutive failed starts of new-generation workers that abort a rolling restart.
///
/// ```
/// // Three failed starts in a row abort a deploy; the workers that were serving stay.
/// assert_eq!(regiment_core::DEFAULT_ROLLOUT_FAILURES, 3);
/// let builder = regiment_core::Builder::new().rollout_failure_limit(5);
/// # drop(builder);
/// ```
pub const DEFAULT_ROLLOUT_FAILURES: u32 = 3;
/// How long the last new worker of a rolling restart must serve before the rollout completes
/// and its program becomes the good one.
///
/// ```
/// // A build that crashes within 5 s of being ready is caught while the rollout is under way:
/// // its crashes abort it, and the previous program stays the good one.
/// assert_eq!(regiment_core::DEFAULT_ROLLOUT_SETTLE, std::time::Duration::from_secs(5));
/// ```
pub const DEFAULT_ROLLOUT_SETTLE: Duration = Duration::from_secs(5);
/// Interval of worker heartbeats.
///
/// ```
/// use regiment_core::{Builder, DEFAULT_HEARTBEAT};
/// // A heartbeat timeout must allow a few missed beats, never just one.
/// let builder = Builder::new().heartbeat_timeout(DEFAULT_HEARTBEAT * 10);
/// assert!(builder.env_overrides(false).build().is_ok());
/// ```
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

/// The longest duration any option accepts. Deadlines are added to the clock and delays
/// doubled: a bound keeps that arithmetic far from overflow (a panic in the master), and no
/// drain, start or backoff has a reason to last longer.
///
/// ```
/// use regiment_core::{Builder, MAX_DURATION};
/// let too_long = MAX_DURATION + std::time::Duration::from_secs(1);
/// // Refused at build, not a panic in the master later.
/// assert!(Builder::new().drain_timeout(too_long).env_overrides(false).build().is_err());
/// ```
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A hook run by the master before each spawn; see [`Builder::before_spawn`].
///
/// ```
/// use std::sync::Arc;
/// use regiment_core::{BeforeSpawn, Builder, SpawnPlan};
/// // A hook kept as a value, e.g. to share it between the builders of several services.
/// let hook: BeforeSpawn = Arc::new(|plan: &mut SpawnPlan| {
///     plan.env("SLOT", plan.slot().to_string());
///     Ok(())
/// });
/// let builder = Builder::new().before_spawn(move |plan| hook(plan));
/// # drop(builder);
/// ```
pub type BeforeSpawn = Arc<
    dyn Fn(&mut SpawnPlan) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>
        + Send
        + Sync,
>;

/// What the master is about to spawn, as seen (and adjusted) by a [`Builder::before_spawn`] hook.
///
/// ```
/// // Nothing runs yet: the master calls the hook before each spawn, in `run`.
/// let builder = regiment_core::Builder::new().before_spawn(|plan| {
///     plan.env("WORKER_LABEL", format!("{}-{}", plan.slot(), plan.generation()));
///     Ok(())
/// });
/// # drop(builder);
/// ```
#[derive(Debug)]
pub struct SpawnPlan {
    pub(crate) slot: usize,
    pub(crate) generation: u64,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) current_dir: Option<PathBuf>,
}

impl SpawnPlan {
    /// The slot the worker will take.
    ///
    /// ```
    /// let builder = regiment_core::Builder::new().before_spawn(|plan| {
    ///     // Each slot writes its own spool directory: a replacement reuses it.
    ///     plan.env("SPOOL_DIR", format!("/var/spool/app/{}", plan.slot()));
    ///     Ok(())
    /// });
    /// # drop(builder);
    /// ```
    pub fn slot(&self) -> usize {
        self.slot
    }
    /// The generation the worker will belong to.
    ///
    /// ```
    /// let builder = regiment_core::Builder::new().before_spawn(|plan| {
    ///     // Generation 1 is the start; later ones come from rolling restarts (deploys).
    ///     let deploy = plan.generation() > 1;
    ///     plan.env("APP_DEPLOYED", if deploy { "1" } else { "0" });
    ///     Ok(())
    /// });
    /// # drop(builder);
    /// ```
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// Sets an environment variable for this worker only.
    ///
    /// ```
    /// let builder = regiment_core::Builder::new().before_spawn(|plan| {
    ///     // One port per slot for a debug endpoint that cannot be shared.
    ///     plan.env("DEBUG_PORT", (9000 + plan.slot()).to_string());
    ///     Ok(())
    /// });
    /// # drop(builder);
    /// ```
    pub fn env(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> &mut Self {
        self.env.push((key.into(), value.into()));
        self
    }
    /// Runs this worker in `dir` (e.g. the release directory a deploy just switched to).
    ///
    /// ```
    /// let builder = regiment_core::Builder::new().before_spawn(|plan| {
    ///     // Resolved at each spawn: a deploy that switched the symlink is picked up.
    ///     plan.current_dir(std::fs::canonicalize("/srv/app/current")?);
    ///     Ok(())
    /// });
    /// # drop(builder);
    /// ```
    pub fn current_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.current_dir = Some(dir.into());
        self
    }
}

enum WorkerCount {
    Cpus,
    Fixed(usize),
    Computed(Box<dyn FnOnce() -> usize + Send>),
}

/// Options of a supervisor, with their defaults and environment overrides.
///
/// Every option can be overridden at start by an environment variable, so operators can change
/// them without a rebuild: `REGIMENT_WORKERS`, `REGIMENT_BIND` (comma-separated),
/// `REGIMENT_DRAIN_TIMEOUT`, `REGIMENT_START_TIMEOUT` (`30s`, `500ms`), `REGIMENT_MAX_SURGE`,
/// `REGIMENT_READINESS`, `REGIMENT_RESTART_SIGNAL` (`SIGHUP`, `SIGUSR2`, comma-separated),
/// `REGIMENT_CONTROL_SOCKET`, `REGIMENT_WORKER_USER`, `REGIMENT_WORKER_GROUP`,
/// `REGIMENT_WORKER_ENV`, `REGIMENT_ADMIN_BIND`, `REGIMENT_WATCH` (`1` or `0`).
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
    workers: WorkerCount,
    binds: Vec<String>,
    drain_timeout: Duration,
    start_timeout: Duration,
    max_surge: Option<usize>,
    backoff_initial: Duration,
    backoff_max: Duration,
    backoff_reset: Duration,
    rollout_failures: u32,
    rollout_settle: Duration,
    readiness: Readiness,
    restart_signals: Vec<Signal>,
    env: Vec<(OsString, OsString)>,
    args: Option<Vec<OsString>>,
    program: Option<PathBuf>,
    before_spawn: Option<BeforeSpawn>,
    process_name: Option<String>,
    heartbeat: Duration,
    heartbeat_timeout: Option<Duration>,
    canary: Option<crate::Canary>,
    watch_program: bool,
    /// The path, and the option that gave it (for errors).
    control_socket: Option<(PathBuf, &'static str)>,
    worker_user: Option<Requested>,
    worker_group: Option<Requested>,
    worker_env: WorkerEnv,
    /// The admin listener's address, with the option that gave it (for its errors).
    admin_bind: Option<(&'static str, String)>,
    env_overrides: bool,
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
    /// worker stayed up 60 s), readiness `listening`, rolling restart on SIGHUP and SIGUSR2,
    /// heartbeats every second and no heartbeat timeout.
    ///
    /// ```
    /// // Every option has a default: this is a working master already.
    /// let supervisor = regiment_core::Builder::new().env_overrides(false).build()?;
    /// assert!(supervisor.handle().status().workers_wanted >= 1);
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn new() -> Self {
        Self {
            workers: WorkerCount::Cpus,
            binds: Vec::new(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            start_timeout: DEFAULT_START_TIMEOUT,
            max_surge: None,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            backoff_reset: DEFAULT_BACKOFF_RESET,
            rollout_failures: DEFAULT_ROLLOUT_FAILURES,
            rollout_settle: DEFAULT_ROLLOUT_SETTLE,
            readiness: Readiness::default(),
            restart_signals: vec![Signal::SIGHUP, Signal::SIGUSR2],
            env: Vec::new(),
            args: None,
            program: None,
            before_spawn: None,
            process_name: None,
            heartbeat: DEFAULT_HEARTBEAT,
            heartbeat_timeout: None,
            canary: None,
            watch_program: false,
            control_socket: None,
            worker_user: None,
            worker_group: None,
            worker_env: WorkerEnv::Inherit,
            admin_bind: None,
            env_overrides: true,
        }
    }

    /// The number of workers (at least 1).
    ///
    /// ```
    /// use regiment_core::Builder;
    /// let supervisor = Builder::new().workers(3).env_overrides(false).build()?;
    /// assert_eq!(supervisor.handle().status().workers_wanted, 3);
    /// // Zero workers would serve nothing: refused.
    /// assert!(Builder::new().workers(0).env_overrides(false).build().is_err());
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = WorkerCount::Fixed(n);
        self
    }

    /// The number of workers, computed once when the supervisor is built.
    ///
    /// ```
    /// // Half the CPUs, leaving the rest to a database on the same host.
    /// let supervisor = regiment_core::Builder::new()
    ///     .workers_with(|| std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)))
    ///     .env_overrides(false)
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
    /// use regiment_core::Builder;
    /// // Port 0: the system picks a free port, which `listeners` reports.
    /// let supervisor = Builder::new().bind("127.0.0.1:0").env_overrides(false).build()?;
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
    /// use regiment_core::Builder;
    /// // Requests are short here: a worker still busy after 10 s is stuck, not slow.
    /// let builder = Builder::new().drain_timeout(Duration::from_secs(10));
    /// assert!(builder.env_overrides(false).build().is_ok());
    /// // Zero would kill every worker the moment it is told to drain: refused.
    /// assert!(Builder::new().drain_timeout(Duration::ZERO).env_overrides(false).build().is_err());
    /// ```
    pub fn drain_timeout(mut self, d: Duration) -> Self {
        self.drain_timeout = d;
        self
    }

    /// How long a new worker may take to become ready before it is killed.
    ///
    /// ```
    /// use std::time::Duration;
    /// // Workers load a large model before they are ready: give them two minutes.
    /// let builder = regiment_core::Builder::new().start_timeout(Duration::from_secs(120));
    /// assert!(builder.env_overrides(false).build().is_ok());
    /// ```
    pub fn start_timeout(mut self, d: Duration) -> Self {
        self.start_timeout = d;
        self
    }

    /// At most this many replacements starting at once (default 25 % of workers, at least 1).
    ///
    /// ```
    /// use regiment_core::Builder;
    /// // At most 2 extra workers (and their memory) while a rolling restart runs.
    /// assert!(Builder::new().workers(8).max_surge(2).env_overrides(false).build().is_ok());
    /// // A surge of 0 would never replace anything: refused.
    /// assert!(Builder::new().max_surge(0).env_overrides(false).build().is_err());
    /// ```
    pub fn max_surge(mut self, n: usize) -> Self {
        self.max_surge = Some(n);
        self
    }

    /// Respawn backoff: first delay, longest delay, and the time a worker must stay up for the
    /// delay to start over.
    ///
    /// Refused at build: a first delay of zero (doubled, it stays zero: a crash loop with no
    /// pause), a `reset_after` of zero (every worker would count as healthy the moment it is
    /// ready, so one that crashes soon after would always be retried after the first delay), a
    /// longest delay shorter than the first, and durations longer than [`MAX_DURATION`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use regiment_core::Builder;
    /// // Retry after 50 ms, wait at most 5 s, and forgive a worker that stayed up 2 minutes.
    /// let (ms, s) = (Duration::from_millis, Duration::from_secs);
    /// let builder = Builder::new().backoff(ms(50), s(5), s(120));
    /// assert!(builder.env_overrides(false).build().is_ok());
    /// // A longest delay shorter than the first makes no sense: refused.
    /// let builder = Builder::new().backoff(s(5), s(1), s(60));
    /// assert!(builder.env_overrides(false).build().is_err());
    /// // Forgiving a worker as soon as it is up would keep a crash loop at the first delay.
    /// let err = Builder::new().backoff(ms(50), s(5), Duration::ZERO).env_overrides(false).build();
    /// assert!(err.unwrap_err().to_string().contains("`backoff`"));
    /// ```
    pub fn backoff(mut self, initial: Duration, max: Duration, reset_after: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max;
        self.backoff_reset = reset_after;
        self
    }

    /// How long the last new worker of a rolling restart must serve before the rollout
    /// completes (default 5 s; zero: at once). New workers that crash before then count as
    /// failures of the rollout, so that a build that dies soon after it is ready never becomes
    /// the good program.
    ///
    /// ```
    /// use std::time::Duration;
    /// use regiment_core::Builder;
    /// // This service's fatal bugs show within a minute: only then is a deploy done.
    /// let builder = Builder::new().rollout_settle(Duration::from_secs(60));
    /// assert!(builder.env_overrides(false).build().is_ok());
    /// ```
    pub fn rollout_settle(mut self, d: Duration) -> Self {
        self.rollout_settle = d;
        self
    }

    /// Consecutive failed starts of new workers after which a rolling restart is aborted.
    ///
    /// ```
    /// use regiment_core::Builder;
    /// // Workers of this service are slow to start and sometimes flaky: allow 5 failures.
    /// assert!(Builder::new().rollout_failure_limit(5).env_overrides(false).build().is_ok());
    /// // A limit of 0 would abort every deploy before it starts: refused.
    /// assert!(Builder::new().rollout_failure_limit(0).env_overrides(false).build().is_err());
    /// ```
    pub fn rollout_failure_limit(mut self, n: u32) -> Self {
        self.rollout_failures = n;
        self
    }

    /// When a new worker counts as ready.
    ///
    /// ```
    /// use regiment_core::{Builder, Readiness};
    /// // Workers warm their caches first and call `worker::ready()` when done.
    /// let builder = Builder::new().readiness(Readiness::Manual);
    /// assert!(builder.env_overrides(false).build().is_ok());
    /// ```
    pub fn readiness(mut self, r: Readiness) -> Self {
        self.readiness = r;
        self
    }

    /// The signals that start a rolling restart (default SIGHUP and SIGUSR2).
    ///
    /// Any signal the master can catch and that means nothing else to it is accepted. Refused
    /// at build (under the name `restart_signals`, or `REGIMENT_RESTART_SIGNAL` for the
    /// environment override): no signal at all; SIGKILL, SIGSTOP, SIGILL, SIGFPE and SIGSEGV,
    /// which cannot be handled; SIGCHLD, which the master receives whenever a worker exits;
    /// and the signals that already stop (SIGTERM, SIGINT) or scale (SIGTTIN, SIGTTOU).
    ///
    /// ```
    /// use regiment_core::{Builder, Signal};
    /// // SIGHUP means "reload the config" to this program's users: deploy on SIGUSR2 only.
    /// let builder = Builder::new().restart_signals([Signal::SIGUSR2]);
    /// assert!(builder.env_overrides(false).build().is_ok());
    /// // No signal at all: refused, an operator could not deploy.
    /// assert!(Builder::new().restart_signals(Vec::new()).env_overrides(false).build().is_err());
    /// // SIGTERM already means stop: refused at build, with the signals that are accepted.
    /// let err = Builder::new().restart_signals([Signal::SIGTERM]).env_overrides(false).build();
    /// assert!(err.unwrap_err().to_string().contains("such as SIGHUP or SIGUSR2"));
    /// ```
    pub fn restart_signals(mut self, signals: impl IntoIterator<Item = Signal>) -> Self {
        self.restart_signals = signals.into_iter().collect();
        self
    }

    /// An environment variable for every worker, on top of the master's own environment (see
    /// [`Builder::worker_env`]); it replaces a variable of the same name the master has.
    ///
    /// ```
    /// // Only workers see these: the master itself keeps its own environment.
    /// let builder = regiment_core::Builder::new()
    ///     .env("APP_ENV", "production")
    ///     .env("RUST_LOG", "info");
    /// assert!(builder.env_overrides(false).build().is_ok());
    /// ```
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The arguments of workers (default: the master's own arguments).
    ///
    /// ```
    /// // The master is `app supervise --workers 4`; its workers run `app serve`.
    /// let builder = regiment_core::Builder::new().args(["serve"]);
    /// assert!(builder.env_overrides(false).build().is_ok());
    /// ```
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// The program to run as workers (default: this program, as it was started: the path the
    /// shell ran, found through `PATH` if it had no slash, with its symlinks kept).
    ///
    /// The path is opened when the master starts and again at each rolling restart, following
    /// its symlinks then, and workers execute the file opened, through its descriptor: a deploy
    /// that renames a new file over the path, or switches a `current` symlink, is picked up by
    /// the next rolling restart, not by a worker that merely respawns. A script (`#!`) cannot
    /// be executed that way: it is executed by path, with a warning at start.
    ///
    /// ```
    /// use regiment_core::{Builder, Error};
    /// // Checked at build: a missing program is an error before any spawn, not a crash loop.
    /// let err = Builder::new().program("/nonexistent/app").env_overrides(false).build().unwrap_err();
    /// assert!(matches!(err, Error::Program { .. }));
    /// ```
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// A hook the master runs before each spawn, e.g. to pick the release directory. An error
    /// (or a panic) counts as a failed start, retried with backoff. It runs on the supervisor's
    /// own loop: keep it quick (no network call), as nothing else is supervised while it runs.
    ///
    /// ```
    /// let builder = regiment_core::Builder::new().before_spawn(|plan| {
    ///     // Workers start in the release the `current` symlink points to now.
    ///     let release = std::fs::canonicalize("/srv/app/current")?;
    ///     plan.current_dir(release);
    ///     plan.env("WORKER_LABEL", format!("slot{}-gen{}", plan.slot(), plan.generation()));
    ///     Ok(())
    /// });
    /// # drop(builder);
    /// ```
    pub fn before_spawn<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut SpawnPlan) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>
            + Send
            + Sync
            + 'static,
    {
        self.before_spawn = Some(Arc::new(hook));
        self
    }

    /// The name workers show in `ps` as `NAME worker SLOT gen GENERATION` (default: the
    /// program's file name).
    ///
    /// ```
    /// // `ps` shows `shop worker 0 gen 1`, not the file name of a versioned binary.
    /// let builder = regiment_core::Builder::new().process_name("shop");
    /// assert!(builder.env_overrides(false).build().is_ok());
    /// ```
    pub fn process_name(mut self, name: impl Into<String>) -> Self {
        self.process_name = Some(name.into());
        self
    }

    /// The interval of worker heartbeats.
    ///
    /// ```
    /// use std::time::Duration;
    /// // Fresher figures in `Handle::status`, for one small message per worker every 250 ms.
    /// let builder = regiment_core::Builder::new().heartbeat_interval(Duration::from_millis(250));
    /// assert!(builder.env_overrides(false).build().is_ok());
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
    /// use regiment_core::Builder;
    /// // A worker whose runtime is blocked for 10 s is replaced.
    /// let builder = Builder::new().heartbeat_timeout(Duration::from_secs(10));
    /// assert!(builder.env_overrides(false).build().is_ok());
    /// // Not longer than the interval (1 s): healthy workers would be replaced. Refused.
    /// let builder = Builder::new().heartbeat_timeout(Duration::from_secs(1));
    /// assert!(builder.env_overrides(false).build().is_err());
    /// ```
    pub fn heartbeat_timeout(mut self, d: Duration) -> Self {
        self.heartbeat_timeout = Some(d);
        self
    }

    /// Rolling restarts start with a canary, judged on its 5xx ratio before the other workers
    /// are replaced (off by default). See [`crate::Canary`].
    ///
    /// ```
    /// use regiment_core::{Builder, Canary};
    /// let builder = Builder::new().workers(4).canary(Canary::new());
    /// assert!(builder.env_overrides(false).build().is_ok());
    /// ```
    pub fn canary(mut self, canary: crate::Canary) -> Self {
        self.canary = Some(canary);
        self
    }

    /// A control socket at `path`, for the `regiment` command (off by default): status,
    /// metrics, rolling restarts answered with their outcome, scale, replace, stop. The file
    /// is created with mode 0600 and only the master's user and root are served; a file left
    /// by a dead master is replaced, a live master's is never taken over.
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
        self.control_socket = Some((path.into(), "control_socket"));
        self
    }

    /// The user workers run as, by name or numeric uid (default: the master's user). A master
    /// started as root (to bind port 80, say) switches each worker, between fork and exec, to
    /// the user's group (or [`Builder::worker_group`]) with no other group, then to the user; a
    /// spawn whose switch fails fails (the worker never runs as root). Workers get the user's
    /// `HOME`, `USER` and `LOGNAME` (a configured value still wins). The program must be
    /// readable and executable by that user; the listeners are inherited, so a port below 1024
    /// or a socket file in a directory only root can enter still serves.
    ///
    /// Resolved at build: an unknown user, a uid without an entry in the user database and no
    /// group, or a master that is not root asking for another user than its own is an error.
    /// `REGIMENT_WORKER_USER` overrides it.
    ///
    /// ```
    /// use regiment_core::Builder;
    /// let builder = Builder::new().worker_user("no-such-user").env_overrides(false);
    /// let err = builder.build().unwrap_err().to_string();
    /// assert!(err.contains("`worker_user`") && err.contains("no-such-user"));
    /// ```
    pub fn worker_user(mut self, user: impl Into<String>) -> Self {
        self.worker_user = Some(Requested {
            option: "worker_user",
            value: user.into(),
        });
        self
    }

    /// The group workers run as, by name or numeric gid (default: the primary group of
    /// [`Builder::worker_user`], else the master's group). `REGIMENT_WORKER_GROUP` overrides it.
    ///
    /// ```
    /// use regiment_core::Builder;
    /// // Workers of user `www` run in group `app`, which may read the release directory.
    /// let builder = Builder::new().worker_user("www").worker_group("app");
    /// # drop(builder);
    /// ```
    pub fn worker_group(mut self, group: impl Into<String>) -> Self {
        self.worker_group = Some(Requested {
            option: "worker_group",
            value: group.into(),
        });
        self
    }

    /// The environment workers start from (default [`WorkerEnv::Inherit`], the master's).
    /// `REGIMENT_WORKER_ENV` (`inherit`, `only-configured`) overrides it.
    ///
    /// ```
    /// use regiment_core::{Builder, WorkerEnv};
    /// // Workers see APP_ENV and regiment's own variables, nothing of the master's.
    /// let builder = Builder::new().worker_env(WorkerEnv::OnlyConfigured).env("APP_ENV", "prod");
    /// assert!(builder.env_overrides(false).build().is_ok());
    /// ```
    pub fn worker_env(mut self, env: WorkerEnv) -> Self {
        self.worker_env = env;
        self
    }

    /// Serves the admin HTTP endpoints from the master on this address (off by default):
    /// `GET /metrics` (the Prometheus text format, see [`crate::Handle::metrics`]), `/status`
    /// (the [`crate::Status`] as JSON), `/healthz` (200 while the supervisor loop runs) and
    /// `/readyz` (200 while at least one worker is ready, so a rolling restart never fails a
    /// readiness probe). A TCP address (`127.0.0.1:9100`; port 0 picks one, shown in
    /// [`crate::Status::admin`]) or `unix:/path`. Bound at build; never inherited by workers.
    /// `REGIMENT_ADMIN_BIND` overrides it.
    ///
    /// ```
    /// use regiment_core::Builder;
    /// let supervisor = Builder::new().admin_bind("127.0.0.1:0").env_overrides(false).build()?;
    /// // Bound now: the port is known before `run` (the endpoints answer once it runs).
    /// let admin = supervisor.handle().status().admin.unwrap();
    /// assert!(admin.starts_with("127.0.0.1:") && !admin.ends_with(":0"));
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn admin_bind(mut self, addr: impl Into<String>) -> Self {
        self.admin_bind = Some(("admin_bind", addr.into()));
        self
    }

    /// Development reload (off by default; `REGIMENT_WATCH=1`): when the program file changes,
    /// a rebuild say, the workers roll as on SIGHUP, once the file was left alone for half a
    /// second. Each reload is logged at info with its cause. For development: in production a
    /// deploy asks for its rollout (SIGHUP, [`crate::Handle::rolling_restart_and_wait`]).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), regiment_core::Error> {
    /// // `cargo build` in another terminal reloads this server, without dropping a request.
    /// let supervisor = regiment_core::Builder::new()
    ///     .bind("127.0.0.1:3000")
    ///     .watch_program(cfg!(debug_assertions))
    ///     .build()?;
    /// supervisor.run().await
    /// # }
    /// ```
    pub fn watch_program(mut self, on: bool) -> Self {
        self.watch_program = on;
        self
    }

    /// Whether `REGIMENT_*` environment variables override the options (default true).
    ///
    /// ```
    /// // An embedded master (or a test) runs with what the code says, whatever REGIMENT_* holds.
    /// let supervisor = regiment_core::Builder::new().workers(2).env_overrides(false).build()?;
    /// assert_eq!(supervisor.handle().status().workers_wanted, 2);
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn env_overrides(mut self, on: bool) -> Self {
        self.env_overrides = on;
        self
    }

    /// Checks the options, applies environment overrides, resolves the program and binds the
    /// listeners. Nothing is spawned yet.
    ///
    /// ```
    /// use regiment_core::{Builder, Error};
    /// let supervisor = Builder::new().bind("127.0.0.1:0").env_overrides(false).build()?;
    /// // Listening before any worker runs: early clients wait in the accept queue.
    /// assert!(supervisor.handle().status().workers.is_empty());
    /// // A busy address is an error now, not once workers are up.
    /// let busy = supervisor.listeners()[0].clone();
    /// let err = Builder::new().bind(busy).env_overrides(false).build().unwrap_err();
    /// assert!(matches!(err, Error::Bind { .. }));
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn build(self) -> Result<crate::Supervisor> {
        let config = self.into_config()?;
        crate::Supervisor::new(config)
    }

    pub(crate) fn into_config(mut self) -> Result<Config> {
        let mut bind_option = "bind";
        if self.env_overrides {
            bind_option = self.apply_env_overrides()?;
        }
        let workers = match std::mem::replace(&mut self.workers, WorkerCount::Cpus) {
            WorkerCount::Cpus => std::thread::available_parallelism().map_or(1, |n| n.get()),
            WorkerCount::Fixed(n) => n,
            WorkerCount::Computed(f) => f(),
        };
        if workers == 0 {
            return Err(Error::invalid(
                "workers",
                0,
                "a number of workers of at least 1",
            ));
        }
        for (option, d) in [
            ("drain_timeout", self.drain_timeout),
            ("start_timeout", self.start_timeout),
            ("heartbeat_interval", self.heartbeat),
        ] {
            if d.is_zero() || d > MAX_DURATION {
                return Err(Error::invalid(
                    option,
                    humantime::format_duration(d),
                    "a duration above zero and at most 365 days, such as 30s",
                ));
            }
        }
        for (option, d) in [
            (
                "heartbeat_timeout",
                self.heartbeat_timeout.unwrap_or_default(),
            ),
            ("backoff", self.backoff_max),
            ("backoff", self.backoff_reset),
            ("rollout_settle", self.rollout_settle),
        ] {
            if d > MAX_DURATION {
                return Err(Error::invalid(
                    option,
                    humantime::format_duration(d),
                    "durations of at most 365 days",
                ));
            }
        }
        if self.heartbeat_timeout.is_some_and(|t| t <= self.heartbeat) {
            return Err(Error::invalid(
                "heartbeat_timeout",
                humantime::format_duration(self.heartbeat_timeout.unwrap_or_default()),
                "a duration longer than heartbeat_interval",
            ));
        }
        if self.max_surge == Some(0) {
            return Err(Error::invalid(
                "max_surge",
                0,
                "at least 1 replacement at a time",
            ));
        }
        if self.backoff_initial.is_zero() || self.backoff_max < self.backoff_initial {
            return Err(Error::invalid(
                "backoff",
                format!("{:?}..{:?}", self.backoff_initial, self.backoff_max),
                "an initial delay above zero and a maximum at least as long",
            ));
        }
        if self.backoff_reset.is_zero() {
            return Err(Error::invalid(
                "backoff",
                "reset_after 0s",
                "a reset_after above zero, such as 60s: how long a worker must stay up for its \
                 slot's delay to start over",
            ));
        }
        if self.rollout_failures == 0 {
            return Err(Error::invalid("rollout_failure_limit", 0, "at least 1"));
        }
        if self.restart_signals.is_empty() {
            return Err(Error::invalid(
                "restart_signals",
                "[]",
                "at least one signal",
            ));
        }
        if let Some(s) = self
            .restart_signals
            .iter()
            .find(|s| !is_restart_signal(**s))
        {
            return Err(Error::invalid(
                "restart_signals",
                s,
                restart_signals_expected("signals such as SIGHUP or SIGUSR2"),
            ));
        }
        let mut binds = Vec::with_capacity(self.binds.len());
        for b in &self.binds {
            binds.push(
                b.parse::<ListenAddr>()
                    .map_err(|e| Error::invalid(bind_option, b, e))?,
            );
        }
        let worker_identity =
            crate::identity::resolve(self.worker_user.take(), self.worker_group.take())?;
        let program = crate::master::program::resolve(self.program.take())?;
        let process_name = self.process_name.take().unwrap_or_else(|| {
            program
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "regiment".into())
        });
        Ok(Config {
            workers,
            binds,
            bind_option,
            drain_timeout: self.drain_timeout,
            start_timeout: self.start_timeout,
            max_surge: self.max_surge,
            backoff_initial: self.backoff_initial,
            backoff_max: self.backoff_max,
            backoff_reset: self.backoff_reset,
            rollout_failures: self.rollout_failures,
            rollout_settle: self.rollout_settle,
            readiness: self.readiness,
            restart_signals: self.restart_signals,
            env: self.env,
            args: self
                .args
                .take()
                .unwrap_or_else(|| std::env::args_os().skip(1).collect()),
            program,
            before_spawn: self.before_spawn,
            process_name,
            heartbeat: self.heartbeat,
            heartbeat_timeout: self.heartbeat_timeout,
            canary: self.canary.map(crate::Canary::check).transpose()?,
            watch_program: self.watch_program,
            control_socket: self.control_socket,
            worker_identity,
            worker_env: self.worker_env,
            admin_bind: self
                .admin_bind
                .map(|(option, addr)| parse_admin_bind(option, &addr))
                .transpose()?,
        })
    }

    /// Returns the name under which the bind addresses were given, for error messages.
    fn apply_env_overrides(&mut self) -> Result<&'static str> {
        fn get(name: &str) -> Option<String> {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty())
        }
        // Each value is checked here, under the variable's own name, so that an error names
        // what the operator actually set.
        fn duration(name: &'static str) -> Result<Option<Duration>> {
            get(name)
                .map(|v| {
                    humantime::parse_duration(v.trim())
                        .ok()
                        .filter(|d| !d.is_zero() && *d <= MAX_DURATION)
                        .ok_or_else(|| {
                            Error::invalid(
                                name,
                                &v,
                                "a duration above zero and at most 365 days, such as 30s or 500ms",
                            )
                        })
                })
                .transpose()
        }
        fn count(name: &'static str, expected: &str) -> Result<Option<usize>> {
            get(name)
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| Error::invalid(name, &v, expected))
                })
                .transpose()
        }
        let mut bind_option = "bind";
        if let Some(n) = count("REGIMENT_WORKERS", "a number of workers of at least 1")? {
            self.workers = WorkerCount::Fixed(n);
        }
        if let Some(v) = get("REGIMENT_BIND") {
            self.binds = v
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            bind_option = "REGIMENT_BIND";
        }
        if let Some(d) = duration("REGIMENT_DRAIN_TIMEOUT")? {
            self.drain_timeout = d;
        }
        if let Some(d) = duration("REGIMENT_START_TIMEOUT")? {
            self.start_timeout = d;
        }
        // Zero is a valid settle (complete at once), which `duration` refuses.
        if let Some(v) = get("REGIMENT_ROLLOUT_SETTLE") {
            self.rollout_settle = humantime::parse_duration(v.trim())
                .ok()
                .filter(|d| *d <= MAX_DURATION)
                .ok_or_else(|| {
                    Error::invalid(
                        "REGIMENT_ROLLOUT_SETTLE",
                        &v,
                        "a duration of at most 365 days, such as 5s or 0s",
                    )
                })?;
        }
        if let Some(n) = count(
            "REGIMENT_MAX_SURGE",
            "a number of replacements of at least 1",
        )? {
            self.max_surge = Some(n);
        }
        if let Some(v) = get("REGIMENT_READINESS") {
            self.readiness = v
                .parse()
                .map_err(|e| Error::invalid("REGIMENT_READINESS", &v, e))?;
        }
        if let Some(v) = get("REGIMENT_RESTART_SIGNAL") {
            self.restart_signals = parse_restart_signals("REGIMENT_RESTART_SIGNAL", &v)?;
        }
        if let Some(v) = get("REGIMENT_CONTROL_SOCKET") {
            self.control_socket = Some((PathBuf::from(v.trim()), "REGIMENT_CONTROL_SOCKET"));
        }
        if let Some(v) = get("REGIMENT_WATCH") {
            self.watch_program = parse_switch(&v)
                .ok_or_else(|| Error::invalid("REGIMENT_WATCH", &v, SWITCH_EXPECTED))?;
        }
        self.canary = crate::Canary::from_env(self.canary)?;
        for (name, field) in [
            ("REGIMENT_WORKER_USER", &mut self.worker_user),
            ("REGIMENT_WORKER_GROUP", &mut self.worker_group),
        ] {
            if let Some(value) = get(name) {
                *field = Some(Requested {
                    option: name,
                    value,
                });
            }
        }
        if let Some(v) = get("REGIMENT_WORKER_ENV") {
            self.worker_env = v.parse().map_err(|_| {
                Error::invalid("REGIMENT_WORKER_ENV", &v, "one of inherit, only-configured")
            })?;
        }
        if let Some(v) = get("REGIMENT_ADMIN_BIND") {
            self.admin_bind = Some(("REGIMENT_ADMIN_BIND", v.trim().to_owned()));
        }
        Ok(bind_option)
    }
}

/// Comma-separated restart signals, as `REGIMENT_RESTART_SIGNAL` gives them; an error names
/// `option` and the whole value.
fn parse_restart_signals(option: &'static str, v: &str) -> Result<Vec<Signal>> {
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

/// What an on/off variable (`REGIMENT_WATCH`) accepts.
const SWITCH_EXPECTED: &str = "1 or 0 (also true/false, yes/no, on/off)";

fn parse_switch(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_signal(s: &str) -> Option<Signal> {
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().ok()
}

/// The admin listener's address, checked, with the option that gave it.
pub(crate) struct AdminBind {
    pub option: &'static str,
    pub addr: ListenAddr,
}

fn parse_admin_bind(option: &'static str, addr: &str) -> Result<AdminBind> {
    let addr = addr.parse::<ListenAddr>().map_err(|e| {
        Error::invalid(
            option,
            addr,
            format!("an address for the admin endpoints, HOST:PORT or unix:PATH ({e})"),
        )
    })?;
    Ok(AdminBind { option, addr })
}

/// The checked options a supervisor runs with.
pub(crate) struct Config {
    pub workers: usize,
    pub binds: Vec<ListenAddr>,
    pub bind_option: &'static str,
    pub drain_timeout: Duration,
    pub start_timeout: Duration,
    pub max_surge: Option<usize>,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub backoff_reset: Duration,
    pub rollout_failures: u32,
    pub rollout_settle: Duration,
    pub readiness: Readiness,
    pub restart_signals: Vec<Signal>,
    pub env: Vec<(OsString, OsString)>,
    pub args: Vec<OsString>,
    pub program: PathBuf,
    pub before_spawn: Option<BeforeSpawn>,
    pub process_name: String,
    pub heartbeat: Duration,
    pub heartbeat_timeout: Option<Duration>,
    pub canary: Option<crate::master::CanaryConfig>,
    pub watch_program: bool,
    pub control_socket: Option<(PathBuf, &'static str)>,
    /// Who workers run as; `None`: as the master.
    pub worker_identity: Option<WorkerIdentity>,
    pub worker_env: WorkerEnv,
    pub admin_bind: Option<AdminBind>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(b: Builder) -> String {
        match b.env_overrides(false).into_config() {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn invalid_options_name_the_option_and_what_it_accepts() {
        let e = err(Builder::new().workers(0));
        assert!(e.contains("`workers`") && e.contains("at least 1"), "{e}");
        let e = err(Builder::new().workers(1).drain_timeout(Duration::ZERO));
        assert!(
            e.contains("`drain_timeout`") && e.contains("above zero"),
            "{e}"
        );
        let e = err(Builder::new().workers(1).start_timeout(Duration::ZERO));
        assert!(e.contains("`start_timeout`"), "{e}");
        let e = err(Builder::new()
            .workers(1)
            .start_timeout(Duration::from_secs(400 * 24 * 3600)));
        assert!(
            e.contains("`start_timeout`") && e.contains("at most 365 days"),
            "{e}"
        );
        let e = err(Builder::new().workers(1).backoff(
            Duration::from_millis(100),
            Duration::MAX,
            Duration::from_secs(60),
        ));
        assert!(e.contains("`backoff`"), "{e}");
        let e = err(Builder::new().workers(1).max_surge(0));
        assert!(e.contains("`max_surge`"), "{e}");
        let e = err(Builder::new().workers(1).bind("nowhere at all"));
        assert!(
            e.contains("`bind`") && e.contains("nowhere at all") && e.contains("HOST:PORT"),
            "{e}"
        );
    }

    #[test]
    fn restart_signals_that_cannot_roll_the_workers_are_refused() {
        for refused in [
            Signal::SIGKILL,
            Signal::SIGSTOP,
            Signal::SIGILL,
            Signal::SIGFPE,
            Signal::SIGSEGV,
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGTTIN,
            Signal::SIGTTOU,
        ] {
            let e = err(Builder::new()
                .workers(1)
                .restart_signals([Signal::SIGHUP, refused]));
            // The value named is the signal refused, not the whole list.
            assert!(
                e.contains("`restart_signals`")
                    && e.contains(&format!("{:?}", refused.as_str()))
                    && e.contains("such as SIGHUP or SIGUSR2"),
                "{e}"
            );
        }
        let e = err(Builder::new().workers(1).restart_signals([]));
        assert!(e.contains("`restart_signals`"), "{e}");
        // Any other signal a process can catch is fine.
        for fine in [Signal::SIGHUP, Signal::SIGUSR1, Signal::SIGWINCH] {
            let config = Builder::new()
                .workers(1)
                .restart_signals([fine])
                .env_overrides(false)
                .into_config();
            assert!(config.is_ok(), "{fine} refused");
        }
    }

    #[test]
    fn the_restart_signal_variable_is_checked_under_its_own_name() {
        let e = parse_restart_signals("REGIMENT_RESTART_SIGNAL", "SIGHUP, kill")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`REGIMENT_RESTART_SIGNAL`")
                && e.contains("\"SIGHUP, kill\"")
                && e.contains("such as SIGHUP,SIGUSR2")
                && e.contains("SIGKILL"),
            "{e}"
        );
        for refused in ["SIGTERM", "int", "SIGCHLD", "SIGNOPE", ""] {
            assert!(
                parse_restart_signals("REGIMENT_RESTART_SIGNAL", refused).is_err(),
                "{refused:?} accepted"
            );
        }
        assert_eq!(
            parse_restart_signals("REGIMENT_RESTART_SIGNAL", "hup, SIGWINCH").unwrap(),
            [Signal::SIGHUP, Signal::SIGWINCH]
        );
    }

    #[test]
    fn the_admin_address_is_checked_under_the_name_that_gave_it() {
        let e = err(Builder::new().workers(1).admin_bind("nowhere"));
        assert!(
            e.contains("`admin_bind`") && e.contains("\"nowhere\"") && e.contains("HOST:PORT"),
            "{e}"
        );
        let e = parse_admin_bind("REGIMENT_ADMIN_BIND", "localhost")
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("`REGIMENT_ADMIN_BIND`"), "{e}");
        let ok = parse_admin_bind("REGIMENT_ADMIN_BIND", "unix:/run/a.sock").unwrap();
        assert_eq!(ok.addr, ListenAddr::Unix("/run/a.sock".into()));
    }

    #[test]
    fn a_backoff_that_never_resets_is_refused() {
        let e = err(Builder::new().workers(1).backoff(
            Duration::from_millis(100),
            Duration::from_secs(30),
            Duration::ZERO,
        ));
        assert!(e.contains("`backoff`") && e.contains("above zero"), "{e}");
    }

    #[test]
    fn the_worker_count_can_be_computed_at_start() {
        let c = Builder::new()
            .workers_with(|| 3)
            .env_overrides(false)
            .into_config()
            .unwrap();
        assert_eq!(c.workers, 3);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let c = Builder::new().env_overrides(false).into_config().unwrap();
        assert_eq!(c.workers, cpus, "one worker per CPU by default");
    }

    #[test]
    fn the_watch_switch_reads_the_usual_spellings_and_nothing_else() {
        for on in ["1", "true", "YES", " on "] {
            assert_eq!(parse_switch(on), Some(true), "{on}");
        }
        for off in ["0", "False", "no", "OFF"] {
            assert_eq!(parse_switch(off), Some(false), "{off}");
        }
        assert_eq!(parse_switch("2"), None);
        assert_eq!(parse_switch("watch"), None);
        let e = Error::invalid("REGIMENT_WATCH", "2", SWITCH_EXPECTED).to_string();
        assert!(
            e.contains("`REGIMENT_WATCH`") && e.contains("1 or 0"),
            "{e}"
        );
    }

    #[test]
    fn parses_signal_names() {
        assert_eq!(parse_signal("hup"), Some(Signal::SIGHUP));
        assert_eq!(parse_signal("SIGUSR2"), Some(Signal::SIGUSR2));
        assert_eq!(parse_signal("SIGNOPE"), None);
    }
}
