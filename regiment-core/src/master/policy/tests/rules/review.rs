//! Found in review: each failed before its fix.

use super::*;

/// The driver answers spawns one by one; a rollout aborted by the third failure must not then
/// start the fourth spawn it asked for in the same breath (nor report a drain of pid 0).
#[test]
fn a_rollout_aborted_while_its_spawns_are_answered_starts_none_it_no_longer_wants() {
    let mut h = Harness::ready_with(config(16).max_surge(4));
    h.spawn_answers
        .extend([SpawnAnswer::Fail, SpawnAnswer::Fail, SpawnAnswer::Fail]);
    h.control(Control::RollingRestart);
    let events = h.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::RolloutAborted { generation: 2, .. })),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| matches!(
            e,
            Event::Draining { pid: 0, .. } | Event::Killed { pid: 0, .. }
        )),
        "{events:?}"
    );
    // Three failed, the fourth was taken back before the driver reached it.
    assert_eq!(spawns(&h).len(), 3);
    assert!(h.processes.is_empty() || h.processes.values().all(|p| p.generation.0 == 1));
    assert_eq!(successors(&h), 0);
    assert_eq!(h.policy.workers.len(), 16);
}

/// A worker with manual readiness may be silent while it warms up (the start timeout governs
/// that time); its `ready` is a sign of life, so it is not judged unresponsive on arrival.
#[test]
fn a_ready_after_a_long_warm_up_is_not_judged_unresponsive_on_arrival() {
    let mut h = Harness::new(config(1).heartbeat_timeout(secs(5)));
    h.start();
    let w = h.current(0);
    h.heartbeat(w);
    h.advance(secs(20));
    h.ready_worker(w);
    h.advance(ms(1));
    assert!(
        !h.take_events()
            .iter()
            .any(|e| matches!(e, Event::Unresponsive { .. }))
    );
    assert_eq!(h.successor(0), None);
}

/// Garbage is no sign of life: a worker that sends only invalid frames once its heartbeats
/// stopped is still judged by the heartbeat timeout.
#[test]
fn invalid_messages_do_not_keep_a_silent_worker_from_being_judged() {
    let mut h = Harness::ready_with(config(1).heartbeat_timeout(secs(5)));
    let w = h.current(0);
    h.heartbeat(w);
    for _ in 0..10 {
        h.advance(secs(1));
        h.input(Input::InvalidMessage {
            id: w,
            why: "not JSON".into(),
        });
    }
    assert_took!(h, Event::Unresponsive { .. });
    assert!(h.successor(0).is_some());
}

/// A worker's own request that finds a rollout's replacement already under way makes it its
/// own: when the rollout is aborted, the replacement still happens.
#[test]
fn a_replacement_asked_during_a_rollout_survives_its_abort() {
    let mut h = Harness::ready_with(config(2).rollout_failures(1));
    let (a, b) = (h.current(0), h.current(1));
    h.control(Control::RollingRestart);
    // Slot 0's replacement is starting; slot 1's is queued behind the surge of one.
    let (starting, _) = h.starting(0);
    assert!(h.policy.slots[1].pending.is_some());
    h.replace_me(b, "rss 812 MB > 750 MB");
    h.exit(starting, "exit 3"); // the rollout is aborted
    assert_took!(h, Event::RolloutAborted { .. });
    // Slot 1's own request stands; slot 0 goes back to its old worker alone.
    let mut succ = None;
    for _ in 0..100 {
        succ = h.successor(1);
        if succ.is_some() {
            break;
        }
        h.advance(ms(100));
    }
    let succ = succ.expect("slot 1 is still replaced");
    h.ready_worker(succ);
    assert_eq!(h.current(1), succ);
    assert_eq!(
        h.status().slots[1].last_restart_reason.as_deref(),
        Some("rss 812 MB > 750 MB")
    );
    assert_eq!(h.current(0), a);
}

/// A replacement of a superseded rollout that fails is tried again for the newest rollout, and
/// says so.
#[test]
fn a_failed_replacement_of_a_superseded_rollout_is_retried_for_the_newest_one() {
    let mut h = Harness::ready_with(config(1).rollout_failures(5));
    h.control(Control::RollingRestart);
    let (gen2, _) = h.starting(0);
    h.control(Control::RollingRestart);
    h.exit(gen2, "exit 3");
    h.advance(ms(100));
    let (gen3, _) = h.starting(0);
    assert_eq!(h.worker(gen3).generation, Generation(3));
    h.ready_worker(gen3);
    assert_eq!(
        h.status().slots[0].last_restart_reason.as_deref(),
        Some("rolling restart to generation 3")
    );
}

/// A worker that crashes while its replacement starts counts one restart even when that
/// replacement then fails and the slot is refilled.
#[test]
fn a_crash_is_counted_once_whatever_becomes_of_the_replacement_under_way() {
    let mut h = Harness::ready(1);
    let (old, _, succ, _) = replace(&mut h, 0, "asked");
    h.exit(old, "signal 9 (SIGKILL)");
    h.exit(succ, "exit 3");
    h.advance(ms(100));
    let fresh = h.current(0);
    h.ready_worker(fresh);
    let slot = &h.status().slots[0];
    assert_eq!(slot.restarts, 1);
    assert_eq!(
        slot.last_restart_reason.as_deref(),
        Some("killed by SIGKILL from outside")
    );
}
