//! The memory budget: over it, the largest worker is replaced, one at a time, and no
//! replacement starts a new worker beside the old one unless the budget has room for it.

use super::*;
use crate::events::ProcessMemory;
use crate::master::policy::MemoryReading;

/// As the budget counts them.
const MB: u64 = 1 << 20;

fn budget(workers: usize, mb: u64) -> PolicyConfig {
    PolicyConfig {
        memory_budget: Some(mb * MB),
        ..config(workers)
    }
}

fn memory(uss_mb: u64) -> ProcessMemory {
    // Each worker also holds its share of the pages the regiment shares.
    ProcessMemory {
        pss: uss_mb * MB + MB,
        uss: uss_mb * MB,
    }
}

/// A reading of the master (1 MB of PSS) and of each slot's current worker, by its USS in MB.
fn read(h: &mut Harness, uss_mb: &[u64]) {
    let workers = uss_mb
        .iter()
        .enumerate()
        .map(|(slot, uss)| (h.current(slot), memory(*uss)))
        .collect();
    read_workers(h, workers);
}

fn read_workers(h: &mut Harness, workers: Vec<(WorkerId, ProcessMemory)>) {
    h.input(Input::Memory(MemoryReading {
        master: Some(ProcessMemory { pss: MB, uss: MB }),
        workers,
    }));
}

fn budget_requests(events: &[Event]) -> Vec<(usize, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ReplaceRequested { slot, reason, .. } if reason.starts_with("memory-budget") => {
                Some((*slot, reason.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn readings_show_in_the_status_and_without_a_budget_decide_nothing() {
    let mut h = Harness::ready(2);
    read(&mut h, &[300, 400]);
    let status = h.status();
    // 1 MB of master, and each worker's USS plus its 1 MB share.
    assert_eq!(status.memory_total, 703 * MB);
    assert_eq!(status.workers[1].memory, Some(memory(400)));
    assert!(status.master_memory.is_some());
    assert_eq!(h.take_events(), []);
    assert!(spawns(&h).is_empty());
}

#[test]
fn over_the_budget_the_largest_worker_is_drained_first_and_its_slot_refilled_once_it_exited() {
    let mut h = Harness::ready_with(budget(3, 100));
    read(&mut h, &[5, 5, 5]);
    h.advance(secs(1));
    read(&mut h, &[20, 60, 15]); // 1 + 21 + 61 + 16 = 99 MB, heading for 179 MB
    let events = h.take_events();
    let (old, old_pid) = (h.policy.slots[1].current, h.pid(WorkerId(2)));
    assert_eq!(old, None, "slot 1's worker left its slot at once");
    assert_eq!(
        budget_requests(&events),
        [(
            1,
            "memory-budget: the regiment holds 99.0 MB and heads for 179.0 MB by the next \
             reading, over its 100.0 MB budget; this worker holds the most private memory, \
             60.0 MB"
                .to_owned()
        )]
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Draining { slot: 1, pid, why, .. }
            if *pid == old_pid && why.contains("drained before its replacement starts: the \
               memory budget's headroom, 0.0 MB, holds no new worker of 5.0 MB"))),
        "{events:?}"
    );
    assert!(spawns(&h).is_empty(), "no new worker beside the old one");

    // Not before the old worker exited, however long its drain takes.
    h.advance(secs(10));
    assert_eq!(all_spawns(&h), 3);
    h.exit_leaving();
    let (new, _) = (h.current(1), ());
    assert_eq!(all_spawns(&h), 4);
    assert_eq!(h.policy.slots[1].restarts, 1);
    assert!(
        (h.policy.slots[1].last_reason.as_deref()).is_some_and(|r| r.starts_with("memory-budget"))
    );
    assert_eq!(h.policy.stats().replacements.get("memory_budget"), Some(&1));
    h.ready_worker(new);
    assert_eq!(h.ready_count(), 3);
}

#[test]
fn one_budget_replacement_at_a_time_then_the_next_largest() {
    let mut h = Harness::ready_with(budget(3, 100));
    read(&mut h, &[40, 50, 30]);
    let first = budget_requests(&h.take_events());
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, 1, "the largest first");

    // Still over budget: nothing more while the first is under way (draining).
    let (w0, w2) = (h.current(0), h.current(2));
    let old = WorkerId(2);
    read_workers(
        &mut h,
        vec![(w0, memory(40)), (old, memory(50)), (w2, memory(30))],
    );
    h.exit_leaving();
    // Its slot refilled, the new worker not ready yet: still under way.
    read(&mut h, &[41, 0, 31]);
    assert_eq!(budget_requests(&h.take_events()), []);
    let new = h.current(1);
    h.ready_worker(new);
    read(&mut h, &[45, 2, 60]);
    let next = budget_requests(&h.take_events());
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].0, 2, "then the largest of those left");
}

