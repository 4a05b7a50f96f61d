//! Canary rollouts.

use super::*;
use crate::events::{Answers, CanaryVerdict};

/// One canary, judged over 30 s on at least 20 requests, allowed one point more of 5xx.
pub(super) fn canary_config(workers: usize) -> PolicyConfig {
    PolicyConfig {
        canary: Some(crate::master::policy::CanaryConfig {
            workers: 1,
            window: secs(30),
            max_error_ratio: 0.01,
            min_requests: 20,
        }),
        ..config(workers).max_surge(4)
    }
}

/// A heartbeat saying the worker answered `requests` requests, `errors` of them with a 5xx.
pub(super) fn answered(h: &mut Harness, id: WorkerId, requests: u64, errors: u64) {
    failed(h, id, requests, errors, 0);
}

/// A heartbeat saying the worker received `requests` requests, answered `errors` of them with a
/// 5xx and `failures` not at all.
pub(super) fn failed(h: &mut Harness, id: WorkerId, requests: u64, errors: u64, failures: u64) {
    h.input(Input::Heartbeat {
        id,
        load: crate::master::policy::Load {
            rss: 1,
            requests,
            in_flight: 0,
            responses_5xx: errors,
            failures,
            latency: None,
        },
    });
}

/// Ready workers of `generation`.
pub(super) fn of_generation(h: &Harness, generation: u64) -> Vec<WorkerId> {
    h.policy
        .workers
        .iter()
        .filter(|(_, w)| w.is_ready() && w.generation == Generation(generation))
        .map(|(id, _)| *id)
        .collect()
}

#[test]
fn a_canary_replaces_one_worker_and_serves_its_window_before_the_others_are_replaced() {
    let mut h = Harness::ready_with(canary_config(4));
    h.control(Control::RollingRestart);
    assert_eq!(
        successors(&h),
        1,
        "only the canary starts, whatever the surge"
    );
    let (canary, _) = h.starting(0);
    h.ready_worker(canary);
    h.exit_leaving();
    // The window: nothing else is replaced.
    h.advance(secs(29));
    assert_eq!(successors(&h), 0);
    assert_eq!(of_generation(&h, 2), [canary]);
    // A clean canary: the rollout goes on to every slot.
    answered(&mut h, canary, 100, 0);
    for old in of_generation(&h, 1) {
        answered(&mut h, old, 300, 0);
    }
    h.take_events();
    h.advance(secs(1));
    assert_took!(h, Event::CanaryPassed { generation: 2, .. });
    assert_eq!(successors(&h), 3);
    roll(&mut h, 4);
    assert_eq!(h.status().good_generation, 2);
}

#[test]
fn a_canary_worse_than_the_margin_is_refused_and_taken_out_of_service_at_once() {
    let mut h = Harness::ready_with(canary_config(3));
    let old: Vec<WorkerId> = (0..3).map(|s| h.current(s)).collect();
    let canary = roll_first(&mut h);
    h.advance(secs(10));
    answered(&mut h, canary, 50, 50);
    answered(&mut h, old[1], 200, 1);
    answered(&mut h, old[2], 200, 1);
    h.take_events();
    h.advance(secs(20));
    let why = "the canary of generation 2 failed 100.00% of 50 requests (50 answered 5xx, 0 got \
               no answer), generation 1 0.50% of 400 requests (2 answered 5xx, 0 got no \
               answer): more than 1.00 points worse";
    let events = h.take_events();
    assert!(events.contains(&rollout_aborted(2, why)), "{events:?}");
    // Every moment it serves fails more requests, and the old workers serve: it drains now,
    // and the good generation fills its slot.
    assert!(h.processes[&canary].drained);
    let back = h.current(0);
    assert_eq!(h.worker(back).generation, Generation(1));
    h.ready_worker(back);
    let status = h.status();
    let record = status.last_rollout.unwrap();
    assert_eq!(record.why.as_deref(), Some(why));
    assert_eq!(
        record.canary,
        Some(CanaryVerdict {
            canary: Answers {
                requests: 50,
                responses_5xx: 50,
                failures: 0
            },
            good: Answers {
                requests: 400,
                responses_5xx: 2,
                failures: 0
            },
            passed: false,
        })
    );
    assert_eq!(
        status.slots[0].last_restart_reason.as_deref(),
        Some(format!("rollout aborted: {why}").as_str())
    );
    assert_eq!((h.current(1), h.current(2)), (old[1], old[2]));
}

