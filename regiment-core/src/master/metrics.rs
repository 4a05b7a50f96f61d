//! The master's metrics, in the Prometheus text format: counters the driver feeds as it carries
//! out the policy's effects, and gauges read from the status snapshot at each scrape.
//!
//! Every label takes its values from a fixed set: states, rollout outcomes, the causes of a
//! replacement, the reasons of a kill, and the slots of the current workers (at most one series
//! per slot, and none for a slot removed by a scale-down). Free text (a worker's reason, an
//! exit status) never becomes a label, so the master keeps no unbounded label set.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelValue, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use super::policy::{Cause, Effect, KillReason, Pending};
use crate::events::{Event, RolloutOutcome, Status, WorkerState, WorkerStatus};

/// The `Content-Type` of [`Metrics::encode`]'s text: the Prometheus text format 0.0.4.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// How long the supervisor loop may go without a turn before `/healthz` reports it stalled. It
/// turns at least once a second (the driver's reap tick); a stall this long is a stuck master.
pub(crate) const STALLED_AFTER: Duration = Duration::from_secs(30);

/// The regiment-tower layers' reasons, by their prefix: the worker's reason is free text, but
/// these criteria are common enough to count on their own.
const WORKER_REASONS: [(&str, &str); 3] = [
    ("request-count:", "request_count"),
    ("memory-footprint:", "memory"),
    ("max-age:", "max_age"),
];

/// The master's counters, and the liveness of its loop; shared by the driver and every
/// [`crate::Handle`].
#[derive(Debug)]
pub(crate) struct Metrics {
    rollouts: ByLabel<3>,
    replacements: ByLabel<8>,
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
    /// Counts what an effect of the policy says happened, before the driver carries it out.
    pub(crate) fn count(&self, effect: &Effect) {
        match effect {
            Effect::Kill { why, .. } => self.kills.inc(kill_reason(*why)),
            Effect::Replaced(pending) => self.replacements.inc(replacement_reason(pending)),
            Effect::Event(Event::Crashed { .. }) => {
                self.crashes.fetch_add(1, Ordering::Relaxed);
            }
            Effect::Event(Event::StartFailed { .. }) => {
                self.start_failures.fetch_add(1, Ordering::Relaxed);
            }
            Effect::RolloutEnded(log) => self.count_rollout(log.outcome()),
            _ => {}
        }
    }

