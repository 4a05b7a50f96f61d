//! The counters and the exposition of a status snapshot.

use super::*;
use crate::events::RolloutOutcome;
use crate::events::{
    BudgetSource, MemoryBudgetStatus, MemoryLimitStatus, MemoryStatus, ProcessMemory, SlotStatus,
    WorkerState, WorkerStatus,
};
use std::time::Instant;

use crate::master::policy::{Cause, KillReason, Pending, Stats, UpgradeOutcome};
use crate::protocol::CriterionKind;

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
        failures: 3,
        latency_p50_us: None,
        latency_p99_us: None,
        silent_ms: Some(100),
        replace_reason: None,
        program: None,
        memory: None,
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
        "# TYPE regiment_log_lines_lost_total counter",
        "regiment_log_lines_lost_total 0",
        "# TYPE regiment_worker_resident_memory_bytes gauge",
        "regiment_worker_resident_memory_bytes{slot=\"0\"} 4096",
        "# TYPE regiment_worker_requests_total counter",
        "regiment_worker_requests_total{slot=\"1\"} 7",
        "regiment_worker_in_flight_requests{slot=\"0\"} 2",
        "regiment_worker_responses_5xx_total{slot=\"0\"} 1",
        "# TYPE regiment_worker_failed_requests_total counter",
        "regiment_worker_failed_requests_total{slot=\"0\"} 3",
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
fn latency_is_a_gauge_per_slot_for_workers_that_know_it() {
    let metrics = Arc::new(Metrics::default());
    let mut known = worker(0, WorkerState::Ready, 1500, 4096);
    known.latency_p50_us = Some(1_500);
    known.latency_p99_us = Some(250_000);
    let text = metrics.encode(status(
        vec![known, worker(1, WorkerState::Ready, 1500, 4096)],
        2,
    ));
    let lines = lines(&text);
    for expected in [
        "# TYPE regiment_worker_latency_p50_seconds gauge",
        "regiment_worker_latency_p50_seconds{slot=\"0\"} 0.0015",
        "regiment_worker_latency_p99_seconds{slot=\"0\"} 0.25",
    ] {
        assert!(lines.contains(&expected), "no {expected:?} in:\n{text}");
    }
    assert!(
        !text.contains("latency_p50_seconds{slot=\"1\"}"),
        "unknown latency has no series:\n{text}"
    );
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

/// The budget, the limit, the sum and the master's part, and each slot's worker's PSS and USS,
/// from the status's last reading.
#[test]
fn the_memory_is_shown_against_its_budget_and_per_slot() {
    let metrics = Arc::new(Metrics::default());
    let memory = |pss, uss| Some(ProcessMemory { pss, uss });
    let mut read = worker(0, WorkerState::Ready, 100, 4096);
    read.memory = memory(12_000_000, 9_000_000);
    // Slot 0's old worker drains: it is in the sum, not in the slot's series.
    let mut old = worker(0, WorkerState::Draining, 9000, 4096);
    old.memory = memory(30_000_000, 27_000_000);
    let unread = worker(1, WorkerState::Starting, 20, 0);
    let mut s = status(vec![old, read, unread], 2);
    s.memory = MemoryStatus {
        budget: Some(MemoryBudgetStatus {
            bytes: 209_715_200,
            source: BudgetSource::PercentOfLimit { percent: 80 },
        }),
        limit: Some(MemoryLimitStatus {
            bytes: 262_144_000,
            source: "memory.max of /kubepods/pod1/app".into(),
        }),
        total: 46_000_000,
        master: memory(4_000_000, 3_000_000),
    };
    let text = metrics.encode(s);
    let lines = lines(&text);
    for expected in [
        "# TYPE regiment_memory_budget_bytes gauge",
        "regiment_memory_budget_bytes 209715200",
        "# TYPE regiment_memory_limit_bytes gauge",
        "regiment_memory_limit_bytes 262144000",
        "# TYPE regiment_memory_bytes gauge",
        "regiment_memory_bytes 46000000",
        "# TYPE regiment_master_memory_bytes gauge",
        "regiment_master_memory_bytes 4000000",
        "# TYPE regiment_worker_memory_bytes gauge",
        "regiment_worker_memory_bytes{slot=\"0\"} 12000000",
        "# TYPE regiment_worker_unique_memory_bytes gauge",
        "regiment_worker_unique_memory_bytes{slot=\"0\"} 9000000",
    ] {
        assert!(lines.contains(&expected), "no {expected:?} in:\n{text}");
    }
    // The starting worker is not read yet: no series for its slot, rather than a 0.
    for unread in [
        "regiment_worker_memory_bytes{slot=\"1\"}",
        "regiment_worker_unique_memory_bytes{slot=\"1\"}",
    ] {
        assert!(!text.contains(unread), "{unread} in:\n{text}");
    }
}

/// Without a budget there is no budget series (a 0 would read as a budget of nothing), and
/// before the first reading no sum (a 0 would read as a regiment that holds nothing).
#[test]
fn a_figure_not_known_is_left_out_rather_than_shown_as_zero() {
    let metrics = Arc::new(Metrics::default());
    let mut s = status(vec![worker(0, WorkerState::Starting, 20, 0)], 1);
    s.memory.limit = Some(MemoryLimitStatus {
        bytes: 262_144_000,
        source: "the machine's memory".into(),
    });
    let text = metrics.encode(s);
    assert!(
        text.lines()
            .any(|l| l == "regiment_memory_limit_bytes 262144000"),
        "{text}"
    );
    for absent in [
        "regiment_memory_budget_bytes",
        "regiment_memory_bytes",
        "regiment_master_memory_bytes",
        "regiment_worker_memory_bytes{",
        "regiment_worker_unique_memory_bytes{",
    ] {
        assert!(
            !text.lines().any(|l| l.starts_with(absent)),
            "{absent} in:\n{text}"
        );
    }
}

#[test]
fn the_policys_counts_are_shown_under_a_fixed_set_of_label_values() {
    let metrics = Arc::new(Metrics::default());
    let replaced = |cause, reason: &str| Pending {
        reason: reason.into(),
        cause,
    };
    let mut stats = Stats::default();
    for pending in [
        replaced(
            Cause::Worker(CriterionKind::RequestCount),
            "request-count: 3 requests >= 3",
        ),
        replaced(
            Cause::Worker(CriterionKind::MemoryFootprint),
            "memory-footprint: rss 812 MB > 750 MB",
        ),
        replaced(
            Cause::Worker(CriterionKind::MaxAge),
            "max-age: up 1h 0m >= 1h",
        ),
        replaced(Cause::Worker(CriterionKind::Unspecified), "cache corrupt"),
        replaced(
            Cause::Worker(CriterionKind::Unspecified),
            "cache corrupt, again",
        ),
        // An operator's text is never read: the cause is what was asked.
        replaced(Cause::Operator, "request-count: pretend"),
        replaced(
            Cause::Unresponsive,
            "unresponsive: no heartbeat for 3000 ms",
        ),
        replaced(Cause::Rollout, "rolling restart to generation 2"),
    ] {
        stats.count_replacement(&pending);
    }
    stats.count_kill(KillReason::DrainDeadline);
    stats.count_oom_kill();
    stats.count_oom_kill();
    stats.count_crash();
    stats.count_start_failure();
    stats.count_rollout(RolloutOutcome::Done);
    stats.count_rollout(RolloutOutcome::Superseded);
    stats.count_rollout(RolloutOutcome::InProgress);
    stats.count_upgrade(UpgradeOutcome::Aborted);
    stats.count_upgrade(UpgradeOutcome::Refused);
    stats.count_upgrade(UpgradeOutcome::Refused);
    stats.count_upgrade(UpgradeOutcome::InProgress);
    stats.count_upgrade(UpgradeOutcome::RolledBack);
    metrics.record(&stats);
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
        // The kernel's kills, beside the master's.
        "regiment_kills_total{reason=\"oom\"} 2",
        "regiment_crashes_total 1",
        "regiment_start_failures_total 1",
        "regiment_rollouts_total{outcome=\"done\"} 1",
        "regiment_rollouts_total{outcome=\"aborted\"} 0",
        "regiment_rollouts_total{outcome=\"superseded\"} 1",
        "regiment_upgrades_total{outcome=\"done\"} 0",
        "regiment_upgrades_total{outcome=\"aborted\"} 1",
        "regiment_upgrades_total{outcome=\"refused\"} 2",
        "regiment_upgrades_total{outcome=\"rolled_back\"} 1",
    ] {
        assert!(lines.contains(&expected), "no {expected:?} in:\n{text}");
    }
    // However many reasons the workers gave: one series per fixed value.
    let series = |name: &str| lines.iter().filter(|l| l.starts_with(name)).count();
    assert_eq!(series("regiment_replacements_total{"), 10);
    assert_eq!(series("regiment_kills_total{"), 6);
    assert_eq!(series("regiment_rollouts_total{"), 3);
    assert_eq!(series("regiment_upgrades_total{"), 4);
}

