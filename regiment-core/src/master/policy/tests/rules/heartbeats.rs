//! Heartbeats.

use super::*;

fn with_heartbeat_timeout(workers: usize) -> Harness {
    Harness::ready_with(config(workers).heartbeat_timeout(secs(5)))
}

#[test]
fn a_ready_worker_that_goes_silent_is_reported_unresponsive_and_replaced() {
    let mut h = with_heartbeat_timeout(1);
    let (old, old_pid) = h.serving(0);
    h.advance(secs(1));
    h.heartbeat(old);
    h.advance(secs(5));
    assert_eq!(
        h.take_events(),
        [],
        "silent 5 s: not longer than the timeout"
    );
    h.advance(ms(1));
    let (new, new_pid) = h.starting(0);
    assert_eq!(spawns(&h), [(new, 0, Generation(1), Some(old))]);
    assert_eq!(
        h.take_events(),
        [
            unresponsive(0, old_pid, 1, 5_001),
            spawned(0, new_pid, 1, Some(old_pid)),
        ]
    );
    assert_eq!(
        h.worker(old).replace_reason.as_deref(),
        Some("unresponsive: no heartbeat for 5001 ms")
    );
    // New before old, as any replacement; and it is judged once.
    assert!(!h.processes[&old].drained);
    h.advance(secs(20));
    assert_eq!(h.take_events(), []);
    h.ready_worker(new);
    assert!(h.processes[&old].drained);
    assert_eq!(
        h.status().slots[0].last_restart_reason.as_deref(),
        Some("unresponsive: no heartbeat for 5001 ms")
    );
}

/// A blocked runtime drains nothing: once its replacement serves, an unresponsive worker is
/// given its grace (2 s here), not the drain timeout (30 s), then killed as unresponsive.
#[test]
fn an_unresponsive_worker_is_killed_after_its_grace_once_its_replacement_serves() {
    let mut h = with_heartbeat_timeout(2);
    let (old, old_pid) = h.serving(0);
    let other = h.current(1);
    h.heartbeat(old);
    h.heartbeat(other);
    h.advance(secs(3));
    h.heartbeat(other);
    h.advance(ms(2_001));
    let (new, new_pid) = h.starting(0);
    h.ready_worker(new);
    assert_eq!(drains(&h), [(since_start(&h), old, secs(2))]);
    assert_took!(h, Event::Draining { pid, deadline_ms: 2_000, why, .. }
        if *pid == old_pid && why == &format!("replaced by pid {new_pid}"));
    h.advance(secs(2) - ms(1));
    assert!(kills(&h).is_empty());
    h.advance(ms(1));
    assert_eq!(
        kills(&h),
        [(since_start(&h), old, KillReason::Unresponsive)]
    );
    assert_took!(h, Event::Killed { pid, why, .. } if *pid == old_pid && why == "unresponsive");
    assert_eq!(
        h.policy.stats().kills.get(&KillReason::Unresponsive),
        Some(&1)
    );

    // A worker that answers its heartbeats drains for the whole drain timeout.
    let (old, _) = h.serving(1);
    h.replace_me(old, "asked");
    let (new, _) = h.starting(1);
    h.ready_worker(new);
    assert_eq!(drains(&h).last(), Some(&(since_start(&h), old, secs(30))));
}

#[test]
fn heartbeats_keep_a_worker_from_being_judged() {
    let mut h = with_heartbeat_timeout(1);
    let w = h.current(0);
    for _ in 0..10 {
        h.heartbeat(w);
        h.advance(secs(5));
    }
    assert_eq!(h.take_events(), []);
    assert_eq!(all_spawns(&h), 1);
    // Its figures are the last heartbeat's.
    let status = h.status();
    assert_eq!((status.workers[0].rss, status.workers[0].requests), (1, 1));
}

#[test]
fn a_worker_that_never_sent_heartbeats_is_never_judged() {
    let mut h = with_heartbeat_timeout(1);
    assert_eq!(h.policy.poll_timeout(), None);
    h.advance(secs(24 * 3600));
    assert_eq!(h.take_events(), []);
    assert_eq!(all_spawns(&h), 1);
}

/// Defect fix: a worker that had asked to be replaced was no longer judged by the heartbeat
/// timeout, so when its replacement kept failing, nothing reported that it went silent.
#[test]
fn a_worker_that_asked_to_be_replaced_is_still_judged_by_the_heartbeat_timeout() {
    let mut h = with_heartbeat_timeout(1);
    let (old, old_pid) = h.serving(0);
    h.heartbeat(old);
    h.spawn_answers.extend([SpawnAnswer::Fail; 20]);
    h.replace_me(old, "leaking");
    // Its replacements cannot be spawned; it goes silent.
    h.advance(secs(5));
    let events = h.take_events();
    assert!(events.iter().all(|e| matches!(
        e,
        Event::ReplaceRequested { .. } | Event::StartFailed { .. }
    )));
    h.advance(ms(1));
    assert_eq!(h.take_events(), [unresponsive(0, old_pid, 1, 5_001)]);
    assert_eq!(
        h.worker(old).replace_reason.as_deref(),
        Some("leaking"),
        "the first reason stands"
    );
}

/// What `/readyz` judges a ready worker by: how long it has been silent, once it sends
/// heartbeats; with no heartbeat timeout configured, nothing else tells.
#[test]
fn the_status_shows_how_long_each_worker_has_been_silent_once_it_sends_heartbeats() {
    let mut h = Harness::ready(1);
    let w = h.current(0);
    h.advance(secs(3));
    assert_eq!(h.status().workers[0].silent_ms, None, "no heartbeat yet");
    h.heartbeat(w);
    h.advance(ms(250));
    assert_eq!(h.status().workers[0].silent_ms, Some(250));
    h.advance(secs(10));
    assert_eq!(h.status().workers[0].silent_ms, Some(10_250));
    h.heartbeat(w);
    assert_eq!(h.status().workers[0].silent_ms, Some(0));
}