#[test]
fn under_the_budget_and_steady_nothing_is_replaced() {
    let mut h = Harness::ready_with(budget(2, 100));
    for _ in 0..5 {
        read(&mut h, &[45, 45]); // 93 MB, not growing
        h.advance(secs(1));
    }
    assert_eq!(budget_requests(&h.take_events()), []);
    assert_eq!(all_spawns(&h), 2);
}

#[test]
fn a_worker_asked_replacement_starts_beside_the_old_one_only_when_the_budget_has_room() {
    let mut h = Harness::ready_with(budget(2, 100));
    read(&mut h, &[10, 10]); // new workers: 10 MB
    read(&mut h, &[30, 10]); // 43 MB, heading for 63 MB: 37 MB of room
    let (old, _, new, _) = replace(&mut h, 0, "rss 812 MB > 750 MB");
    assert_eq!(spawns(&h), [(new, 0, Generation(1), Some(old))]);
    h.ready_worker(new);
    h.exit_leaving();

    h.take_events();
    // Growing slowly (the policy heads for the sum plus the last growth) to 91 MB, heading
    // for 96 MB: no room for a 10 MB worker, and not over the budget.
    for uss in (15..=78).step_by(7) {
        read(&mut h, &[10, uss]);
    }
    assert_eq!(h.take_events(), []);
    let (old, old_pid) = h.serving(1);
    h.replace_me(old, "rss 812 MB > 750 MB");
    assert!(spawns(&h).is_empty());
    assert_took!(h, Event::Draining { slot: 1, pid, why, .. }
        if *pid == old_pid && why.starts_with("rss 812 MB > 750 MB; drained before"));
    h.exit_leaving();
    assert_eq!(
        spawns(&h).len(),
        1,
        "the slot is refilled once the old one exited"
    );
    assert_eq!(h.policy.stats().replacements.get("worker"), Some(&2));
}

#[test]
fn a_rollout_starts_new_workers_first_whatever_the_budget() {
    let mut h = Harness::ready_with(budget(2, 100));
    read(&mut h, &[44, 44]); // 91 MB: no room for a worker of 44 MB
    h.control(Control::RollingRestart);
    assert_eq!(
        successors(&h),
        1,
        "a deploy's new worker starts beside the old one"
    );
}

#[test]
fn workers_drained_first_count_against_the_surge() {
    let mut h = Harness::ready_with(PolicyConfig {
        max_surge: Some(1),
        ..budget(3, 100)
    });
    read(&mut h, &[28, 28, 28]); // 88 MB: no room for a worker of 28 MB
    let (a, b) = (h.current(0), h.current(1));
    h.replace_me(a, "asked");
    h.replace_me(b, "asked");
    assert_eq!(drains(&h).len(), 1, "the second waits its turn");
    assert_eq!(
        h.policy
            .slots
            .iter()
            .filter(|s| s.vacating.is_some())
            .count(),
        1
    );
    assert_eq!(h.policy.slots[1].current, Some(b), "still serving");
}

#[test]
fn a_worker_drained_first_and_its_budget_replacement_survive_a_handover() {
    let mut h = Harness::ready_with(budget(2, 100));
    read(&mut h, &[10, 10]);
    read(&mut h, &[80, 15]);
    assert_eq!(h.policy.slots[0].current, None);
    let config = h.policy.config;
    let now = h.now;
    h.hand_over(config, now);
    assert!(h.policy.slots[0].vacating.is_some());
    assert!(h.policy.memory.replacing.is_some());
    assert!(spawns(&h).is_empty());
    h.exit_leaving();
    assert_eq!(spawns(&h).len(), 1, "refilled by the new master");
    assert_eq!(h.policy.stats().replacements.get("memory_budget"), Some(&1));
}
