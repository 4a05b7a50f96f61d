//! The defaults of the [`Builder`](crate::Builder)'s options, in one place: those that are
//! numbers or durations are the constants below, which the builder starts from. The others
//! are said where they are chosen: one worker per available CPU
//! ([`Builder::workers`](crate::Builder::workers)), no listener, a surge of 25 % of the workers
//! (at least 1), no heartbeat timeout, no rollout timeout (derived at each rollout), readiness
//! [`Readiness::Listening`](crate::Readiness::Listening), workers that inherit the master's
//! environment ([`WorkerEnv::Inherit`](crate::WorkerEnv::Inherit)), no canary, no control
//! socket nor admin listener, the program file not watched, and no memory budget.
//!
//! The bounds every option is held to are not defaults: they are [`crate::MAX_WORKERS`] and
//! [`crate::MAX_DURATION`].
//!
//! ```
//! use regiment_core::{Builder, Canary, EnvOverrides, defaults};
//! // Twice the default drain deadline, and a canary judged over twice its default window.
//! let canary = Canary::new().window(defaults::CANARY_WINDOW * 2);
//! let builder = Builder::new().drain_timeout(defaults::DRAIN_TIMEOUT * 2).canary(canary);
//! assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
//! ```

use std::time::Duration;

use nix::sys::signal::Signal;

/// The default drain deadline: how long a worker has to finish after `drain`.
///
/// ```
/// use std::time::Duration;
/// // Long enough for a slow upload; a service of quick requests can ask for less.
/// assert_eq!(regiment_core::defaults::DRAIN_TIMEOUT, Duration::from_secs(30));
/// let builder = regiment_core::Builder::new().drain_timeout(Duration::from_secs(5));
/// # drop(builder);
/// ```
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the master may take to read a report of a worker before the SIGKILL it decided
/// (its start timeout or drain deadline passed): see
/// [`Builder::kill_report_timeout`](crate::Builder::kill_report_timeout).
///
/// ```
/// use std::time::Duration;
/// // The kill comes at most this much later than decided.
/// assert_eq!(regiment_core::defaults::KILL_REPORT_TIMEOUT, Duration::from_secs(1));
/// ```
pub const KILL_REPORT_TIMEOUT: Duration = Duration::from_secs(1);
/// The default start timeout: how long a new worker has to become ready.
///
/// ```
/// use std::time::Duration;
/// // A worker that warms big caches before it is ready may need more.
/// assert_eq!(regiment_core::defaults::START_TIMEOUT, Duration::from_secs(30));
/// let builder = regiment_core::Builder::new().start_timeout(Duration::from_secs(120));
/// # drop(builder);
/// ```
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The first respawn delay after a crash or a failed start.
///
/// ```
/// use std::time::Duration;
/// use regiment_core::defaults::{BACKOFF_INITIAL, BACKOFF_RESET};
/// use regiment_core::{Builder, EnvOverrides};
/// // Keep the defaults but never wait more than 5 s between respawns.
/// let max = Duration::from_secs(5);
/// let builder = Builder::new().backoff(BACKOFF_INITIAL, max, BACKOFF_RESET);
/// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
/// ```
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// The longest respawn delay.
///
/// ```
/// use regiment_core::defaults::{BACKOFF_INITIAL, BACKOFF_MAX};
/// // Doubling from 100 ms: nine doublings pass the 30 s cap.
/// assert_eq!(BACKOFF_INITIAL * 2u32.pow(8), std::time::Duration::from_millis(25_600));
/// assert!(BACKOFF_INITIAL * 2u32.pow(9) > BACKOFF_MAX);
/// ```
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a worker must stay up for its slot's backoff to start over.
///
/// ```
/// use regiment_core::defaults::{BACKOFF_MAX, BACKOFF_RESET};
/// // Longer than the longest delay: a worker that crashes at every start never looks healthy.
/// assert!(BACKOFF_RESET > BACKOFF_MAX);
/// ```
pub const BACKOFF_RESET: Duration = Duration::from_secs(60);
/// Consecutive failed starts of new-generation workers that abort a rolling restart.
///
/// ```
/// // Three failed starts in a row abort a deploy; the workers that were serving stay.
/// assert_eq!(regiment_core::defaults::ROLLOUT_FAILURE_LIMIT, 3);
/// let builder = regiment_core::Builder::new().rollout_failure_limit(5);
/// # drop(builder);
/// ```
pub const ROLLOUT_FAILURE_LIMIT: u32 = 3;
/// How long the last new worker of a rolling restart must serve before the rollout completes
/// and its program becomes the good one.
///
/// ```
/// // A build that crashes within 5 s of being ready is caught while the rollout is under way:
/// // its crashes abort it, and the previous program stays the good one.
/// assert_eq!(regiment_core::defaults::ROLLOUT_SETTLE, std::time::Duration::from_secs(5));
/// ```
pub const ROLLOUT_SETTLE: Duration = Duration::from_secs(5);
/// Interval of worker heartbeats.
///
/// ```
/// use regiment_core::defaults::HEARTBEAT_INTERVAL;
/// use regiment_core::{Builder, EnvOverrides};
/// // A heartbeat timeout must allow a few missed beats, never just one.
/// let builder = Builder::new().heartbeat_timeout(HEARTBEAT_INTERVAL * 10);
/// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
/// ```
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// How long a worker judged unresponsive (its heartbeats overdue) is given to finish once its
/// replacement serves, before it is killed: its drain deadline, when shorter than
/// [`DRAIN_TIMEOUT`]. A blocked runtime drains nothing; waiting longer only holds the
/// connections it accepted.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(regiment_core::defaults::UNRESPONSIVE_GRACE, Duration::from_secs(2));
/// ```
pub const UNRESPONSIVE_GRACE: Duration = Duration::from_secs(2);

/// The signals that start a rolling restart ([`crate::Builder::restart_signals`]).
pub const RESTART_SIGNALS: [Signal; 1] = [Signal::SIGHUP];

/// The signal that upgrades the master in place (`regiment upgrade`, [`crate::Handle::upgrade`]),
/// as in nginx, unicorn, gunicorn and Puma. Not an option: a deploy tool sends it to any master.
pub const UPGRADE_SIGNAL: Signal = Signal::SIGUSR2;

/// How many workers a canary replaces ([`crate::Canary::workers`]).
pub const CANARY_WORKERS: usize = 1;
/// How long a canary serves before it is judged ([`crate::Canary::window`]).
pub const CANARY_WINDOW: Duration = Duration::from_secs(30);
/// How far above the old generation's failure ratio a canary's may be, as a fraction of the
/// requests: one point ([`crate::Canary::max_error_ratio`]).
pub const CANARY_MAX_ERROR_RATIO: f64 = 0.01;
/// How many requests a canary must answer in its window to be judged
/// ([`crate::Canary::min_requests`]).
pub const CANARY_MIN_REQUESTS: u64 = 20;
