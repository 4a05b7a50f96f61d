//! Spawn failures.

use super::*;

#[test]
fn a_spawn_that_fails_counts_as_a_failed_start_with_backoff() {
    let mut h = Harness::new(config(1));
    h.spawn_answers
        .extend([SpawnAnswer::Fail, SpawnAnswer::Fail]);
    h.start();
    let why = "spawn of /srv/app failed: No such file or directory";
    assert_eq!(h.take_events(), [start_failed(0, 0, 1, why, 100)]);
    assert_eq!(
        h.policy.workers.len(),
        0,
        "nothing ran: nothing in the books"
    );
    h.advance(ms(100));
    assert_eq!(h.take_events(), [start_failed(0, 0, 1, why, 200)]);
    h.advance(ms(199));
    assert_eq!(h.take_events(), []);
    h.advance(ms(1));
    let w = h.current(0);
    assert_eq!(h.take_events(), [spawned(0, h.pid(w), 1, None)]);
}

#[test]
fn spawns_that_fail_during_a_rollout_abort_it() {
    let mut h = Harness::ready(1);
    let old = h.current(0);
    h.spawn_answers.extend([SpawnAnswer::Fail; 3]);
    h.control(Control::RollingRestart);
    h.advance(secs(1));
    let events = h.take_events();
    assert_eq!(announced_delays(&events), [100, 200, 400]);
    assert_eq!(events.last(), Some(&failed_starts_abort(2, 3)));
    assert_eq!(h.current(0), old);
    assert!(h.worker(old).is_ready());
}

#[test]
fn a_leftover_process_of_a_failed_spawn_stays_in_the_books_until_its_exit() {
    let mut h = Harness::ready(1);
    let old = h.current(0);
    h.spawn_answers.push_back(SpawnAnswer::FailWithLeftover);
    h.replace_me(old, "asked");
    let (&leftover, p) = h
        .processes
        .iter()
        .find(|(id, _)| **id != old)
        .expect("the leftover process");
    let leftover_pid = p.pid;
    assert_eq!(p.killed, Some(KillReason::IpcSetupFailed));
    assert_eq!(
        h.take_events()[1..],
        [start_failed(
            0,
            leftover_pid,
            1,
            "IPC channel setup failed: too many open files",
            100
        )]
    );
    assert_eq!(h.successor(0), None, "it holds no slot");
    let status = h.status();
    assert_eq!(status.workers.len(), 2);
    assert_eq!(status.workers[1].pid, leftover_pid);
    assert_eq!(status.workers[1].state, WorkerState::Draining);

    // The stop waits for it too.
    h.control(Control::Stop);
    h.exit(old, "exit 0");
    assert!(!h.policy.is_stopped());
    h.take_events();
    h.exit(leftover, "signal 9 (SIGKILL)");
    assert_eq!(
        h.take_events(),
        [
            exited(0, leftover_pid, 1, "signal 9 (SIGKILL)"),
            Event::Stopped
        ]
    );
}
