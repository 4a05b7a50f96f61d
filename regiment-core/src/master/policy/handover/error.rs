//! Why a handed-over state cannot be restored.

use super::state::{OLDEST_READ, STATE_VERSION};

/// Why a state cannot be restored; the new master says so, and does not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RestoreError {
    #[error(
        "the policy state is of format version {found}, and this master reads versions \
         {OLDEST_READ} to {expected} only"
    )]
    Version { found: u32, expected: u32 },
    #[error("the policy state is not a state of format version {STATE_VERSION}: {0}")]
    Malformed(String),
    #[error("the policy state is inconsistent: {0}")]
    Inconsistent(String),
}
