//! Options of a supervisor: the [`Builder`], its defaults and its environment overrides.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::error::{Error, Result};
use crate::listen::ListenAddr;
use crate::readiness::Readiness;

/// The default drain deadline: how long a worker has to finish after `drain`.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The default start timeout: how long a new worker has to become ready.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);
/// The first respawn delay after a crash or a failed start.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// The longest respawn delay.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a worker must stay up for its slot's backoff to start over.
pub const DEFAULT_BACKOFF_RESET: Duration = Duration::from_secs(60);
/// Consecutive failed starts of new-generation workers that abort a rolling restart.
pub const DEFAULT_ROLLOUT_FAILURES: u32 = 3;
/// Interval of worker heartbeats.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

/// The longest duration any option accepts. Deadlines are added to the clock and delays
/// doubled: a bound keeps that arithmetic far from overflow (a panic in the master), and no
/// drain, start or backoff has a reason to last longer.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A hook run by the master before each spawn; see [`Builder::before_spawn`].
pub type BeforeSpawn = Arc<
    dyn Fn(&mut SpawnPlan) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>
        + Send
        + Sync,
>;

/// What the master is about to spawn, as seen (and adjusted) by a [`Builder::before_spawn`] hook.
#[derive(Debug)]
pub struct SpawnPlan {
    pub(crate) slot: usize,
    pub(crate) generation: u64,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) current_dir: Option<PathBuf>,
}

