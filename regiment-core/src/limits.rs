//! The bounds every option is held to, whoever asks: the builder, an environment variable, a
//! signal or the control socket. Not defaults: no option may pass them.

use std::time::Duration;

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
