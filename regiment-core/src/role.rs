//! Which side of a regiment cluster this process is: [`role`], read from what a master hands
//! each worker it spawns, and whether it supervises (set once it builds a `Supervisor`).

use std::sync::atomic::{AtomicBool, Ordering};

/// Which side of a regiment cluster this process is.
///
/// ```
/// use regiment_core::Role;
/// // The same binary is both: the role picks what `main` does.
/// let what = match regiment_core::role() {
///     Role::Master => "supervise",
///     Role::Worker => "serve",
/// };
/// assert_eq!(what, "supervise"); // not started by a regiment master
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Started by a person or a service manager: supervise workers.
    Master,
    /// Started by a regiment master: serve.
    Worker,
}

/// Whether this process is a master or one of its workers, from the environment the master
/// gives its workers ([`Role::Worker`] exactly when [`crate::worker::is_worker`]). It only
/// reads: the worker attaches to its master on its first worker call.
///
/// ```
/// assert_eq!(regiment_core::role(), regiment_core::Role::Master);
/// ```
pub fn role() -> Role {
    if crate::worker::channel::inherited().is_some() {
        Role::Worker
    } else {
        Role::Master
    }
}

/// Set once this process builds a [`crate::Supervisor`]: a master holds the application too
/// (`serve(app)` gets the router before it knows its role), and a criterion firing there is
/// expected, not a misconfiguration worth a warning.
static SUPERVISING: AtomicBool = AtomicBool::new(false);

/// This process builds a [`crate::Supervisor`]: it is a master.
pub(crate) fn mark_supervising() {
    SUPERVISING.store(true, Ordering::Relaxed);
}

/// True once this process has built a [`crate::Supervisor`].
pub(crate) fn is_supervising() -> bool {
    SUPERVISING.load(Ordering::Relaxed)
}
