//! Why a server could not start.

/// Why [`crate::serve`] (or another `serve` form) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The supervisor could not be built or run (bad option, address in use, ...).
    #[error(transparent)]
    Core(#[from] regiment_core::Error),
    /// An HTTP option has a value it cannot take.
    #[error("invalid value {value:?} for option `{option}`: expected {expected}")]
    InvalidOption {
        /// The option, as the builder method or environment variable spells it.
        option: &'static str,
        /// The value given.
        value: String,
        /// What the option accepts.
        expected: &'static str,
    },
    /// The master has no address to listen on: an HTTP server needs at least one.
    #[error(
        "no address to listen on: give Server::bind, a bind on the regiment_core::Builder, or REGIMENT_BIND"
    )]
    NoBindAddress,
    /// A worker found no listener to serve: the master was configured without an address.
    #[error("this worker inherited no listener: give the master at least one bind address")]
    NoListeners,
    /// A worker's drain deadline was near with connections still open: the worker gave up on
    /// them, a margin (a tenth of the drain, at most 1 s) before its master would have killed
    /// it, and logged what they were (peer address and state); they are cut as it exits, and
    /// any request on them lost. Returned by the worker's `serve`, once the worker told its
    /// master, which books the exit as a drain given up (its `exited` event and log say with
    /// how many requests in flight, counted as failed) whatever status the process exits with.
    /// Exit with [`Error::exit_code`] so that service managers and logs see it too (`exit 75`),
    /// not a clean exit nor a kill.
    #[error("drain deadline near with {open} connection(s) still open")]
    DrainDeadline {
        /// Connections still open at the deadline.
        open: usize,
    },
    /// A new worker did not pass its [`crate::HealthCheck`] in time: it exits before it is
    /// ready, which its master counts as a failed start.
    #[error("{0}")]
    HealthCheck(String),
    /// A worker could not take or register its listeners.
    #[error("{context}: {source}")]
    Io {
        /// What failed.
        context: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The exit status [`Error::exit_code`] gives to [`Error::DrainDeadline`]: a drain that did not
/// end before its deadline (EX_TEMPFAIL of sysexits.h).
const DRAIN_DEADLINE_EXIT_CODE: u8 = 75;

impl Error {
    /// The process exit status this error calls for: 75 (EX_TEMPFAIL) for
    /// [`Error::DrainDeadline`], so that a worker whose drain got stuck shows as such in the
    /// master's `exited` event and in service managers; 1 for every other error.
    ///
    /// ```no_run
    /// # async fn run() -> std::process::ExitCode {
    /// let app = axum::Router::new();
    /// match regiment_axum::serve(app).await {
    ///     Ok(()) => std::process::ExitCode::SUCCESS,
    ///     Err(e) => {
    ///         eprintln!("{e}");
    ///         std::process::ExitCode::from(e.exit_code())
    ///     }
    /// }
    /// # }
    /// ```
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::DrainDeadline { .. } => DRAIN_DEADLINE_EXIT_CODE,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stuck_drain_has_its_own_exit_code() {
        assert_eq!(Error::DrainDeadline { open: 2 }.exit_code(), 75);
        assert_eq!(Error::NoListeners.exit_code(), 1);
        assert_ne!(Error::DrainDeadline { open: 1 }.exit_code(), 0);
    }
}
