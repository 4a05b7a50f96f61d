//! The clock the supervisor's deadlines count in: real time, less the time the master itself
//! did not run (stopped by SIGSTOP, its VM paused, starved of CPU).
//!
//! While the master is stopped its workers go on: a replacement gets ready, heartbeats are
//! sent, and what they say waits unread in their channels. Counted in real time, every deadline
//! would have passed when the master resumes, and it could act on one (kill a replacement at
//! its start timeout, a worker for missed heartbeats) before reading the messages that show it
//! was met. So a reading later than the loop's expected wake (or, mid-turn, than the previous
//! reading) by more than [`STALL`] is a stall: the clock then stands still at its last reading
//! for [`HOLD`], while the backlog is read, and runs on from there. The stall counts against
//! no one.

use std::time::{Duration, Instant};

use crate::master::policy::WallClock;

/// A reading this late is a stall: far beyond a busy loop's lateness.
const STALL: Duration = Duration::from_secs(1);
/// How long the clock stands still after a stall, for the channels' backlog to be read.
const HOLD: Duration = Duration::from_millis(250);

/// The supervisor's clock; see the module docs.
#[derive(Debug)]
pub(crate) struct StallClock {
    /// Supervisor time is real time less this.
    offset: Duration,
    /// The latest supervisor time read: the clock never goes back.
    last: Instant,
    /// The real time of the latest reading.
    last_real: Instant,
    /// When the loop expects to run again, until the first reading after.
    wake: Option<Instant>,
}

impl StallClock {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            offset: Duration::ZERO,
            last: now,
            last_real: now,
            wake: None,
        }
    }

    /// The loop waits, and will run again by `wake` (real time) at the latest.
    pub(crate) fn expect_wake_by(&mut self, wake: Instant) {
        self.wake = Some(wake);
    }

    /// Supervisor time now.
    pub(crate) fn now(&mut self) -> Instant {
        self.read(Instant::now())
    }

    /// The real time of supervisor time `t`, for timers and deadlines sent out.
    pub(crate) fn to_real(&self, t: Instant) -> Instant {
        t + self.offset
    }

    fn read(&mut self, real: Instant) -> Instant {
        let due = self
            .wake
            .take()
            .map_or(self.last_real, |w| w.max(self.last_real));
        if real > due + STALL {
            tracing::warn!(
                stalled_ms = u64::try_from((real - due).as_millis()).unwrap_or(u64::MAX),
                "the master did not run for a while; its deadlines leave that time out"
            );
            // Reads `last` until `real + HOLD`, and runs on from there.
            self.offset = real + HOLD - self.last;
        }
        self.last_real = self.last_real.max(real);
        let t = real
            .checked_sub(self.offset)
            .map_or(self.last, |t| t.max(self.last));
        self.last = t;
        t
    }
}

/// The wall clock read now, anchored at `instant` (the policy's time now), to show the policy's
/// instants as wall-clock time.
pub(super) fn read_wall_clock(instant: Instant) -> WallClock {
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    WallClock { instant, unix_ms }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn without_a_stall_it_reads_real_time() {
        let t0 = Instant::now();
        let mut c = StallClock::new(t0);
        c.expect_wake_by(t0 + 1000 * MS);
        assert_eq!(c.read(t0 + 1000 * MS), t0 + 1000 * MS);
        // Late, but not a stall.
        c.expect_wake_by(t0 + 2000 * MS);
        assert_eq!(c.read(t0 + 2900 * MS), t0 + 2900 * MS);
        assert_eq!(c.read(t0 + 3000 * MS), t0 + 3000 * MS);
        assert_eq!(c.to_real(t0 + 3500 * MS), t0 + 3500 * MS);
    }

    #[test]
    fn after_a_late_wake_it_stands_still_then_runs_on_without_the_stall() {
        let t0 = Instant::now();
        let mut c = StallClock::new(t0);
        assert_eq!(c.read(t0 + 100 * MS), t0 + 100 * MS);
        // Expected by 1 s, read at 10 s: stopped in between.
        c.expect_wake_by(t0 + 1000 * MS);
        assert_eq!(c.read(t0 + 10_000 * MS), t0 + 100 * MS);
        assert_eq!(c.read(t0 + 10_200 * MS), t0 + 100 * MS, "held");
        assert_eq!(c.read(t0 + 10_250 * MS), t0 + 100 * MS);
        assert_eq!(c.read(t0 + 10_300 * MS), t0 + 150 * MS, "runs on");
        // A deadline 1 s on in supervisor time is 1 s on in real time from here.
        assert_eq!(c.to_real(t0 + 1150 * MS), t0 + 11_300 * MS);
    }

    #[test]
    fn a_gap_between_readings_mid_turn_is_a_stall_too() {
        let t0 = Instant::now();
        let mut c = StallClock::new(t0);
        assert_eq!(c.read(t0 + 500 * MS), t0 + 500 * MS);
        // No wait expected: stopped while busy.
        assert_eq!(c.read(t0 + 5000 * MS), t0 + 500 * MS);
        c.expect_wake_by(t0 + 6000 * MS);
        assert_eq!(c.read(t0 + 6250 * MS), t0 + 1500 * MS);
    }
}
