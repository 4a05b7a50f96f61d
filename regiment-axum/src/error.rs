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
