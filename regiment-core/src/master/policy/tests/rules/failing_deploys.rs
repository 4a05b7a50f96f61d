//! Failing deploys.

use super::*;

#[test]
fn a_deploy_whose_workers_exit_before_ready_is_aborted_and_the_old_worker_stays() {
    let mut h = Harness::ready(1);
    let (old, old_pid) = h.serving(0);
    h.control(Control::RollingRestart);
    let (mut new, _) = h.starting(0);
    assert_eq!(
        h.take_events(),
        [
            Event::RolloutStarted { generation: 2 },
            spawned(0, h.pid(new), 2, Some(old_pid)),
        ]
    );
    for (i, delay) in [100, 200, 400].into_iter().enumerate() {
        let pid = h.pid(new);
        h.exit(new, "exit 3");
        let failed = start_failed(0, pid, 2, "exited before ready: exit 3", delay);
        assert_eq!(h.take_events(), start_failure_events(i, failed));
        assert_eq!(h.current(0), old);
        if i < 2 {
            h.advance(ms(delay - 1));
            assert_eq!(h.successor(0), None, "retried early");
            h.advance(ms(1));
            (new, _) = h.starting(0);
            assert_eq!(spawns(&h), [(new, 0, Generation(2), Some(old))]);
            h.take_events();
        }
    }
    // Nothing more is tried; the old worker serves on, never told to drain.
    h.advance(secs(3600));
    assert_eq!(h.take_events(), []);
    assert_eq!(all_spawns(&h), 1 + 3);
    assert_eq!(h.current(0), old);
    assert!(h.worker(old).is_ready());
    assert_eq!(drains(&h), []);
    assert_eq!(h.status().rollout, None);
}

#[test]
fn a_deploy_whose_workers_never_get_ready_is_killed_at_the_start_timeout_and_aborted() {
    let mut h = Harness::ready(1);
    let old = h.current(0);
    h.control(Control::RollingRestart);
    for (i, delay) in [100, 200, 400].into_iter().enumerate() {
        h.take_events();
        let (new, pid) = h.starting(0);
        let spawned_at = since_start(&h);
        h.advance(secs(30) - ms(1));
        assert_eq!(h.take_events(), []);
        h.advance(ms(1));
        assert_eq!(
            kills(&h).last(),
            Some(&(spawned_at + secs(30), new, KillReason::StartTimeout))
        );
        assert_eq!(h.take_events(), [killed(0, pid, 2, "start timeout")]);
        h.exit_leaving();
        let failed = start_failed(0, pid, 2, "start timeout: signal 9 (SIGKILL)", delay);
        assert_eq!(h.take_events(), start_failure_events(i, failed));
        h.advance(ms(delay));
    }
    assert_eq!(h.successor(0), None);
    assert_eq!(h.current(0), old);
    assert!(h.worker(old).is_ready());
    assert_eq!(drains(&h), []);
}

/// Under readiness `manual`, a worker is ready only once the app calls `worker::ready()`: an
/// app that never does has every worker killed at its start timeout, and the kill says so.
#[test]
fn a_start_timeout_under_manual_readiness_says_the_worker_did_not_call_ready() {
    let mut h = Harness::new(config(1).readiness(crate::Readiness::Manual));
    h.start();
    let pid = h.pid(h.current(0));
    h.take_events();
    h.advance(secs(30));
    let why = "start timeout (readiness manual: the worker did not call `worker::ready()`)";
    assert_eq!(h.take_events(), [killed(0, pid, 1, why)]);
    h.exit_leaving();
    let failed = format!("{why}: signal 9 (SIGKILL)");
    assert_eq!(h.take_events(), [start_failed(0, pid, 1, &failed, 100)]);
}