    fn count_rollout(&self, outcome: RolloutOutcome) {
        match outcome {
            RolloutOutcome::Done => self.rollouts.inc("done"),
            RolloutOutcome::Aborted => self.rollouts.inc("aborted"),
            RolloutOutcome::Superseded => self.rollouts.inc("superseded"),
            RolloutOutcome::InProgress => {}
        }
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

    fn inc(&self, value: &str) {
        match self.values.iter().position(|v| *v == value) {
            Some(i) => {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
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

/// The cause of a replacement; for a worker's own request, the regiment-tower criterion that
/// made it, when its reason shows one.
fn replacement_reason(pending: &Pending) -> &'static str {
    match pending.cause {
        Cause::Rollout => "rollout",
        Cause::RolloutAborted => "rollout_aborted",
        Cause::Unresponsive => "unresponsive",
        Cause::Operator => "operator",
        Cause::Worker => WORKER_REASONS
            .iter()
            .find(|(prefix, _)| pending.reason.starts_with(prefix))
            .map_or("worker", |(_, kind)| kind),
    }
}

/// One scrape: the counters as they are now, and the gauges of one status snapshot.
#[derive(Debug)]
struct Scrape {
    status: Status,
    metrics: Arc<Metrics>,
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let (s, m) = (&self.status, &*self.metrics);
        let in_state = |state| {
            let n = s.workers.iter().filter(|w| w.state == state).count();
            ConstGauge::new(n as i64)
        };
        family(
            &mut e,
            Family::gauge("workers", "Worker processes, by state."),
            "state",
            [
                ("starting", in_state(WorkerState::Starting)),
                ("ready", in_state(WorkerState::Ready)),
                ("draining", in_state(WorkerState::Draining)),
            ],
        )?;
        single(
            &mut e,
            "workers_wanted",
            "Slots: the number of workers the master keeps serving.",
            ConstGauge::new(s.workers_wanted as i64),
        )?;
        single(
            &mut e,
            "generation",
            "The generation new workers get: the one being rolled out, else the good one.",
            ConstGauge::new(s.generation as i64),
        )?;
        single(
            &mut e,
            "good_generation",
            "The last generation whose rollout completed (1 until one does).",
            ConstGauge::new(s.good_generation as i64),
        )?;
        family(
            &mut e,
            Family::counter("rollouts", "Rolling restarts ended, by outcome."),
            m.rollouts.label,
            m.rollouts.series(),
        )?;
        family(
            &mut e,
            Family::counter(
                "replacements",
                "Workers that took their slot from the worker they replaced, by cause.",
            ),
            m.replacements.label,
            m.replacements.series(),
        )?;
        single(
            &mut e,
            "crashes",
            "Ready workers that exited unasked.",
            ConstCounter::new(m.crashes.load(Ordering::Relaxed)),
        )?;
        single(
            &mut e,
            "start_failures",
            "New workers that failed before they were ready (exited, timed out, or not spawned).",
            ConstCounter::new(m.start_failures.load(Ordering::Relaxed)),
        )?;
        family(
            &mut e,
            Family::counter(
                "kills",
                "Workers killed with SIGKILL, by reason (drain_deadline: still running at the \
                 end of their drain).",
            ),
            m.kills.label,
            m.kills.series(),
        )?;
        self.encode_slots(&mut e)
    }
}

impl Scrape {
    /// The figures of each slot's worker, from its last heartbeat.
    fn encode_slots(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let workers: Vec<(usize, &WorkerStatus)> = (0..self.status.slots.len())
            .filter_map(|slot| slot_worker(&self.status, slot).map(|w| (slot, w)))
            .collect();
        let per_slot = |figure: fn(&WorkerStatus) -> u64| -> Vec<(usize, u64)> {
            workers.iter().map(|(slot, w)| (*slot, figure(w))).collect()
        };
        family(
            e,
            Family::gauge(
                "worker_resident_memory",
                "Resident memory of the slot's worker.",
            )
            .unit(Unit::Bytes),
            "slot",
            per_slot(|w| w.rss)
                .into_iter()
                .map(|(s, v)| (s, ConstGauge::new(v))),
        )?;
        family(
            e,
            Family::counter(
                "worker_requests",
                "Requests the slot's worker served (from zero for each new worker).",
            ),
            "slot",
            per_slot(|w| w.requests)
                .into_iter()
                .map(|(s, v)| (s, ConstCounter::new(v))),
        )?;
        family(
            e,
            Family::gauge(
                "worker_in_flight_requests",
                "Requests in flight in the slot's worker.",
            ),
            "slot",
            per_slot(|w| w.in_flight)
                .into_iter()
                .map(|(s, v)| (s, ConstGauge::new(v))),
        )?;
        family(
            e,
            Family::counter(
                "worker_responses_5xx",
                "Responses with a 5xx status from the slot's worker (from zero for each new \
                 worker).",
            ),
            "slot",
            per_slot(|w| w.responses_5xx)
                .into_iter()
                .map(|(s, v)| (s, ConstCounter::new(v))),
        )?;
        family(
            e,
            Family::gauge("worker_age", "Time since the slot's worker was spawned.")
                .unit(Unit::Seconds),
            "slot",
            workers
                .iter()
                .map(|(slot, w)| (*slot, ConstGauge::new(w.age_ms as f64 / 1000.0))),
        )
    }
}

/// The worker a slot's series show: its ready worker, else the newest one starting, else the
/// newest one draining (while the master stops).
fn slot_worker(status: &Status, slot: usize) -> Option<&WorkerStatus> {
    let rank = |w: &WorkerStatus| match w.state {
        WorkerState::Ready => 0,
        WorkerState::Starting => 1,
        WorkerState::Draining => 2,
    };
    status
        .workers
        .iter()
        .filter(|w| w.slot == slot)
        .min_by_key(|w| (rank(w), w.age_ms))
}

/// The descriptor of a metric family.
struct Family {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    metric_type: MetricType,
}

impl Family {
    fn gauge(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            unit: None,
            metric_type: MetricType::Gauge,
        }
    }

    fn counter(name: &'static str, help: &'static str) -> Self {
        Self {
            metric_type: MetricType::Counter,
            ..Self::gauge(name, help)
        }
    }

    fn unit(self, unit: Unit) -> Self {
        Self {
            unit: Some(unit),
            ..self
        }
    }
}

/// A family with one label, a series per value.
fn family<V: EncodeLabelValue, M: EncodeMetric>(
    e: &mut DescriptorEncoder,
    family: Family,
    label: &'static str,
    series: impl IntoIterator<Item = (V, M)>,
) -> std::fmt::Result {
    let mut encoder = e.encode_descriptor(
        family.name,
        family.help,
        family.unit.as_ref(),
        family.metric_type,
    )?;
    for (value, metric) in series {
        let labels = [(label, value)];
        metric.encode(encoder.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A metric without labels.
fn single(
    e: &mut DescriptorEncoder,
    name: &'static str,
    help: &'static str,
    metric: impl EncodeMetric,
) -> std::fmt::Result {
    let encoder = e.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(encoder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::SlotStatus;
    use crate::master::policy::Origin;

    fn worker(slot: usize, state: WorkerState, age_ms: u64, rss: u64) -> WorkerStatus {
        WorkerStatus {
            slot,
            pid: 1000 + slot as u32,
            generation: 1,
            state,
            age_ms,
            rss,
            requests: 7,
            in_flight: 2,
            responses_5xx: 1,
            failures: 0,
            replace_reason: None,
            program: None,
        }
    }

    fn status(workers: Vec<WorkerStatus>, slots: usize) -> Status {
        Status {
            generation: 3,
            good_generation: 2,
            workers_wanted: slots,
            workers,
            slots: (0..slots)
                .map(|slot| SlotStatus {
                    slot,
                    restarts: 0,
                    last_restart_reason: None,
                })
                .collect(),
            ..Status::default()
        }
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn the_families_have_their_types_units_and_labels() {
        let metrics = Arc::new(Metrics::default());
        let text = metrics.encode(status(
            vec![
                worker(0, WorkerState::Ready, 1500, 4096),
                worker(1, WorkerState::Starting, 20, 0),
            ],
            2,
        ));
        let lines = lines(&text);
        for expected in [
            "# TYPE regiment_workers gauge",
            "regiment_workers{state=\"starting\"} 1",
            "regiment_workers{state=\"ready\"} 1",
            "regiment_workers{state=\"draining\"} 0",
            "regiment_workers_wanted 2",
            "regiment_generation 3",
            "regiment_good_generation 2",
            "# TYPE regiment_rollouts_total counter",
            "regiment_rollouts_total{outcome=\"done\"} 0",
            "# TYPE regiment_replacements_total counter",
            "regiment_replacements_total{reason=\"rollout\"} 0",
            "regiment_crashes_total 0",
            "regiment_start_failures_total 0",
            "regiment_kills_total{reason=\"drain_deadline\"} 0",
            "# TYPE regiment_worker_resident_memory_bytes gauge",
            "regiment_worker_resident_memory_bytes{slot=\"0\"} 4096",
            "# TYPE regiment_worker_requests_total counter",
            "regiment_worker_requests_total{slot=\"1\"} 7",
            "regiment_worker_in_flight_requests{slot=\"0\"} 2",
            "regiment_worker_responses_5xx_total{slot=\"0\"} 1",
            "# TYPE regiment_worker_age_seconds gauge",
            "regiment_worker_age_seconds{slot=\"0\"} 1.5",
        ] {
            assert!(lines.contains(&expected), "no {expected:?} in:\n{text}");
        }
        let help = lines
            .iter()
            .find(|l| l.starts_with("# HELP regiment_workers "))
            .expect("help");
        assert_eq!(*help, "# HELP regiment_workers Worker processes, by state.");
    }

    #[test]
    fn a_slot_shows_one_worker_and_a_removed_slot_none() {
        let metrics = Arc::new(Metrics::default());
        let text = metrics.encode(status(
            vec![
                // Slot 0 mid-replacement: the old worker drains, the new one serves.
                worker(0, WorkerState::Draining, 9000, 111),
                worker(0, WorkerState::Ready, 100, 222),
                // Slot 1 was removed by a scale-down: its worker drains.
                worker(1, WorkerState::Draining, 9000, 333),
            ],
            1,
        ));
        let rss: Vec<&str> = lines(&text)
            .into_iter()
            .filter(|l| l.starts_with("regiment_worker_resident_memory_bytes{"))
            .collect();
        assert_eq!(
            rss,
            ["regiment_worker_resident_memory_bytes{slot=\"0\"} 222"]
        );
        assert!(!text.contains("slot=\"1\""), "{text}");
        assert!(
            text.contains("regiment_workers{state=\"draining\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn effects_are_counted_under_a_fixed_set_of_label_values() {
        let metrics = Arc::new(Metrics::default());
        let replaced = |cause, reason: &str| {
            Effect::Replaced(Pending {
                reason: reason.into(),
                origin: Origin::Request,
                cause,
            })
        };
        for effect in [
            replaced(Cause::Worker, "request-count: 3 requests >= 3"),
            replaced(Cause::Worker, "memory-footprint: rss 812 MB > 750 MB"),
            replaced(Cause::Worker, "max-age: up 1h 0m >= 1h"),
            replaced(Cause::Worker, "cache corrupt"),
            replaced(Cause::Worker, "cache corrupt, again"),
            // An operator's text is never read: the cause is what was asked.
            replaced(Cause::Operator, "request-count: pretend"),
            replaced(
                Cause::Unresponsive,
                "unresponsive: no heartbeat for 3000 ms",
            ),
            replaced(Cause::Rollout, "rolling restart to generation 2"),
            Effect::Kill {
                id: crate::master::policy::WorkerId(1),
                why: KillReason::DrainDeadline,
            },
            Effect::Event(Event::Crashed {
                slot: 0,
                pid: 1,
                generation: 1,
                status: "signal 9 (SIGKILL)".into(),
                respawn_in_ms: 100,
            }),
            Effect::Event(Event::StartFailed {
                slot: 0,
                pid: 0,
                generation: 1,
                why: "exited before ready: exit 1".into(),
                retry_in_ms: 100,
            }),
        ] {
            metrics.count(&effect);
        }
        metrics.count_rollout(RolloutOutcome::Done);
        metrics.count_rollout(RolloutOutcome::Superseded);
        metrics.count_rollout(RolloutOutcome::InProgress);
        let text = metrics.encode(status(Vec::new(), 1));
        let lines = lines(&text);
        for expected in [
            "regiment_replacements_total{reason=\"request_count\"} 1",
            "regiment_replacements_total{reason=\"memory\"} 1",
            "regiment_replacements_total{reason=\"max_age\"} 1",
            "regiment_replacements_total{reason=\"worker\"} 2",
            "regiment_replacements_total{reason=\"operator\"} 1",
            "regiment_replacements_total{reason=\"unresponsive\"} 1",
            "regiment_replacements_total{reason=\"rollout\"} 1",
            "regiment_replacements_total{reason=\"rollout_aborted\"} 0",
            "regiment_kills_total{reason=\"drain_deadline\"} 1",
            "regiment_kills_total{reason=\"start_timeout\"} 0",
            "regiment_crashes_total 1",
            "regiment_start_failures_total 1",
            "regiment_rollouts_total{outcome=\"done\"} 1",
            "regiment_rollouts_total{outcome=\"aborted\"} 0",
            "regiment_rollouts_total{outcome=\"superseded\"} 1",
        ] {
            assert!(lines.contains(&expected), "no {expected:?} in:\n{text}");
        }
        // However many reasons the workers gave: one series per fixed value.
        let series = |name: &str| lines.iter().filter(|l| l.starts_with(name)).count();
        assert_eq!(series("regiment_replacements_total{"), 8);
        assert_eq!(series("regiment_kills_total{"), 4);
        assert_eq!(series("regiment_rollouts_total{"), 3);
    }

    #[test]
    fn the_loop_is_stalled_until_it_turns() {
        let Some(long_ago) = Instant::now().checked_sub(STALLED_AFTER * 2) else {
            return; // the machine booted a minute ago: nothing that old to compare with
        };
        let metrics = Metrics {
            anchor: long_ago,
            ..Metrics::default()
        };
        assert!(metrics.since_loop_turned() >= STALLED_AFTER);
        metrics.loop_turned();
        assert!(metrics.since_loop_turned() < STALLED_AFTER);
    }
}
