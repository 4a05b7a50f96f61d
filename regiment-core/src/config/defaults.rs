//! The defaults of the options, and the bound on durations.

use std::time::Duration;

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
/// use regiment_core::{Builder, DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_RESET, EnvOverrides};
/// // Keep the defaults but never wait more than 5 s between respawns.
/// let max = Duration::from_secs(5);
/// let builder = Builder::new().backoff(DEFAULT_BACKOFF_INITIAL, max, DEFAULT_BACKOFF_RESET);
/// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
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
/// use regiment_core::{Builder, DEFAULT_HEARTBEAT, EnvOverrides};
/// // A heartbeat timeout must allow a few missed beats, never just one.
/// let builder = Builder::new().heartbeat_timeout(DEFAULT_HEARTBEAT * 10);
/// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
/// ```
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

/// The most workers a master runs, however it is asked: [`crate::Builder::workers`] (and
/// `REGIMENT_WORKERS`), SIGTTIN, [`crate::Handle::scale_to`] and `regiment scale`. A typo
/// (`REGIMENT_WORKERS=10000`), a key held down on a script sending SIGTTIN, must not fork
/// thousands of processes; one host has no use for more.
///
/// ```
/// use regiment_core::{Builder, EnvOverrides, MAX_WORKERS};
/// assert_eq!(MAX_WORKERS, 1024);
/// // Refused at build, naming the option.
/// let err = Builder::new().workers(MAX_WORKERS + 1).env_overrides(EnvOverrides::Ignore).build();
/// assert!(err.unwrap_err().to_string().contains("`workers`"));
/// ```
pub const MAX_WORKERS: usize = 1024;

/// The longest duration any option accepts. Deadlines are added to the clock and delays
/// doubled: a bound keeps that arithmetic far from overflow (a panic in the master), and no
/// drain, start or backoff has a reason to last longer.
///
/// ```
/// use regiment_core::{Builder, EnvOverrides, MAX_DURATION};
/// let too_long = MAX_DURATION + std::time::Duration::from_secs(1);
/// // Refused at build, not a panic in the master later.
/// let builder = Builder::new().drain_timeout(too_long);
/// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_err());
/// ```
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
