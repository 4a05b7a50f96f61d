//! The `REGIMENT_*` variables of the master's environment that it passes on to its workers,
//! which read them (regiment-axum's HTTP options); not to be mixed up with the variables the
//! master sets itself for each worker ([`crate::worker_vars`]).
//!
//! One list, used by both sides: a worker reads them only through
//! [`crate::plumbing::RegimentVar::read`], which takes a [`PassedOnVariable`] and nothing else, and the master hands every
//! [`PassedOnVariable`] of its own environment on to every worker, whatever
//! [`crate::Builder::worker_env`] says. A variable read by workers therefore cannot be left out
//! of what they are given, and no other `REGIMENT_*` of the master's (a secret, say) is given
//! to workers that should start from nothing.
//!
//! ```
//! use regiment_core::plumbing::{PassedOnVariable, RegimentVar};
//! assert_eq!(PassedOnVariable::IDLE_GRACE.name(), "REGIMENT_IDLE_GRACE");
//! // A worker reads it from its environment, where its master put it.
//! let _grace = RegimentVar::read(PassedOnVariable::IDLE_GRACE);
//! ```

/// A `REGIMENT_*` variable that workers read from their environment, and that their master
/// therefore passes on from its own (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassedOnVariable(&'static str);

impl PassedOnVariable {
    /// The variable's name.
    pub fn name(self) -> &'static str {
        self.0
    }
}

/// `CONSTANT = "NAME",` rows: a constant for each, and [`PassedOnVariable::ALL`] of them all, so
/// that the list cannot miss one of the constants.
macro_rules! passed_on_variables {
    ($($(#[$doc:meta])* $constant:ident = $name:literal,)*) => {
        impl PassedOnVariable {
            $($(#[$doc])* pub const $constant: Self = Self($name);)*
            /// Every one of them: what the master passes on, and knows as its own.
            pub(crate) const ALL: &[Self] = &[$(Self::$constant),*];
        }
    };
}

passed_on_variables! {
    /// regiment-axum's `Server::header_read_timeout`.
    HEADER_READ_TIMEOUT = "REGIMENT_HEADER_READ_TIMEOUT",
    /// regiment-axum's `Server::idle_grace`.
    IDLE_GRACE = "REGIMENT_IDLE_GRACE",
    /// regiment-axum's `Server::http2_keep_alive`.
    HTTP2_KEEP_ALIVE = "REGIMENT_HTTP2_KEEP_ALIVE",
}
