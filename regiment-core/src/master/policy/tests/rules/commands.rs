//! Commands: scale, replace.

use super::*;

#[test]
fn scale_up_adds_a_slot_and_spawns_into_it() {
    let mut h = Harness::ready(2);
    h.control(Control::ScaleUp);
    let new = h.current(2);
    assert_eq!(spawns(&h), [(new, 2, Generation(1), None)]);
    assert_eq!(
        h.take_events(),
        [
            Event::Scaled { workers: 3 },
            spawned(2, h.pid(new), 1, None)
        ]
    );
    h.ready_worker(new);
    let status = h.status();
    assert_eq!(status.workers_wanted, 3);
    assert_eq!(status.slots.len(), 3);
    assert_eq!(h.ready_count(), 3);
}

#[test]
fn scale_down_drains_the_last_slots_workers_and_never_goes_below_one() {
    let mut h = Harness::ready(3);
    let (_, last_pid) = h.serving(2);
    h.control(Control::ScaleDown);
    assert_eq!(
        h.take_events(),
        [
            Event::Scaled { workers: 2 },
            draining(2, last_pid, 1, "scaled down"),
        ]
    );
    h.exit_leaving();
    assert_eq!(h.take_events(), [exited(2, last_pid, 1, "exit 0")]);
    h.advance(secs(3600));
    assert_eq!(all_spawns(&h), 3, "nothing respawned in the removed slot");

    h.control(Control::ScaleDown);
    assert_eq!(h.policy.slots.len(), 1);
    h.take_events();
    h.control(Control::ScaleDown);
    assert_eq!(h.take_events(), []);
    assert_eq!(h.policy.slots.len(), 1);
    assert_eq!(h.status().workers_wanted, 1);
}

#[test]
fn scale_to_a_count_adds_or_drains_slots_at_once_with_one_event() {
    let mut h = Harness::ready(2);
    h.control(Control::ScaleTo(4));
    let (two, three) = (h.current(2), h.current(3));
    assert_eq!(
        spawns(&h),
        [
            (two, 2, Generation(1), None),
            (three, 3, Generation(1), None)
        ]
    );
    assert_eq!(
        h.take_events(),
        [
            Event::Scaled { workers: 4 },
            spawned(2, h.pid(two), 1, None),
            spawned(3, h.pid(three), 1, None),
        ]
    );
    h.ready_worker(two);
    h.ready_worker(three);
    h.take_events();
    let (one, pids) = (h.current(1), [h.pid(three), h.pid(two)]);
    h.control(Control::ScaleTo(1));
    assert_eq!(
        h.take_events(),
        [
            Event::Scaled { workers: 1 },
            draining(3, pids[0], 1, "scaled down"),
            draining(2, pids[1], 1, "scaled down"),
            draining(1, h.pid(one), 1, "scaled down"),
        ]
    );
    assert_eq!(h.status().workers_wanted, 1);
    // The same count, or none at all, changes nothing: a cluster keeps one worker.
    h.control(Control::ScaleTo(1));
    h.control(Control::ScaleTo(0));
    assert_eq!(h.take_events(), []);
    assert_eq!(h.status().workers_wanted, 1);
}

#[test]
fn scale_down_also_drains_a_replacement_starting_in_the_removed_slot() {
    let mut h = Harness::ready(2);
    let (_, old_pid, new, new_pid) = replace(&mut h, 1, "asked");
    h.take_events();
    h.control(Control::ScaleDown);
    assert_eq!(
        h.take_events(),
        [
            Event::Scaled { workers: 1 },
            draining(1, old_pid, 1, "scaled down"),
            draining(1, new_pid, 1, "scaled down"),
        ]
    );
    h.ready_worker(new);
    h.exit_leaving();
    h.advance(secs(3600));
    assert_eq!(all_spawns(&h), 3);
    assert_eq!(h.ready_count(), 1);
}

#[test]
fn replacing_a_slot_replaces_its_worker_new_before_old() {
    let mut h = Harness::ready(2);
    let (old, old_pid) = h.serving(1);
    h.control(Control::Replace {
        slot: 1,
        reason: "operator".into(),
    });
    let (new, new_pid) = h.starting(1);
    assert_eq!(spawns(&h), [(new, 1, Generation(1), Some(old))]);
    assert_eq!(h.take_events(), [spawned(1, new_pid, 1, Some(old_pid))]);
    assert!(!h.processes[&old].drained);
    h.ready_worker(new);
    assert_eq!(
        h.take_events(),
        [ready(1, new_pid, 1), replaced_by(1, old_pid, 1, new_pid)]
    );
    assert_eq!(h.status().slots[1], slot_status(1, 1, Some("operator")));
}