#[test]
fn a_canary_whose_requests_get_no_answer_is_refused_as_one_that_answers_5xx() {
    // A build whose handlers panic answers nothing: no 5xx, every request failed.
    let mut h = Harness::ready_with(canary_config(2));
    let old = h.current(1);
    let canary = roll_first(&mut h);
    h.advance(secs(10));
    failed(&mut h, canary, 400, 0, 390);
    failed(&mut h, old, 800, 0, 0);
    h.advance(secs(20));
    assert_took!(
        h,
        Event::RolloutAborted { generation: 2, why }
            if why.starts_with("the canary of generation 2 failed 97.50% of 400 requests \
                                (0 answered 5xx, 390 got no answer)")
    );
    assert!(h.processes[&canary].drained);
    // Both kinds count, never more than the requests.
    failed(&mut h, old, 900, 60, 60);
    assert_eq!(h.status().good_generation, 1);
}

#[test]
fn a_failing_canary_with_no_other_worker_serving_is_replaced_new_before_old() {
    let mut h = Harness::ready_with(canary_config(2));
    let old = h.current(1);
    let canary = roll_first(&mut h);
    failed(&mut h, canary, 400, 0, 400);
    // The old worker crashes and its respawn is not ready when the canary is judged.
    h.advance(secs(10));
    h.exit(old, "exit 101");
    h.advance(secs(20));
    assert_took!(h, Event::RolloutAborted { generation: 2, .. });
    assert!(
        !h.processes[&canary].drained,
        "the only worker serving stays"
    );
    let (back, _) = h.starting(0);
    h.ready_worker(back);
    assert!(h.processes[&canary].drained);
}

#[test]
fn a_canary_that_answered_too_few_requests_is_refused() {
    let mut h = Harness::ready_with(canary_config(2));
    h.control(Control::RollingRestart);
    let (canary, _) = h.starting(0);
    h.ready_worker(canary);
    answered(&mut h, canary, 19, 0);
    h.take_events();
    h.advance(secs(30));
    assert_took!(
        h,
        Event::RolloutAborted { generation: 2, why }
            if why == "the canary of generation 2 received 19 requests in 30s, fewer than the 20 \
                       required; it failed 0.00% of 19 requests (0 answered 5xx, 0 got no \
                       answer), generation 1 0.00% of 0 requests (0 answered 5xx, 0 got no answer)"
    );
}

/// While the canary is unproven, a crash elsewhere respawns the good generation: no more of
/// the unproven one serve than the canary count.
#[test]
fn during_a_canary_other_spawns_run_the_good_generation() {
    let mut h = Harness::ready_with(canary_config(3));
    roll_first(&mut h);
    let b = h.current(1);
    h.exit(b, "exit 101");
    h.advance(ms(100));
    assert_eq!(h.worker(h.current(1)).generation, Generation(1));
    h.control(Control::ScaleUp);
    assert_eq!(h.worker(h.current(3)).generation, Generation(1));
}

#[test]
fn what_the_replaced_worker_answered_before_the_window_does_not_count() {
    // The worker the canary replaces drains as the window opens; its old incident (5 % of a
    // million requests failed, last week) is not the old generation's figure in the window.
    let mut h = Harness::ready_with(canary_config(3));
    let replaced = h.current(0);
    failed(&mut h, replaced, 1_000_000, 50_000, 0);
    h.control(Control::RollingRestart);
    let (canary, _) = h.starting(0);
    h.ready_worker(canary);
    failed(&mut h, replaced, 1_000_010, 50_000, 0);
    h.exit_leaving();
    h.advance(secs(10));
    // The canary fails 3 % of its requests, the old generation none in the window: refused.
    failed(&mut h, canary, 100, 3, 0);
    for old in of_generation(&h, 1) {
        answered(&mut h, old, 100, 0);
    }
    h.advance(secs(20));
    assert_took!(
        h,
        Event::RolloutAborted { generation: 2, why }
            if why.ends_with("generation 1 0.00% of 210 requests (0 answered 5xx, 0 got no \
                              answer): more than 1.00 points worse")
    );
}

#[test]
fn a_canary_still_draining_when_its_window_ends_counts() {
    // Recycled in its window (its request count reached), the canary drains while its
    // successor, of the same generation, serves: what it answered is still the canary's.
    let mut h = Harness::ready_with(canary_config(3));
    let canary = roll_first(&mut h);
    h.advance(secs(5));
    failed(&mut h, canary, 300, 0, 0);
    h.replace_me(canary, "request-count: 300 requests served");
    let (next, _) = h.starting(0);
    h.ready_worker(next);
    assert!(h.processes[&canary].drained, "draining, not exited");
    h.advance(secs(25));
    assert_took!(
        h,
        Event::CanaryPassed { generation: 2, why }
            if why.starts_with("the canary of generation 2 failed 0.00% of 300 requests")
    );
}
