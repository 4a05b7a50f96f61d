//! Which environment workers start from: the option [`WorkerEnv`], what they inherit of the
//! master's.

use std::fmt;
use std::str::FromStr;

/// The environment a worker starts from, before the variables configured with
/// [`crate::Builder::env`] and [`crate::SpawnPlan::env`] and regiment's own (see
/// [`crate::worker_vars`]) are added.
///
/// ```
/// use regiment_core::{Builder, EnvOverrides, WorkerEnv};
/// // Secrets the master was started with (a deploy tool's token) stay in the master.
/// let builder = Builder::new()
///     .worker_env(WorkerEnv::OnlyConfigured)
///     .env("PATH", "/usr/bin:/bin")
///     .env("DATABASE_URL", "postgres://app@db/app");
/// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
/// // `REGIMENT_WORKER_ENV` takes the same names.
/// assert_eq!("only-configured".parse(), Ok(WorkerEnv::OnlyConfigured));
/// assert!("clean".parse::<WorkerEnv>().unwrap_err().contains("inherit, only-configured"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WorkerEnv {
    /// The master's environment, less the variables regiment sets itself (`LISTEN_*`,
    /// `REGIMENT_*` of the worker contract) and the service manager's (`NOTIFY_SOCKET`,
    /// `WATCHDOG_*`).
    #[default]
    Inherit,
    /// Nothing of the master's: only the configured variables, regiment's own and, when workers
    /// run as another user ([`crate::Builder::worker_user`]), that user's `HOME`, `USER` and
    /// `LOGNAME`. Not even `PATH`: configure it if workers run other programs.
    ///
    /// Regiment's own are the variables the master sets for each worker ([`crate::worker_vars`],
    /// `LISTEN_*`) and those of the master's environment that workers read themselves:
    /// `REGIMENT_HEADER_READ_TIMEOUT`, `REGIMENT_IDLE_GRACE` and `REGIMENT_HTTP2_KEEP_ALIVE`
    /// (regiment-axum's HTTP options), so that an option set for the master in a unit file
    /// reaches its workers. No other `REGIMENT_*` variable of the master's is passed on.
    OnlyConfigured,
}

impl WorkerEnv {
    /// The name `REGIMENT_WORKER_ENV` takes.
    ///
    /// ```
    /// use regiment_core::WorkerEnv;
    /// assert_eq!(WorkerEnv::Inherit.as_str(), "inherit");
    /// assert_eq!(WorkerEnv::OnlyConfigured.as_str().parse(), Ok(WorkerEnv::OnlyConfigured));
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerEnv::Inherit => "inherit",
            WorkerEnv::OnlyConfigured => "only-configured",
        }
    }
}

impl fmt::Display for WorkerEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkerEnv {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "inherit" => Ok(WorkerEnv::Inherit),
            "only-configured" => Ok(WorkerEnv::OnlyConfigured),
            other => Err(format!(
                "`{other}` is not a worker environment; expected one of inherit, only-configured"
            )),
        }
    }
}
