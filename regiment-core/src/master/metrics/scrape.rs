//! One scrape: the counters as they are now, and the gauges of one status snapshot, encoded
//! as metric families.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelValue, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use super::counters::Metrics;
use crate::events::{ProcessMemory, Status, WorkerState, WorkerStatus};

/// One scrape: the counters as they are now, and the gauges of one status snapshot.
#[derive(Debug)]
pub(super) struct Scrape {
    pub(super) status: Status,
    pub(super) metrics: Arc<Metrics>,
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
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
                "upgrades",
                "Upgrades of the master in place (a new binary, same pid), by outcome.",
            ),
            m.upgrades.label,
            m.upgrades.series(),
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
                "Workers killed with SIGKILL, by reason: the master's (drain_deadline: still \
                 running at the end of their drain; start_timeout, forced_stop, \
                 ipc_setup_failed), or the kernel's OOM killer's (oom).",
            ),
            m.kills.label,
            m.kills.series(),
        )?;
        single(
            &mut e,
            "kill_reports",
            "Reports taken of workers before the master killed them (start_timeout, \
             drain_deadline): each thread's state, wait channel and system call.",
            ConstCounter::new(m.kill_reports.load(Ordering::Relaxed)),
        )?;
        single(
            &mut e,
            "log_lines_lost",
            "Log lines the master could not write through regiment_core::LogWriter (its \
             stderr a closed pipe, say).",
            ConstCounter::new(crate::LogWriter::lines_lost()),
        )?;
        self.encode_memory(&mut e)?;
        self.encode_slots(&mut e)
    }
}

impl Scrape {
    /// The regiment's memory: its budget and limit, the sum in use and the master's part. A
    /// figure the master does not know (no budget set, no reading yet) is left out rather than
    /// shown as 0, which would read as a budget of nothing or a regiment that holds nothing.
    fn encode_memory(&self, e: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let m = &self.status.memory;
        if let Some(budget) = m.budget {
            bytes_gauge(
                e,
                "memory_budget",
                "The memory budget of the regiment (master and workers, summed PSS): fixed, or a \
                 share of the limit.",
                budget.bytes,
            )?;
        }
        if let Some(limit) = &m.limit {
            bytes_gauge(
                e,
                "memory_limit",
                "The memory limit that applies to the master: its cgroup's, else the machine's.",
                limit.bytes,
            )?;
        }
        if m.total > 0 || m.master.is_some() {
            bytes_gauge(
                e,
                "memory",
                "The regiment's memory at the master's last reading: the PSS of the master and \
                 of every worker, draining ones included, summed (a shared page counts once).",
                m.total,
            )?;
        }
        if let Some(master) = m.master {
            bytes_gauge(
                e,
                "master_memory",
                "The master's own PSS at its last reading.",
                master.pss,
            )?;
        }
        Ok(())
    }

