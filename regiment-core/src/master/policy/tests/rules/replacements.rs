//! Replacements: new before old, once.

use super::*;

#[test]
fn a_replacement_is_ready_before_the_old_worker_drains() {
    let mut h = Harness::ready(2);
    let other = h.current(1);

    let (old, old_pid, new, new_pid) = replace(&mut h, 0, "asked by the test");
    assert_eq!(spawns(&h), [(new, 0, Generation(1), Some(old))]);
    assert_eq!(
        h.take_events(),
        [
            replace_requested(0, old_pid, 1, "asked by the test"),
            spawned(0, new_pid, 1, Some(old_pid)),
        ]
    );

    // However long the replacement takes within its start timeout, the old worker serves.
    h.advance(secs(30) - ms(1));
    assert_eq!(h.take_events(), []);
    assert!(drains(&h).is_empty());
    assert_eq!(h.current(0), old);

    h.ready_worker(new);
    assert_eq!(
        h.take_events(),
        [ready(0, new_pid, 1), replaced_by(0, old_pid, 1, new_pid)]
    );
    assert_eq!(drains(&h), [(since_start(&h), old, secs(30))]);
    assert_eq!((h.current(0), h.successor(0)), (new, None));

    h.exit_leaving();
    assert_eq!(h.take_events(), [exited(0, old_pid, 1, "exit 0")]);
    assert_eq!(h.current(1), other, "the other slot was left alone");
    assert_eq!(all_spawns(&h), 3);
}

#[test]
fn many_replacement_requests_from_one_worker_make_one_replacement() {
    let mut h = Harness::ready(1);
    let (old, old_pid) = h.serving(0);

    // The worker repeats its request (as the fixture does) while its replacement starts.
    h.replace_me(old, "max requests");
    h.replace_me(old, "max requests");
    let (new, new_pid) = h.starting(0);
    h.replace_me(old, "max requests");
    assert_eq!(
        h.take_events(),
        [
            replace_requested(0, old_pid, 1, "max requests"),
            spawned(0, new_pid, 1, Some(old_pid)),
        ]
    );
    h.ready_worker(new);
    h.exit_leaving();
    h.advance(secs(3600));
    assert_eq!(all_spawns(&h), 2, "one replacement for three requests");
    assert_eq!(h.current(0), new);
    assert_eq!(h.status().slots[0].restarts, 1);
}

#[test]
fn requests_from_two_criteria_at_once_make_one_replacement_for_the_first_reason() {
    let mut h = Harness::ready(1);
    let (old, old_pid) = h.serving(0);

    h.replace_me(old, "max requests: 1000");
    h.replace_me(old, "memory: 600 MiB over 512 MiB");
    let (new, new_pid) = h.starting(0);
    assert_eq!(
        h.take_events(),
        [
            replace_requested(0, old_pid, 1, "max requests: 1000"),
            spawned(0, new_pid, 1, Some(old_pid)),
        ]
    );
    assert_eq!(
        h.worker(old).replace_reason.as_deref(),
        Some("max requests: 1000")
    );
    h.ready_worker(new);
    h.exit_leaving();
    assert_eq!(all_spawns(&h), 2);
    assert_eq!(
        h.status().slots[0],
        slot_status(0, 1, Some("max requests: 1000"))
    );
}

#[test]
fn a_replacement_request_from_a_draining_worker_is_ignored() {
    let mut h = Harness::ready(1);
    let (old, old_pid) = h.serving(0);
    // Replaced by a rolling restart: it has not asked for anything yet.
    h.control(Control::RollingRestart);
    let (new, _) = h.starting(0);
    h.ready_worker(new);
    h.take_events();
    assert!(h.processes[&old].drained);

    h.replace_me(old, "leaking");
    assert_eq!(
        h.take_events(),
        [replace_requested(0, old_pid, 1, "leaking")]
    );
    assert_eq!(spawns(&h), []);
    assert_eq!((h.current(0), h.successor(0)), (new, None));
    // It is left to its drain deadline; its successor is not replaced for it.
    h.advance(secs(30) - ms(1));
    assert_eq!(h.take_events(), []);
    h.advance(ms(1));
    assert_eq!(
        kills(&h),
        [(since_start(&h), old, KillReason::DrainDeadline)]
    );
    h.exit_leaving();
    h.advance(secs(3600));
    assert_eq!(all_spawns(&h), 2);
    assert_eq!(h.current(0), new);
}