/// A worker's request counts under the criterion it named, never under what its text reads
/// like; the application's own criteria share one series, whatever their names.
#[test]
fn a_worker_request_counts_under_the_criterion_it_named() {
    let metrics = Arc::new(Metrics::default());
    let asked = |criterion, reason: &str| Pending {
        reason: reason.into(),
        cause: Cause::Worker(criterion),
    };
    let custom = |name: &str| CriterionKind::Custom { name: name.into() };
    let mut stats = Stats::default();
    for pending in [
        // The built-in criteria's reasons, with no criterion named (an application's own
        // request in those words, or a worker of an earlier build): the worker asked.
        asked(CriterionKind::Unspecified, "request-count: 3 requests >= 3"),
        asked(
            CriterionKind::Unspecified,
            "memory-footprint: rss 9 MB > 0 MB",
        ),
        // A criterion named, whatever the text says.
        asked(CriterionKind::MemoryFootprint, "leaking"),
        asked(
            custom("ServerErrors"),
            "server-errors: 50 consecutive 5xx >= 50",
        ),
        asked(custom("QueueDepth"), "request-count: looks built in"),
        asked(custom(&"x".repeat(100)), "a name of its own"),
    ] {
        stats.count_replacement(&pending);
    }
    metrics.record(&stats);
    let text = metrics.encode(status(Vec::new(), 1));
    let lines = lines(&text);
    for expected in [
        "regiment_replacements_total{reason=\"worker\"} 2",
        "regiment_replacements_total{reason=\"memory\"} 1",
        "regiment_replacements_total{reason=\"custom\"} 3",
        "regiment_replacements_total{reason=\"request_count\"} 0",
        "regiment_replacements_total{reason=\"max_age\"} 0",
    ] {
        assert!(lines.contains(&expected), "no {expected:?} in:\n{text}");
    }
    let series = lines
        .iter()
        .filter(|l| l.starts_with("regiment_replacements_total{"))
        .count();
    assert_eq!(series, 10, "one series per fixed value:\n{text}");
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