    /// The figures of each slot's worker, from its last heartbeat, and its private memory from
    /// the master's last reading (no series for a worker not read yet).
    fn encode_slots(&self, e: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let workers: Vec<(usize, &WorkerStatus)> = (0..self.status.slots.len())
            .filter_map(|slot| slot_worker(&self.status, slot).map(|w| (slot, w)))
            .collect();
        family(
            e,
            Family::gauge(
                "worker_resident_memory",
                "Resident memory of the slot's worker.",
            )
            .unit(Unit::Bytes),
            "slot",
            per_slot(&workers, |w| ConstGauge::new(w.rss)),
        )?;
        let read: Vec<(usize, ProcessMemory)> = workers
            .iter()
            .filter_map(|(slot, w)| w.memory.map(|m| (*slot, m)))
            .collect();
        family(
            e,
            Family::gauge(
                "worker_memory",
                "PSS of the slot's worker at the master's last reading (its resident pages, each \
                 shared page divided among the processes that map it): its part of \
                 regiment_memory_bytes.",
            )
            .unit(Unit::Bytes),
            "slot",
            read.iter().map(|(slot, m)| (*slot, ConstGauge::new(m.pss))),
        )?;
        family(
            e,
            Family::gauge(
                "worker_unique_memory",
                "USS of the slot's worker at the master's last reading (the pages no other \
                 process maps, which its exit gives back): what the memory budget ranks workers \
                 by.",
            )
            .unit(Unit::Bytes),
            "slot",
            read.iter().map(|(slot, m)| (*slot, ConstGauge::new(m.uss))),
        )?;
        family(
            e,
            Family::counter(
                "worker_requests",
                "Requests the slot's worker served (from zero for each new worker).",
            ),
            "slot",
            per_slot(&workers, |w| ConstCounter::new(w.requests)),
        )?;
        family(
            e,
            Family::gauge(
                "worker_in_flight_requests",
                "Requests in flight in the slot's worker.",
            ),
            "slot",
            per_slot(&workers, |w| ConstGauge::new(w.in_flight)),
        )?;
        family(
            e,
            Family::counter(
                "worker_responses_5xx",
                "Responses with a 5xx status from the slot's worker (from zero for each new \
                 worker).",
            ),
            "slot",
            per_slot(&workers, |w| ConstCounter::new(w.responses_5xx)),
        )?;
        family(
            e,
            Family::counter(
                "worker_failed_requests",
                "Requests of the slot's worker that ended without a complete response: the \
                 handler panicked, the service or the response body failed, the worker gave up \
                 its drain (from zero for each new worker).",
            ),
            "slot",
            per_slot(&workers, |w| ConstCounter::new(w.failures)),
        )?;
        family(
            e,
            Family::gauge("worker_age", "Time since the slot's worker was spawned.")
                .unit(Unit::Seconds),
            "slot",
            per_slot(&workers, |w| ConstGauge::new(w.age_ms as f64 / 1000.0)),
        )?;
        // Gauges of the last heartbeat's interval rather than a histogram: what `regiment top`
        // shows, one series a slot, and none for a worker that finished no request in it (or
        // does not say).
        let seconds = |us: u64| ConstGauge::new(us as f64 / 1e6);
        for (name, help, quantile) in [
            (
                "worker_latency_p50",
                "Median time of the requests the slot's worker finished in the interval of its \
                 last heartbeat, from arrival to the end of the response body (estimated from \
                 buckets that double from 128 us to 16.8 s).",
                (|w: &WorkerStatus| w.latency_p50_us) as fn(&WorkerStatus) -> Option<u64>,
            ),
            (
                "worker_latency_p99",
                "99th percentile of the time of the requests the slot's worker finished in the \
                 interval of its last heartbeat (as regiment_worker_latency_p50_seconds).",
                |w: &WorkerStatus| w.latency_p99_us,
            ),
        ] {
            family(
                e,
                Family::gauge(name, help).unit(Unit::Seconds),
                "slot",
                workers
                    .iter()
                    .filter_map(|(slot, w)| quantile(w).map(|us| (*slot, seconds(us)))),
            )?;
        }
        Ok(())
    }
}

/// One series a slot: `metric` of the slot's worker.
fn per_slot<'a, M>(
    workers: &'a [(usize, &WorkerStatus)],
    metric: impl Fn(&WorkerStatus) -> M + 'a,
) -> impl Iterator<Item = (usize, M)> + 'a {
    workers.iter().map(move |(slot, w)| (*slot, metric(w)))
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
    e: &mut DescriptorEncoder<'_>,
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

/// A gauge in bytes without labels (`NAME_bytes`).
fn bytes_gauge(
    e: &mut DescriptorEncoder<'_>,
    name: &'static str,
    help: &'static str,
    bytes: u64,
) -> std::fmt::Result {
    let metric = ConstGauge::new(bytes);
    let encoder = e.encode_descriptor(name, help, Some(&Unit::Bytes), metric.metric_type())?;
    metric.encode(encoder)
}

/// A metric without labels.
fn single(
    e: &mut DescriptorEncoder<'_>,
    name: &'static str,
    help: &'static str,
    metric: impl EncodeMetric,
) -> std::fmt::Result {
    let encoder = e.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(encoder)
}