#[test]
fn replacing_a_missing_slot_does_nothing() {
    let mut h = Harness::ready(2);
    h.control(Control::Replace {
        slot: 2,
        reason: "operator".into(),
    });
    assert_eq!(
        h.step_effects().collect::<Vec<_>>(),
        [&Effect::StatusChanged]
    );
    h.advance(secs(3600));
    assert_eq!(h.take_events(), []);
    assert_eq!(all_spawns(&h), 2);
}

/// The replacements that took their slot so far, by label (their cause; for a worker's own
/// request, the criterion its reason names).
fn replaced(h: &Harness) -> Vec<(&'static str, u64)> {
    let counted = &h.policy.stats().replacements;
    counted.iter().map(|(label, n)| (*label, *n)).collect()
}

#[test]
fn a_replacement_reports_its_cause_once_it_took_the_slot() {
    let mut h = Harness::ready_with(config(3).heartbeat_timeout(secs(5)).max_surge(3));
    // An operator's reason is free text: what counts is who asked.
    h.control(Control::Replace {
        slot: 0,
        reason: "request-count: says the operator".into(),
    });
    // A worker's, the criterion it named: its text is not read either.
    h.replace_me_for(
        h.current(1),
        CriterionKind::Custom {
            name: "QueueDepth".into(),
        },
        "request-count: 3 requests >= 3",
    );
    h.heartbeat(h.current(2));
    h.advance(ms(5_001));
    assert_eq!(successors(&h), 3);
    assert_eq!(replaced(&h), [], "new before old: none took its slot yet");
    h.ready_all();
    assert_eq!(
        replaced(&h),
        [("custom", 1), ("operator", 1), ("unresponsive", 1)]
    );
    h.exit_leaving();
    h.control(Control::RollingRestart);
    h.ready_all();
    assert_eq!(
        replaced(&h),
        [
            ("custom", 1),
            ("operator", 1),
            ("rollout", 3),
            ("unresponsive", 1)
        ]
    );
}

#[test]
fn scaling_past_the_most_workers_is_refused_with_a_warning_saying_why() {
    use crate::limits::MAX_WORKERS;
    use crate::test_support::capture_log;

    let mut h = Harness::ready(MAX_WORKERS - 1);
    h.control(Control::ScaleUp);
    assert_took!(h, Event::Scaled { workers } if *workers == MAX_WORKERS);
    let new = h.current(MAX_WORKERS - 1);
    h.ready_worker(new);
    h.take_events();

    // SIGTTIN at the bound: no slot, no spawn, no event; a warning that says why.
    let ((), log) = capture_log(|| h.control(Control::ScaleUp));
    assert_eq!(h.take_events(), []);
    assert_eq!(all_spawns(&h), MAX_WORKERS);
    assert_eq!(h.status().workers_wanted, MAX_WORKERS);
    assert!(
        log.contains("WARN")
            && log.contains("one worker more refused")
            && log.contains("at most 1024 workers"),
        "{log}"
    );

    // A scale to a count past it, as `Handle::scale_to` asks: refused the same way.
    let ((), log) = capture_log(|| h.control(Control::ScaleTo(MAX_WORKERS + 1)));
    assert_eq!(h.take_events(), []);
    assert_eq!(h.status().workers_wanted, MAX_WORKERS);
    assert!(
        log.contains("WARN") && log.contains("scaling to 1025 workers refused"),
        "{log}"
    );

    // Fewer is still fine.
    h.control(Control::ScaleDown);
    assert_took!(h, Event::Scaled { workers } if *workers == MAX_WORKERS - 1);
}

#[test]
fn replacing_a_slot_without_a_worker_is_refused_saying_why() {
    use crate::test_support::capture_log;

    let mut h = Harness::ready(2);
    let (crashed, _) = h.serving(0);
    h.exit(crashed, "signal 9 (SIGKILL)");
    h.take_events();
    // Slot 0 waits out its backoff: nothing to replace there.
    let why = h.policy.replace_refusal(0).expect("refused");
    assert!(why.contains("slot 0 has no worker to replace"), "{why}");
    let why = h.policy.replace_refusal(2).expect("refused");
    assert!(why.contains("no slot 2: the slots are 0 to 1"), "{why}");
    assert_eq!(h.policy.replace_refusal(1), None);

    let replace = |slot| Control::Replace {
        slot,
        reason: "operator".into(),
    };
    let ((), log) = capture_log(|| h.control(replace(0)));
    assert_eq!(spawns(&h), []);
    assert_eq!(h.take_events(), []);
    assert!(
        log.contains("WARN") && log.contains("replacement refused: slot 0 has no worker"),
        "{log}"
    );
    // The respawn after the backoff is the slot's, as before.
    h.advance(secs(1));
    assert_took!(h, Event::Spawned { slot: 0, .. });
}
