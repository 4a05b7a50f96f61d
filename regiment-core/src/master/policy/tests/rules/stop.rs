//! Stop.

use super::*;

#[test]
fn a_stop_drains_every_worker_and_stopped_comes_after_the_last_exit() {
    let mut h = Harness::ready(2);
    let ((a, a_pid), (b, b_pid)) = (h.serving(0), h.serving(1));
    h.control(Control::Stop);
    assert_eq!(
        h.take_events(),
        [
            Event::Stopping { forced: false },
            draining(0, a_pid, 1, "stopping"),
            draining(1, b_pid, 1, "stopping"),
        ]
    );
    // An exit while stopping, whatever its status, is no crash and is not respawned.
    h.exit(a, "exit 1");
    assert_eq!(h.take_events(), [exited(0, a_pid, 1, "exit 1")]);
    assert!(!h.policy.is_stopped());
    h.advance(secs(10));
    assert_eq!(h.take_events(), []);
    h.exit(b, "exit 0");
    assert_eq!(
        h.take_events(),
        [exited(1, b_pid, 1, "exit 0"), Event::Stopped]
    );
    assert!(h.policy.is_stopped());
    assert_eq!(h.policy.poll_timeout(), None);
    assert_eq!(all_spawns(&h), 2);
}

#[test]
fn a_stop_during_a_rollout_aborts_it_drains_everyone_and_spawns_nothing_more() {
    let mut h = Harness::ready(2);
    let ((a, a_pid), (b, b_pid)) = (h.serving(0), h.serving(1));
    h.control(Control::RollingRestart);
    let (new, new_pid) = h.starting(0);
    h.take_events();

    h.control(Control::Stop);
    assert_eq!(
        h.take_events(),
        [
            rollout_aborted(2, "stopping"),
            Event::Stopping { forced: false },
            draining(0, a_pid, 1, "stopping"),
            draining(1, b_pid, 1, "stopping"),
            draining(0, new_pid, 2, "stopping"),
        ]
    );
    let status = h.status();
    assert!(status.stopping);
    assert_eq!(status.rollout, None);

    // Nothing starts any more, whatever is asked.
    h.ready_worker(new);
    h.replace_me(a, "asked");
    h.control(Control::RollingRestart);
    h.control(Control::ScaleUp);
    h.control(Control::ScaleDown);
    h.control(Control::Replace {
        slot: 1,
        reason: "operator".into(),
    });
    h.advance(secs(10));
    assert_eq!(h.take_events(), [replace_requested(0, a_pid, 1, "asked")]);
    assert_eq!(all_spawns(&h), 3);

    h.exit(new, "exit 0");
    h.exit(a, "exit 0");
    assert!(!h.policy.is_stopped());
    h.exit(b, "exit 0");
    assert_eq!(h.take_events().last(), Some(&Event::Stopped));
    assert!(h.policy.is_stopped());
    assert_eq!(all_spawns(&h), 3);
}

#[test]
fn a_stop_with_no_worker_running_is_done_at_once() {
    let mut h = Harness::new(config(1));
    h.spawn_answers.push_back(SpawnAnswer::Fail);
    h.start();
    h.take_events();
    h.control(Control::Stop);
    assert_eq!(
        h.take_events(),
        [Event::Stopping { forced: false }, Event::Stopped]
    );
    assert!(h.policy.is_stopped());
    assert_eq!(h.policy.poll_timeout(), None, "the backoff timer is off");
}

#[test]
fn a_worker_that_ignores_the_stop_is_killed_at_its_drain_deadline() {
    let mut h = Harness::ready(1);
    let w = h.current(0);
    h.control(Control::Stop);
    h.advance(secs(30) - ms(1));
    assert_eq!(kills(&h), []);
    h.advance(ms(1));
    assert_eq!(kills(&h), [(secs(30), w, KillReason::DrainDeadline)]);
    h.take_events();
    h.exit_leaving();
    assert_eq!(h.take_events().last(), Some(&Event::Stopped));
}

#[test]
fn a_second_stop_kills_every_worker_at_once() {
    let mut h = Harness::ready(2);
    let ((a, a_pid), (b, b_pid)) = (h.serving(0), h.serving(1));
    h.control(Control::Stop);
    h.advance(secs(1));
    h.take_events();

    h.control(Control::Stop);
    assert_eq!(
        h.take_events(),
        [
            Event::Stopping { forced: true },
            killed(0, a_pid, 1, "forced stop"),
            killed(1, b_pid, 1, "forced stop"),
        ]
    );
    assert_eq!(
        kills(&h),
        [
            (secs(1), a, KillReason::ForcedStop),
            (secs(1), b, KillReason::ForcedStop)
        ]
    );
    // A third changes nothing.
    h.control(Control::Stop);
    assert_eq!(h.take_events(), []);
    h.exit_leaving();
    assert_eq!(
        h.take_events(),
        [
            exited(0, a_pid, 1, "signal 9 (SIGKILL)"),
            exited(1, b_pid, 1, "signal 9 (SIGKILL)"),
            Event::Stopped,
        ]
    );
    assert!(h.policy.is_stopped());
}

#[test]
fn a_forced_stop_kills_every_worker_at_once() {
    let mut h = Harness::ready(1);
    let (w, pid) = h.serving(0);
    h.control(Control::ForcedStop);
    // Killed at once: no drain message first.
    assert_eq!(
        h.take_events(),
        [
            Event::Stopping { forced: true },
            killed(0, pid, 1, "forced stop"),
        ]
    );
    assert!(!h.step_effects().any(|e| matches!(e, Effect::Drain { .. })));
    assert_eq!(kills(&h), [(secs(0), w, KillReason::ForcedStop)]);
    h.exit_leaving();
    assert_eq!(h.take_events().last(), Some(&Event::Stopped));
}
