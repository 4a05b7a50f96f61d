//! How far a command follows what it started: `reload` its rollout, `upgrade` its upgrade.

/// How far a command follows what it started.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follow {
    /// Returns once it has started (without `--wait`).
    UntilStarted,
    /// Prints its progress and ends with its outcome (`--wait`).
    ToTheOutcome,
}