#[test]
fn a_ready_from_a_worker_killed_at_its_start_timeout_does_not_count() {
    let mut h = Harness::ready(1);
    let (old, _, late, _) = replace(&mut h, 0, "asked");
    h.advance(secs(30));
    assert_eq!(h.processes[&late].killed, Some(KillReason::StartTimeout));
    h.take_events();

    // Its `ready` was queued behind the kill.
    h.ready_worker(late);
    assert_eq!(h.take_events(), []);
    assert!(
        !h.processes[&old].drained,
        "the old worker would lose its slot to a dead one"
    );
    assert_eq!(h.current(0), old);
}

#[test]
fn retries_of_failing_deploys_keep_backing_off_up_to_the_cap_while_the_slot_serves() {
    let mut h = Harness::ready_with(config(1).backoff_max(ms(2_000)));
    let old = h.current(0);
    h.control(Control::RollingRestart);
    assert_eq!(fail_rollout(&mut h), [100, 200, 400]);

    // The next deploy, at once: the slot serves, so its backoff goes on (a deploy that keeps
    // failing never becomes a fork loop), starting with what is left of the last delay.
    let aborted_at = h.now;
    h.control(Control::RollingRestart);
    assert_eq!(spawns(&h), []);
    h.advance(ms(399));
    assert_eq!(h.successor(0), None);
    h.advance(ms(1));
    assert!(h.successor(0).is_some());
    assert_eq!(h.now - aborted_at, ms(400));
    assert_eq!(fail_rollout(&mut h), [800, 1_600, 2_000]);
    assert_eq!(h.current(0), old);

    // A good deploy after two failed ones rolls out.
    h.control(Control::RollingRestart);
    h.advance(ms(2_000));
    let (new, new_pid) = h.starting(0);
    assert_eq!(h.worker(new).generation, Generation(4));
    h.take_events();
    h.ready_worker(new);
    assert_eq!(
        h.take_events(),
        [
            ready(0, new_pid, 4),
            replaced_by(0, h.pid(old), 1, new_pid),
            Event::RolloutDone { generation: 4 },
        ]
    );
}

/// Defect fix: the backoff of a slot only started over when a worker had been ready for a
/// healthy period, so each deploy that failed made the next one wait longer, for ever (here the
/// second deploy's retries would have been 800, 1600, 2000 ms, a week later as a minute later).
#[test]
fn a_failed_deploy_long_ago_does_not_slow_the_retries_of_the_next_one() {
    let mut h = Harness::ready_with(config(1).backoff_max(ms(2_000)));
    h.control(Control::RollingRestart);
    assert_eq!(fail_rollout(&mut h), [100, 200, 400]);
    // The last retry would have ended 400 ms after the abort; a healthy period after that:
    h.advance(ms(400) + secs(60));
    h.control(Control::RollingRestart);
    assert!(h.successor(0).is_some(), "tried at once");
    assert_eq!(fail_rollout(&mut h), [100, 200, 400]);
}

#[test]
fn an_aborted_rollout_drains_its_replacements_still_starting_and_the_old_workers_stay() {
    let mut h = Harness::ready_with(config(2).max_surge(2).rollout_failures(1));
    let old: Vec<WorkerId> = (0..2).map(|s| h.current(s)).collect();
    h.control(Control::RollingRestart);
    let ((starting, starting_pid), (failing, failing_pid)) = (h.starting(0), h.starting(1));
    h.take_events();

    h.exit(failing, "exit 1");
    let why = "1 consecutive workers of generation 2 failed to start";
    assert_eq!(
        h.take_events(),
        [
            start_failed(1, failing_pid, 2, "exited before ready: exit 1", 100),
            failed_starts_abort(2, 1),
            draining(0, starting_pid, 2, &format!("rollout aborted: {why}")),
        ]
    );
    assert_eq!(drains(&h), [(since_start(&h), starting, secs(30))]);
    assert_eq!((h.successor(0), h.successor(1)), (None, None));

    // Its `ready` does not count any more; the old workers serve on, never told to drain.
    h.ready_worker(starting);
    assert_eq!(h.take_events(), []);
    h.exit_leaving();
    assert_eq!(h.take_events(), [exited(0, starting_pid, 2, "exit 0")]);
    h.advance(secs(3600));
    assert_eq!(h.take_events(), []);
    assert_eq!((h.current(0), h.current(1)), (old[0], old[1]));
    assert_eq!(drains(&h).len(), 1);
    assert_eq!(all_spawns(&h), 2 + 2);
}

