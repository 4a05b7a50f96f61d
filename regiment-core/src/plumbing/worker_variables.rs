//! The `REGIMENT_*` variables that workers read from their own environment, beyond the ones the
//! master sets for each worker ([`crate::env`]): regiment-axum's HTTP options.
//!
//! One list, used by both sides: a worker reads them only through [`crate::plumbing::EnvVar::read`],
//! which takes a [`WorkerVariable`] and nothing else, and the master hands every
//! [`WorkerVariable`] of its own environment on to every worker, whatever
//! [`crate::Builder::worker_env`] says. A variable read by workers therefore cannot be left out
//! of what they are given, and no other `REGIMENT_*` of the master's (a secret, say) is given
//! to workers that should start from nothing.
//!
//! ```
//! use regiment_core::plumbing::{EnvVar, WorkerVariable};
//! assert_eq!(WorkerVariable::IDLE_GRACE.name(), "REGIMENT_IDLE_GRACE");
//! // A worker reads it from its environment, where its master put it.
//! let _grace = EnvVar::read(WorkerVariable::IDLE_GRACE);
//! ```

/// A `REGIMENT_*` variable that workers read from their environment, and that their master
/// therefore passes on from its own (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerVariable(&'static str);

impl WorkerVariable {
    /// The variable's name.
    pub fn name(self) -> &'static str {
        self.0
    }
}

/// `CONSTANT = "NAME",` rows: a constant for each, and [`WorkerVariable::ALL`] of them all, so
/// that the list cannot miss one of the constants.
macro_rules! worker_variables {
    ($($(#[$doc:meta])* $constant:ident = $name:literal,)*) => {
        impl WorkerVariable {
            $($(#[$doc])* pub const $constant: Self = Self($name);)*
            /// Every one of them: what the master passes on, and knows as its own.
            pub(crate) const ALL: &[Self] = &[$(Self::$constant),*];
        }
    };
}

worker_variables! {
    /// regiment-axum's `Server::header_read_timeout`.
    HEADER_READ_TIMEOUT = "REGIMENT_HEADER_READ_TIMEOUT",
    /// regiment-axum's `Server::idle_grace`.
    IDLE_GRACE = "REGIMENT_IDLE_GRACE",
    /// regiment-axum's `Server::http2_keep_alive`.
    HTTP2_KEEP_ALIVE = "REGIMENT_HTTP2_KEEP_ALIVE",
}
