//! The master's counters (the policy's [`Stats`] as last recorded) and the liveness of its
//! loop: what every scrape reads beside the status snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::ConstCounter;

use crate::events::UpgradeOutcome;
use crate::master::policy::{KillReason, REPLACEMENT_LABELS, Stats};

/// The master's counters, and the liveness of its loop; shared by the driver and every
/// [`crate::Handle`].
#[derive(Debug)]
pub(crate) struct Metrics {
    pub(super) rollouts: ByLabel<3>,
    pub(super) upgrades: ByLabel<4>,
    pub(super) replacements: ByLabel<{ REPLACEMENT_LABELS.len() }>,
    pub(super) kills: ByLabel<6>,
    pub(super) crashes: AtomicU64,
    pub(super) start_failures: AtomicU64,
    /// Reports taken before a kill (the driver's, not the policy's).
    pub(super) kill_reports: AtomicU64,
    /// When the metrics were made: the origin of `last_turn_ms`.
    pub(super) anchor: Instant,
    /// The supervisor loop's last turn, in milliseconds since `anchor`.
    pub(super) last_turn_ms: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            rollouts: ByLabel::new("outcome", ["done", "aborted", "superseded"]),
            // The labels of `UpgradeOutcome`, but the one that is no end.
            upgrades: ByLabel::new(
                "outcome",
                [
                    UpgradeOutcome::Done.label(),
                    UpgradeOutcome::Aborted.label(),
                    UpgradeOutcome::Refused.label(),
                    UpgradeOutcome::RolledBack.label(),
                ],
            ),
            replacements: ByLabel::new("reason", REPLACEMENT_LABELS),
            kills: ByLabel::new(
                "reason",
                [
                    "drain_deadline",
                    "start_timeout",
                    "forced_stop",
                    "ipc_setup_failed",
                    "unresponsive",
                    // Not the master's: the kernel's OOM killer's (`Stats::oom_kills`).
                    "oom",
                ],
            ),
            crashes: AtomicU64::new(0),
            start_failures: AtomicU64::new(0),
            kill_reports: AtomicU64::new(0),
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
        for (outcome, n) in [
            (UpgradeOutcome::Done, stats.upgrades_done),
            (UpgradeOutcome::Aborted, stats.upgrades_aborted),
            (UpgradeOutcome::Refused, stats.upgrades_refused),
            (UpgradeOutcome::RolledBack, stats.upgrades_rolled_back),
        ] {
            self.upgrades.set(outcome.label(), n);
        }
        for (label, n) in &stats.replacements {
            self.replacements.set(label, *n);
        }
        for (why, n) in &stats.kills {
            self.kills.set(kill_reason(*why), *n);
        }
        self.kills.set("oom", stats.oom_kills);
        self.crashes.store(stats.crashes, Ordering::Relaxed);
        self.start_failures
            .store(stats.start_failures, Ordering::Relaxed);
    }

    /// The driver took a report before a kill.
    pub(crate) fn kill_report_taken(&self) {
        self.kill_reports.fetch_add(1, Ordering::Relaxed);
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
}

/// A counter per value of one label, the values fixed.
#[derive(Debug)]
pub(super) struct ByLabel<const N: usize> {
    pub(super) label: &'static str,
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

    pub(super) fn series(&self) -> impl Iterator<Item = (&'static str, ConstCounter)> + '_ {
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
        KillReason::Unresponsive => "unresponsive",
    }
}
