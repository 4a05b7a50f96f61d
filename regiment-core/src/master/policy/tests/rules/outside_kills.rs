//! A worker killed by a signal the master did not send (an operator's `kill -9`, the OOM
//! killer) is booked as killed from outside, not as a crash of the program; it is respawned as
//! a crash is, with the same backoff.

use super::*;

#[test]
fn a_ready_worker_killed_from_outside_is_named_so_and_respawned_with_the_crash_backoff() {
    let mut h = Harness::ready(2);
    for delay in [100, 200, 400] {
        // Up a second: not a healthy period, so the backoff grows as for a crash loop.
        h.advance(secs(1));
        h.take_events();
        let (w, pid) = h.serving(1);
        h.exit(w, "signal 9 (SIGKILL)");
        assert_eq!(
            h.take_events(),
            [killed_from_outside(1, pid, 1, "SIGKILL", delay)]
        );
        h.advance(ms(delay));
        let respawned = h.current(1);
        assert_eq!(spawns(&h), [(respawned, 1, Generation(1), None)]);
        h.ready_worker(respawned);
    }
    assert_eq!(
        h.status().slots[1],
        slot_status(1, 3, Some("killed by SIGKILL from outside"))
    );

    // Any signal the master did not send, but not one of a program's own faults.
    h.advance(secs(1));
    h.take_events();
    let (w, pid) = h.serving(0);
    h.exit(w, "signal 15 (SIGTERM)");
    assert_eq!(
        h.take_events(),
        [killed_from_outside(0, pid, 1, "SIGTERM", 100)]
    );
    h.advance(ms(100));
    let (w, pid) = h.serving(0);
    h.ready_worker(w);
    h.advance(secs(1));
    h.take_events();
    h.exit(w, "signal 11 (SIGSEGV)");
    assert_eq!(
        h.take_events(),
        [crashed(0, pid, 1, "signal 11 (SIGSEGV)", 200)]
    );
    assert_eq!(
        h.status().slots[0],
        slot_status(0, 2, Some("crashed: signal 11 (SIGSEGV)"))
    );
}

#[test]
fn a_kill_the_master_sent_is_no_kill_from_outside() {
    let mut h = Harness::ready_with(config(1).drain_timeout(secs(5)));
    let (old, old_pid, new, _) = replace(&mut h, 0, "asked");
    h.ready_worker(new);
    h.advance(secs(5));
    assert_eq!(
        kills(&h).last(),
        Some(&(secs(5), old, KillReason::DrainDeadline))
    );
    h.take_events();
    h.exit(old, "signal 9 (SIGKILL)");
    assert_eq!(
        h.take_events(),
        [exited(0, old_pid, 1, "signal 9 (SIGKILL)")]
    );

    // Killed at its start timeout, by the master.
    let (serving, _) = h.serving(0);
    h.replace_me(serving, "asked again");
    let (late, late_pid) = h.starting(0);
    h.advance(secs(30));
    h.take_events();
    h.exit(late, "signal 9 (SIGKILL)");
    assert_eq!(
        h.take_events(),
        [start_failed(
            0,
            late_pid,
            1,
            "start timeout: signal 9 (SIGKILL)",
            100
        )]
    );
}

#[test]
fn a_starting_worker_killed_from_outside_failed_to_start_and_says_why() {
    let mut h = Harness::ready(1);
    let (_, _, new, new_pid) = replace(&mut h, 0, "asked");
    h.take_events();
    h.exit(new, "signal 9 (SIGKILL)");
    assert_eq!(
        h.take_events(),
        [start_failed(
            0,
            new_pid,
            1,
            "killed by SIGKILL from outside before ready",
            100
        )]
    );
}

/// The master cannot tell the OOM killer (a new build that needs more memory: the build's
/// fault) from an operator's `kill -9`: a new generation's workers killed soon after ready
/// count against the rollout as crashes do, and the old generation keeps serving.
#[test]
fn new_workers_killed_from_outside_soon_after_ready_abort_the_rollout() {
    let mut h = Harness::ready_with(config(2).max_surge(1).rollout_failures(2));
    let n0 = roll_first(&mut h);
    let (n1, _) = h.starting(1);
    h.advance(ms(100));
    h.exit(n0, "signal 9 (SIGKILL)");
    assert_eq!(h.status().rollout, Some(2), "one kill is not enough");
    h.ready_worker(n1);
    h.exit_leaving();
    h.take_events();
    h.exit(n1, "signal 9 (SIGKILL)");
    assert_took!(h, Event::RolloutAborted { generation: 2, why }
        if why == "2 workers of generation 2 crashed soon after they were ready");
}
