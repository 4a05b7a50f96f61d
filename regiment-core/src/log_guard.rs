//! Log calls that cannot stop what made them.
//!
//! The application chooses the subscriber, and a common one panics when its output is a closed
//! pipe: tracing-subscriber's fmt layer reports a failed write with `eprintln!`, which panics
//! when stderr is that pipe (see [`crate::LogWriter`], which never fails). A drain, a signal's
//! handler and a worker's link to its master must go on regardless: they act first, then log
//! through [`survive`].

/// Runs `log`, a logging call, and goes on if it panics. The panic is not lost: the panic hook
/// reported it (to the same output, if it still works).
pub(crate) fn survive(log: impl FnOnce()) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(log));
}
