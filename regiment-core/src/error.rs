//! Errors of configuration and start-up.

use std::io;

/// Why a supervisor could not be built or run.
///
/// Later releases may add variants: a `match` needs a `_` arm.
///
/// ```
/// use regiment_core::{Builder, EnvOverrides, Error};
/// let err = Builder::new().workers(0).env_overrides(EnvOverrides::Ignore).build().unwrap_err();
/// // The error names the option, so an operator knows what to fix.
/// assert!(matches!(err, Error::InvalidOption { option: "workers", .. }));
/// assert!(err.to_string().contains("from 1 to 1024"));
/// let exit_code = match err {
///     Error::InvalidOption { .. } | Error::Bind { .. } => 78, // EX_CONFIG: fix and retry
///     _ => 1,
/// };
/// assert_eq!(exit_code, 78);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option has a value it cannot take. Names the option and what it accepts.
    #[error("invalid value {value:?} for option `{option}`: expected {expected}")]
    InvalidOption {
        /// The option, as the builder method or environment variable spells it.
        option: &'static str,
        /// The value given.
        value: String,
        /// What the option accepts.
        expected: String,
    },
    /// A listener could not be bound. No worker has been started.
    #[error("cannot bind option `{option}` address {addr}: {source}")]
    Bind {
        /// `bind` or `REGIMENT_BIND`.
        option: &'static str,
        /// The address that failed.
        addr: String,
        /// The system's refusal: address in use, permission denied (a port below 1024), ...
        #[source]
        source: io::Error,
    },
    /// The program to run as workers could not be found.
    #[error("cannot resolve the worker program {path:?}: {source}")]
    Program {
        /// The path tried.
        path: std::path::PathBuf,
        /// Not found, not executable, ...
        #[source]
        source: io::Error,
    },
    /// This process was executed by an upgrade of the master in place and cannot take over,
    /// and there is no way back (it is the way back already): the workers it was handed see
    /// their channels close and exit.
    #[error("this master was executed by an upgrade in place and cannot take over: {why}")]
    TakeOver {
        /// Why, and why there is no way back.
        why: String,
    },
    /// Another I/O failure of the master, with what it was doing.
    #[error("{context}: {source}")]
    Io {
        /// What failed.
        context: &'static str,
        /// The system's error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn invalid(
        option: &'static str,
        value: impl ToString,
        expected: impl Into<String>,
    ) -> Self {
        Error::InvalidOption {
            option,
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
///
/// ```
/// use regiment_core::{Builder, EnvOverrides};
/// fn supervisor() -> regiment_core::Result<regiment_core::Supervisor> {
///     Builder::new().env_overrides(EnvOverrides::Ignore).build()
/// }
/// assert!(supervisor().is_ok());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;