#[test]
fn a_replacement_request_from_a_starting_worker_is_acted_on_once_it_is_ready() {
    let mut h = Harness::ready(1);
    let (_, old_pid, new, new_pid) = replace(&mut h, 0, "first");
    h.take_events();

    h.replace_me(new, "second");
    assert_eq!(
        h.take_events(),
        [replace_requested(0, new_pid, 1, "second")]
    );
    assert_eq!(spawns(&h), [], "nothing replaces a worker not serving yet");
    assert_eq!(h.successor(0), Some(new));

    // It asked before it served anything: its own replacement backs off (see `unserved`).
    h.ready_worker(new);
    assert_eq!(
        h.take_events(),
        [
            ready(0, new_pid, 1),
            replaced_by(0, old_pid, 1, new_pid),
            replacement_delayed(0, new_pid, 1, "before it was ready", 100),
        ]
    );
    h.advance(ms(100));
    let (third, third_pid) = h.starting(0);
    assert_eq!(spawns(&h), [(third, 0, Generation(1), Some(new))]);
    assert_eq!(h.take_events(), [spawned(0, third_pid, 1, Some(new_pid))]);
    h.ready_worker(third);
    assert_eq!(
        h.take_events(),
        [
            ready(0, third_pid, 1),
            replaced_by(0, new_pid, 1, third_pid)
        ]
    );
    assert_eq!(
        h.status().slots[0].last_restart_reason.as_deref(),
        Some("second")
    );
}

#[test]
fn a_first_worker_that_asked_to_be_replaced_while_starting_is_replaced_once_ready() {
    let mut h = Harness::new(config(1));
    h.start();
    let first = h.current(0);
    h.replace_me_for(first, CriterionKind::MemoryFootprint, "asked early");
    assert_eq!(spawns(&h), []);
    h.ready_worker(first);
    // It asked before it served anything: its replacement backs off (see `unserved`).
    assert_eq!(spawns(&h), []);
    h.advance(ms(100));
    let next = h.successor(0).expect("the early request acted on");
    assert_eq!(spawns(&h), [(next, 0, Generation(1), Some(first))]);
    h.ready_worker(next);
    let counted: Vec<_> = h.policy.stats().replacements.clone().into_iter().collect();
    assert_eq!(
        counted,
        [("memory", 1)],
        "the criterion it named while starting"
    );
}

#[test]
fn a_worker_that_exits_before_its_replacement_is_ready_is_not_respawned_twice() {
    let mut h = Harness::ready(1);
    let (old, old_pid, succ, succ_pid) = replace(&mut h, 0, "asked");
    h.take_events();

    h.exit(old, "signal 9 (SIGKILL)");
    assert_eq!(
        h.take_events(),
        [killed_from_outside(0, old_pid, 1, "SIGKILL", 0)],
        "the starting replacement takes the slot"
    );
    assert_eq!(spawns(&h), []);
    h.advance(secs(20));
    assert_eq!(h.take_events(), []);

    h.ready_worker(succ);
    assert_eq!(h.take_events(), [ready(0, succ_pid, 1)]);
    assert_eq!((h.current(0), h.successor(0)), (succ, None));
    h.advance(secs(3600));
    assert_eq!(h.take_events(), []);
    assert_eq!(all_spawns(&h), 2);
    // One new worker, one restart, and the crash is why.
    let slot = &h.status().slots[0];
    assert_eq!(slot.restarts, 1);
    assert_eq!(
        slot.last_restart_reason.as_deref(),
        Some("killed by SIGKILL from outside")
    );
}

#[test]
fn a_replacement_that_fails_to_start_is_retried_after_a_backoff_and_the_old_worker_serves() {
    let mut h = Harness::ready(1);
    let (old, _, first, first_pid) = replace(&mut h, 0, "asked");
    h.take_events();

    h.exit(first, "exit 1");
    assert_eq!(
        h.take_events(),
        [start_failed(
            0,
            first_pid,
            1,
            "exited before ready: exit 1",
            100
        )]
    );
    assert_eq!(h.current(0), old);
    assert!(h.worker(old).is_ready());
    h.advance(ms(99));
    assert_eq!(h.successor(0), None);
    h.advance(ms(1));
    let second = h.successor(0).expect("retried after 100 ms");
    assert_eq!(spawns(&h), [(second, 0, Generation(1), Some(old))]);
    h.ready_worker(second);
    assert!(h.processes[&old].drained);
    assert_eq!(h.status().slots[0].restarts, 1);
}
