//! Respawn delays of one slot: exponential, capped, starting over after a healthy period.

use std::time::{Duration, Instant};

/// The bounds of every slot's backoff.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BackoffConfig {
    pub initial: Duration,
    pub max: Duration,
    /// A worker that stayed ready this long, or a slot that stayed quiet this long after its
    /// last retry, starts over from `initial`.
    pub reset_after: Duration,
}

/// The backoff of one slot.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    pub(super) config: BackoffConfig,
    pub(super) next: Duration,
    /// When the last delay handed out ended.
    pub(super) last_retry: Option<Instant>,
}

impl Backoff {
    pub(crate) fn new(config: BackoffConfig) -> Self {
        Self {
            config,
            next: config.initial,
            last_retry: None,
        }
    }

    /// The delay before the next try after a failure at `now`; the one after will be twice as
    /// long, up to the maximum. A slot that stayed quiet for a healthy period after its last
    /// retry starts over: a deploy that failed last week does not make today's retry wait 30 s.
    pub(crate) fn next_delay(&mut self, now: Instant) -> Duration {
        if self
            .last_retry
            .is_some_and(|t| now.saturating_duration_since(t) >= self.config.reset_after)
        {
            self.reset();
        }
        let d = self.next;
        self.next = self.next.saturating_mul(2).min(self.config.max);
        self.last_retry = Some(now + d);
        d
    }

    /// Starts over from the initial delay (after a worker stayed up long enough, or when a
    /// rolling restart brings what may be the fix).
    pub(crate) fn reset(&mut self) {
        self.next = self.config.initial;
        self.last_retry = None;
    }

    pub(crate) fn config(&self) -> BackoffConfig {
        self.config
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a starting instant for simulated time
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(BackoffConfig {
            initial: ms(100),
            max: ms(500),
            reset_after: ms(60_000),
        });
        let now = Instant::now();
        let got: Vec<_> = (0..5).map(|_| b.next_delay(now).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay(now), ms(100));
    }

    #[test]
    fn a_quiet_healthy_period_after_the_last_retry_starts_over() {
        let mut b = Backoff::new(BackoffConfig {
            initial: ms(100),
            max: ms(10_000),
            reset_after: ms(1_000),
        });
        let t0 = Instant::now();
        assert_eq!(b.next_delay(t0), ms(100));
        // The retry ended at t0 + 100 ms; 999 ms after that is not yet a healthy period.
        assert_eq!(b.next_delay(t0 + ms(1_099)), ms(200));
        // The second retry ended at t0 + 1299 ms: a full period later, back to the start.
        assert_eq!(b.next_delay(t0 + ms(2_299)), ms(100));
    }
}
