//! Timers: drain deadline, respawn backoff.

use super::*;

#[test]
fn a_draining_worker_is_killed_at_exactly_the_drain_deadline() {
    let mut h = Harness::ready_with(config(1).drain_timeout(secs(1)));
    let (old, old_pid) = h.serving(0);
    h.replace_me(old, "asked");
    h.advance(secs(2));
    h.ready_all();
    let drained_at = since_start(&h);
    assert_eq!(drains(&h), [(drained_at, old, secs(1))]);
    h.take_events();

    h.advance(ms(999));
    assert_eq!(kills(&h), []);
    assert_eq!(h.policy.poll_timeout(), Some(h.t0 + drained_at + secs(1)));
    h.advance(ms(1));
    assert_eq!(
        kills(&h),
        [(drained_at + secs(1), old, KillReason::DrainDeadline)]
    );
    assert_eq!(h.take_events(), [killed(0, old_pid, 1, "drain deadline")]);
    h.exit_leaving();
    assert_eq!(
        h.take_events(),
        [exited(0, old_pid, 1, "signal 9 (SIGKILL)")]
    );
    assert_eq!(h.ready_count(), 1);
}

#[test]
fn a_worker_that_exits_within_its_drain_is_not_killed() {
    let mut h = Harness::ready(1);
    let old = h.current(0);
    h.replace_me(old, "asked");
    h.ready_all();
    h.advance(secs(29));
    h.exit_leaving();
    h.advance(secs(3600));
    assert_eq!(kills(&h), []);
    assert_eq!(h.policy.poll_timeout(), None);
}

#[test]
fn a_crashing_worker_is_respawned_in_its_slot_with_growing_delays() {
    let mut h = Harness::ready(2);
    let other = h.current(0);
    for delay in [100, 200, 400, 800] {
        // Up a second: not a healthy period.
        h.advance(secs(1));
        h.take_events();
        let (w, pid) = h.serving(1);
        h.exit(w, "signal 9 (SIGKILL)");
        assert_eq!(
            h.take_events(),
            [killed_from_outside(1, pid, 1, "SIGKILL", delay)]
        );
        h.advance(ms(delay - 1));
        assert_eq!(h.policy.slots[1].current, None, "respawned early");
        h.advance(ms(1));
        let respawned = h.current(1);
        assert_eq!(spawns(&h), [(respawned, 1, Generation(1), None)]);
        h.ready_worker(respawned);
    }
    assert_eq!(h.current(0), other, "the other slot was left alone");
    assert_eq!(
        h.status().slots[1],
        slot_status(1, 4, Some("killed by SIGKILL from outside"))
    );
}

#[test]
fn the_respawn_delays_start_over_after_a_worker_stayed_healthy() {
    let mut h = Harness::ready(1);
    let crash = |h: &mut Harness| {
        let w = h.current(0);
        h.exit(w, "signal 9 (SIGKILL)");
        let delay = *announced_delays(&h.take_events()).first().expect("a crash");
        h.advance(ms(delay));
        h.ready_all();
        delay
    };
    assert_eq!(crash(&mut h), 100);
    assert_eq!(crash(&mut h), 200);
    assert_eq!(crash(&mut h), 400);
    // Ready for a millisecond less than the healthy period: still growing.
    h.advance(secs(60) - ms(1));
    assert_eq!(crash(&mut h), 800);
    // Ready for the healthy period: back to the start.
    h.advance(secs(60));
    assert_eq!(crash(&mut h), 100);
    assert_eq!(crash(&mut h), 200);
}

#[test]
fn a_crash_after_a_healthy_period_starts_the_backoff_over_despite_failed_replacements() {
    let mut h = Harness::ready(1);
    let (old, old_pid) = h.serving(0);
    h.advance(secs(60));
    // Its replacements keep failing, which grows the slot's backoff...
    h.replace_me(old, "asked");
    for delay in [100, 200] {
        let (new, _) = h.starting(0);
        h.exit(new, "exit 1");
        if delay == 100 {
            h.advance(ms(delay));
        }
    }
    h.take_events();
    // ...but the worker itself crashes after a healthy period: its respawn starts over.
    h.exit(old, "signal 11 (SIGSEGV)");
    assert_eq!(
        h.take_events(),
        [crashed(0, old_pid, 1, "signal 11 (SIGSEGV)", 100)]
    );
    h.advance(ms(100));
    let respawned = h.current(0);
    assert_eq!(spawns(&h), [(respawned, 0, Generation(1), None)]);
    // The fresh worker is the replacement that was asked for: none is started for it.
    h.ready_worker(respawned);
    assert_eq!(h.successor(0), None);
    assert_eq!(h.policy.queue.len(), 0);
}

#[test]
fn a_first_worker_that_fails_to_start_is_retried_with_backoff() {
    let mut h = Harness::new(config(1));
    h.start();
    for delay in [100, 200, 400] {
        let (w, pid) = h.serving(0);
        h.take_events();
        h.exit(w, "exit 2");
        let why = "exited before ready: exit 2";
        assert_eq!(h.take_events(), [start_failed(0, pid, 1, why, delay)]);
        h.advance(ms(delay - 1));
        assert_eq!(h.policy.slots[0].current, None);
        h.advance(ms(1));
        assert_eq!(spawns(&h).len(), 1);
    }
    h.ready_all();
    assert_eq!(h.ready_count(), 1);
}
