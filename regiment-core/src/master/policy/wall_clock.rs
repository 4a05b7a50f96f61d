//! Wall-clock time for the status: the policy's instants, read against one reading of both
//! clocks that the driver takes.

use std::time::{Duration, Instant};

/// Turns the policy's instants into wall-clock time for the status: one reading of both clocks,
/// taken by the driver.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    pub(crate) instant: Instant,
    /// Milliseconds since the Unix epoch at `instant`.
    pub(crate) unix_ms: u64,
}

impl WallClock {
    pub(crate) fn unix_ms(self, t: Instant) -> u64 {
        if t >= self.instant {
            self.unix_ms.saturating_add(millis(t - self.instant))
        } else {
            self.unix_ms.saturating_sub(millis(self.instant - t))
        }
    }
}

/// Milliseconds, for events and status.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