impl SpawnPlan {
    /// The slot the worker will take.
    pub fn slot(&self) -> usize {
        self.slot
    }
    /// The generation the worker will belong to.
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// Sets an environment variable for this worker only.
    pub fn env(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> &mut Self {
        self.env.push((key.into(), value.into()));
        self
    }
    /// Runs this worker in `dir` (e.g. the release directory a deploy just switched to).
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
/// `REGIMENT_READINESS`, `REGIMENT_RESTART_SIGNAL` (`SIGHUP`, `SIGUSR2`, comma-separated).
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
    readiness: Readiness,
    restart_signals: Vec<Signal>,
    env: Vec<(OsString, OsString)>,
    args: Option<Vec<OsString>>,
    program: Option<PathBuf>,
    before_spawn: Option<BeforeSpawn>,
    process_name: Option<String>,
    heartbeat: Duration,
    heartbeat_timeout: Option<Duration>,
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
            readiness: Readiness::default(),
            restart_signals: vec![Signal::SIGHUP, Signal::SIGUSR2],
            env: Vec::new(),
            args: None,
            program: None,
            before_spawn: None,
            process_name: None,
            heartbeat: DEFAULT_HEARTBEAT,
            heartbeat_timeout: None,
            env_overrides: true,
        }
    }

    /// The number of workers (at least 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = WorkerCount::Fixed(n);
        self
    }

    /// The number of workers, computed once when the supervisor is built.
    pub fn workers_with(mut self, f: impl FnOnce() -> usize + Send + 'static) -> Self {
        self.workers = WorkerCount::Computed(Box::new(f));
        self
    }

    /// Adds a listener: `127.0.0.1:3000`, `[::]:80`, `unix:/run/app.sock`. May be repeated.
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.binds.push(addr.into());
        self
    }

    /// How long a draining worker may take before it is killed with SIGKILL.
    pub fn drain_timeout(mut self, d: Duration) -> Self {
        self.drain_timeout = d;
        self
    }

    /// How long a new worker may take to become ready before it is killed.
    pub fn start_timeout(mut self, d: Duration) -> Self {
        self.start_timeout = d;
        self
    }

    /// At most this many replacements starting at once (default 25 % of workers, at least 1).
    pub fn max_surge(mut self, n: usize) -> Self {
        self.max_surge = Some(n);
        self
    }

    /// Respawn backoff: first delay, longest delay, and the time a worker must stay up for the
    /// delay to start over.
    pub fn backoff(mut self, initial: Duration, max: Duration, reset_after: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max;
        self.backoff_reset = reset_after;
        self
    }

    /// Consecutive failed starts of new workers after which a rolling restart is aborted.
    pub fn rollout_failure_limit(mut self, n: u32) -> Self {
        self.rollout_failures = n;
        self
    }

    /// When a new worker counts as ready.
    pub fn readiness(mut self, r: Readiness) -> Self {
        self.readiness = r;
        self
    }

    /// The signals that start a rolling restart (default SIGHUP and SIGUSR2).
    pub fn restart_signals(mut self, signals: impl IntoIterator<Item = Signal>) -> Self {
        self.restart_signals = signals.into_iter().collect();
        self
    }

    /// An environment variable for every worker (on top of the master's own environment).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The arguments of workers (default: the master's own arguments).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// The program to run as workers (default: this program, as it was started: a symlink in
    /// the path is followed anew at each spawn, so a deploy that switches it is picked up).
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// A hook the master runs before each spawn, e.g. to pick the release directory. An error
    /// counts as a failed start (retried with backoff).
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
    pub fn process_name(mut self, name: impl Into<String>) -> Self {
        self.process_name = Some(name.into());
        self
    }

    /// The interval of worker heartbeats.
    pub fn heartbeat_interval(mut self, d: Duration) -> Self {
        self.heartbeat = d;
        self
    }

    /// Replace a ready worker that sent nothing for this long (a blocked runtime). Off by
    /// default. It applies only to workers that have sent at least one heartbeat
    /// ([`crate::worker::start_heartbeat`], which regiment-axum's server calls), so a worker
    /// that never sends any is not replaced for its silence.
    pub fn heartbeat_timeout(mut self, d: Duration) -> Self {
        self.heartbeat_timeout = Some(d);
        self
    }

    /// Whether `REGIMENT_*` environment variables override the options (default true).
    pub fn env_overrides(mut self, on: bool) -> Self {
        self.env_overrides = on;
        self
    }

    /// Checks the options, applies environment overrides, resolves the program and binds the
    /// listeners. Nothing is spawned yet.
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
        let mut binds = Vec::with_capacity(self.binds.len());
        for b in &self.binds {
            binds.push(
                b.parse::<ListenAddr>()
                    .map_err(|e| Error::invalid(bind_option, b, e))?,
            );
        }
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
            self.restart_signals = v
                .split(',')
                .map(|s| {
                    parse_signal(s.trim()).ok_or_else(|| {
                        Error::invalid(
                            "REGIMENT_RESTART_SIGNAL",
                            &v,
                            "signal names such as SIGHUP,SIGUSR2",
                        )
                    })
                })
                .collect::<Result<_>>()?;
        }
        Ok(bind_option)
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
    pub readiness: Readiness,
    pub restart_signals: Vec<Signal>,
    pub env: Vec<(OsString, OsString)>,
    pub args: Vec<OsString>,
    pub program: PathBuf,
    pub before_spawn: Option<BeforeSpawn>,
    pub process_name: String,
    pub heartbeat: Duration,
    pub heartbeat_timeout: Option<Duration>,
}

impl Config {
    /// `max_surge`, or 25 % of `workers`, at least 1.
    pub fn surge(&self, workers: usize) -> usize {
        self.max_surge.unwrap_or((workers / 4).max(1))
    }
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
    fn surge_defaults_to_a_quarter_at_least_one() {
        let c = Builder::new()
            .workers(8)
            .env_overrides(false)
            .into_config()
            .unwrap();
        assert_eq!(c.surge(8), 2);
        assert_eq!(c.surge(3), 1);
        assert_eq!(c.surge(1), 1);
    }

    #[test]
    fn parses_signal_names() {
        assert_eq!(parse_signal("hup"), Some(Signal::SIGHUP));
        assert_eq!(parse_signal("SIGUSR2"), Some(Signal::SIGUSR2));
        assert_eq!(parse_signal("SIGNOPE"), None);
    }
}