#[test]
fn new_workers_that_crash_soon_after_ready_abort_the_rollout() {
    let mut h = Harness::ready_with(config(3).max_surge(1).rollout_failures(2));
    let old: Vec<WorkerId> = (0..3).map(|s| h.current(s)).collect();
    let n0 = roll_first(&mut h);
    let (n1, _) = h.starting(1);
    h.advance(ms(100));
    h.exit(n0, "exit 101");
    assert_eq!(h.status().rollout, Some(2), "one crash is not enough");
    h.ready_worker(n1);
    h.exit_leaving();
    let (_, n2_pid) = h.starting(2);
    h.advance(ms(100));
    // Slot 0's respawn after its crash, of generation 2, starting.
    let (_, respawn_pid) = h.serving(0);
    h.take_events();

    h.exit(n1, "exit 101");
    let why = "2 workers of generation 2 crashed soon after they were ready";
    let events = h.take_events();
    let fresh = h.current(0);
    assert_eq!(
        events[1..],
        [
            rollout_aborted(2, why),
            // No worker of the aborted generation joins: the starting ones are drained, and
            // the empty slot gets the good generation at once.
            draining(0, respawn_pid, 2, &format!("rollout aborted: {why}")),
            draining(2, n2_pid, 2, &format!("rollout aborted: {why}")),
            spawned(0, h.pid(fresh), 1, None),
        ]
    );
    assert!(matches!(events[0], Event::Crashed { slot: 1, .. }));
    // The last slot's old worker was never replaced: it serves on.
    assert_eq!(h.current(2), old[2]);
    assert!(!h.processes[&old[2]].drained);
    assert!(h.worker(old[2]).is_ready());
}

/// Defect fix: a slot whose worker keeps failing to start backed off up to 30 s, and a rolling
/// restart (what may be the fix) waited for that backoff before trying its new workers.
#[test]
fn a_rolling_restart_tries_a_crash_looping_slot_at_once() {
    let mut h = Harness::ready(2);
    let crashing = h.current(0);
    h.exit(crashing, "exit 1");
    let mut delays = announced_delays(&h.take_events());
    // Every respawn exits before ready, until the backoff is at its 30 s cap.
    while delays.last() != Some(&30_000) {
        h.advance(ms(*delays.last().unwrap()));
        let w = h.current(0);
        h.exit(w, "exit 1");
        delays.extend(announced_delays(&h.take_events()));
    }
    assert_eq!(
        delays,
        [
            100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 30_000
        ]
    );
    let (serving, serving_pid) = h.serving(1);
    h.take_events();

    h.control(Control::RollingRestart);
    let fix = h.policy.slots[0]
        .current
        .expect("the empty slot tried at once");
    let (replacement, _) = h.starting(1);
    assert_eq!(
        spawns(&h),
        [
            (fix, 0, Generation(2), None),
            (replacement, 1, Generation(2), Some(serving))
        ]
    );
    assert_eq!(
        h.take_events(),
        [
            Event::RolloutStarted { generation: 2 },
            spawned(0, h.pid(fix), 2, None),
            spawned(1, h.pid(replacement), 2, Some(serving_pid)),
        ]
    );
    // And its backoff started over.
    let fix_pid = h.pid(fix);
    h.exit(fix, "exit 1");
    let why = "exited before ready: exit 1";
    assert_eq!(h.take_events(), [start_failed(0, fix_pid, 2, why, 100)]);
}

/// The events of the `i`th failed start (from 0) of generation 2's worker, under the default
/// three allowed: the third aborts the rollout.
fn start_failure_events(i: usize, failed: Event) -> Vec<Event> {
    let mut events = vec![failed];
    events.extend((i == 2).then(|| failed_starts_abort(2, 3)));
    events
}
