//! The master's metrics, in the Prometheus text format: the policy's counters (its
//! [`Stats`], which the driver hands over as it carries out the policy's effects), and gauges
//! read from the status snapshot at each scrape.
//!
//! Every label takes its values from a fixed set: states, rollout outcomes, the causes of a
//! replacement, the reasons of a kill, and the slots of the current workers (at most one series
//! per slot, and none for a slot removed by a scale-down). Free text (a worker's reason, an
//! exit status) never becomes a label, nor does the name a worker gives its own criterion (all
//! of them count as `custom`), so the master keeps no unbounded label set.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::registry::Registry;

use super::policy::{KillReason, Stats};
use crate::events::Status;

/// The `Content-Type` of [`Metrics::encode`]'s text: the Prometheus text format 0.0.4.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// How long the supervisor loop may go without a turn before `/healthz` reports it stalled. It
/// turns at least once a second (the driver's reap tick); a stall this long is a stuck master.
pub(crate) const STALLED_AFTER: Duration = Duration::from_secs(30);

/// The master's counters, and the liveness of its loop; shared by the driver and every
/// [`crate::Handle`].
#[derive(Debug)]
pub(crate) struct Metrics {
    rollouts: ByLabel<3>,
    replacements: ByLabel<9>,
    kills: ByLabel<4>,
    crashes: AtomicU64,
    start_failures: AtomicU64,
    /// When the metrics were made: the origin of `last_turn_ms`.
    anchor: Instant,
    /// The supervisor loop's last turn, in milliseconds since `anchor`.
    last_turn_ms: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            rollouts: ByLabel::new("outcome", ["done", "aborted", "superseded"]),
            // The values `policy::stats::replacement_label` gives.
            replacements: ByLabel::new(
                "reason",
                [
                    "rollout",
                    "rollout_aborted",
                    "unresponsive",
                    "operator",
                    "worker",
                    "request_count",
                    "memory",
                    "max_age",
                    "custom",
                ],
            ),
            kills: ByLabel::new(
                "reason",
                [
                    "drain_deadline",
                    "start_timeout",
                    "forced_stop",
                    "ipc_setup_failed",
                ],
            ),
            crashes: AtomicU64::new(0),
            start_failures: AtomicU64::new(0),
            anchor: Instant::now(),
            last_turn_ms: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Takes the policy's counters as they are now (the driver calls this before it carries
    /// out each effect: whoever an event wakes reads metrics that count it).
    pub(crate) fn record(&self, stats: &Stats) {
        self.rollouts.set("done", stats.rollouts_done);
        self.rollouts.set("aborted", stats.rollouts_aborted);
        self.rollouts.set("superseded", stats.rollouts_superseded);
        for (label, n) in &stats.replacements {
            self.replacements.set(label, *n);
        }
        for (why, n) in &stats.kills {
            self.kills.set(kill_reason(*why), *n);
        }
        self.crashes.store(stats.crashes, Ordering::Relaxed);
        self.start_failures
            .store(stats.start_failures, Ordering::Relaxed);
    }

    /// The supervisor loop turned: it is alive.
    pub(crate) fn loop_turned(&self) {
        let ms = u64::try_from(self.anchor.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_turn_ms.store(ms, Ordering::Relaxed);
    }

    /// How long since the supervisor loop last turned.
    pub(crate) fn since_loop_turned(&self) -> Duration {
        let last = Duration::from_millis(self.last_turn_ms.load(Ordering::Relaxed));
        self.anchor.elapsed().saturating_sub(last)
    }

    /// The exposition: these counters, and the gauges of `status`.
    pub(crate) fn encode(self: &Arc<Self>, status: Status) -> String {
        // A registry per scrape: the gauges are the snapshot's, so a series of a worker or a
        // slot that is gone is gone from the next scrape, and concurrent scrapes share nothing
        // but the counters.
        let mut registry = Registry::with_prefix("regiment");
        registry.register_collector(Box::new(Scrape {
            status,
            metrics: self.clone(),
        }));
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        text
    }
}

/// A counter per value of one label, the values fixed.
#[derive(Debug)]
struct ByLabel<const N: usize> {
    label: &'static str,
    values: [&'static str; N],
    counts: [AtomicU64; N],
}

impl<const N: usize> ByLabel<N> {
    fn new(label: &'static str, values: [&'static str; N]) -> Self {
        Self {
            label,
            values,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn set(&self, value: &str, count: u64) {
        match self.values.iter().position(|v| *v == value) {
            Some(i) => self.counts[i].store(count, Ordering::Relaxed),
            None => debug_assert!(false, "{value} is not a value of {}", self.label),
        }
    }

    fn series(&self) -> impl Iterator<Item = (&'static str, ConstCounter)> + '_ {
        self.values
            .iter()
            .zip(&self.counts)
            .map(|(v, c)| (*v, ConstCounter::new(c.load(Ordering::Relaxed))))
    }
}

fn kill_reason(why: KillReason) -> &'static str {
    match why {
        KillReason::DrainDeadline => "drain_deadline",
        KillReason::StartTimeout => "start_timeout",
        KillReason::ForcedStop => "forced_stop",
        KillReason::IpcSetupFailed => "ipc_setup_failed",
    }
}

mod scrape;
#[cfg(test)]
mod tests;

use scrape::Scrape;
