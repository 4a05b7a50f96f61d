//! What every session of the control socket shares.

use crate::Handle;
use crate::master::policy::PolicyConfig;
use crate::master::policy::thinning::Tally;

/// What every session shares.
pub(super) struct Shared {
    pub(super) handle: Handle,
    /// The options that tell how long a rollout or a stop may take.
    pub(super) policy: PolicyConfig,
    /// Connections refused or broken, counted together and logged thinned.
    pub(super) refusals: Tally,
}

impl Shared {
    /// Logs a refused or broken connection: the first ones, then one in a thousand, with
    /// their number.
    pub(super) fn refused(&self, why: &str) {
        if let Some(n) = self.refusals.count() {
            tracing::warn!(%why, "control socket: connection refused or broken (#{n})");
        }
    }
}
