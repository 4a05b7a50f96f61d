//! A worker killed by a signal the master did not send (an operator's `kill -9`, the OOM
//! killer) is booked as killed from outside, not as a crash of the program; it is respawned as
//! a crash is, with the same backoff. A kill the driver found to be the OOM killer's is named
//! so, whatever the worker was doing, and counted.

use super::*;
use crate::master::policy::Policy;
use crate::master::policy::handover::PolicyState;

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

#[test]
fn a_ready_worker_the_oom_killer_killed_is_named_so_and_respawned_with_the_crash_backoff() {
    let mut h = Harness::ready(2);
    h.advance(secs(1));
    h.take_events();
    let (w, pid) = h.serving(1);
    h.exit(w, "killed by the OOM killer");
    assert_eq!(h.take_events(), [oom_killed(1, pid, 1, 100)]);
    // What `regiment status` shows of the slot.
    assert_eq!(
        h.status().slots[1],
        slot_status(1, 1, Some("killed by the OOM killer"))
    );
    h.advance(ms(100));
    let respawned = h.current(1);
    assert_eq!(spawns(&h), [(respawned, 1, Generation(1), None)]);
    let stats = h.policy.stats();
    assert_eq!((stats.oom_kills, stats.crashes), (1, 1));
    assert_eq!(stats.kills.len(), 0, "no kill of the master's");
}

#[test]
fn a_starting_worker_the_oom_killer_killed_failed_to_start_and_says_why() {
    let mut h = Harness::ready(1);
    let (_, _, new, new_pid) = replace(&mut h, 0, "asked");
    h.take_events();
    h.exit(new, "killed by the OOM killer");
    assert_eq!(
        h.take_events(),
        [Event::StartFailed {
            slot: 0,
            pid: new_pid,
            generation: 1,
            why: "killed by the OOM killer before ready".into(),
            retry_in_ms: 100,
            oom_killed: true,
        }]
    );
    assert_eq!(h.policy.stats().oom_kills, 1);
}

#[test]
fn a_draining_worker_the_oom_killer_killed_exited_so() {
    let mut h = Harness::ready(1);
    let (old, old_pid, new, _) = replace(&mut h, 0, "asked");
    h.ready_worker(new);
    h.take_events();
    h.exit(old, "killed by the OOM killer");
    assert_eq!(
        h.take_events(),
        [Event::Exited {
            slot: 0,
            pid: old_pid,
            generation: 1,
            status: "killed by the OOM killer".into(),
            abandoned_drain: None,
            oom_killed: true,
        }]
    );
    assert_eq!(h.policy.stats().oom_kills, 1);
    // Nothing to restart: the slot's last restart is still the replacement that made it leave.
    assert_eq!(h.status().slots[0], slot_status(0, 1, Some("asked")));
}

/// The driver asks the OOM kill count only about exits the master did not cause: the policy's
/// books say which workers it sent SIGKILL, until their exit is reported.
#[test]
fn the_books_say_which_workers_the_master_sent_sigkill() {
    let mut h = Harness::ready_with(config(1).drain_timeout(secs(5)));
    let (old, _, new, _) = replace(&mut h, 0, "asked");
    assert_eq!(h.policy.sigkill_sent(old), None, "serving");
    assert_eq!(h.policy.sigkill_sent(new), None, "starting");
    h.ready_worker(new);
    assert_eq!(h.policy.sigkill_sent(old), None, "draining");
    h.advance(secs(5));
    assert_eq!(
        h.policy.sigkill_sent(old),
        Some(KillReason::DrainDeadline),
        "killed at its drain deadline"
    );
    h.exit(old, "signal 9 (SIGKILL)");
    assert_eq!(h.policy.sigkill_sent(old), None, "gone from the books");
}

/// The count is handed over with the others; a state written before it was kept reads as none.
#[test]
fn oom_kills_are_handed_over_and_an_older_state_has_none() {
    let mut h = Harness::ready(1);
    let (w, _) = h.serving(0);
    h.exit(w, "killed by the OOM killer");
    h.advance(ms(100));
    h.ready_all();
    let json = h.policy.snapshot(h.now).expect("quiet").to_json();
    let restored = Policy::restore(config(1), PolicyState::from_json(&json).unwrap(), h.now);
    assert_eq!(restored.expect("restores").stats().oom_kills, 1);

    let mut older: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(older["stats"]["oom_kills"], 1);
    older["stats"].as_object_mut().unwrap().remove("oom_kills");
    let older = PolicyState::from_json(&serde_json::to_vec(&older).unwrap()).unwrap();
    let restored = Policy::restore(config(1), older, h.now).expect("restores");
    assert_eq!(restored.stats().oom_kills, 0);
    assert_eq!(restored.stats().crashes, 1);
}
