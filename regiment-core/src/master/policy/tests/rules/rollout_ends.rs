//! Every rollout ends: done once each slot ran its generation to ready and settled, whatever
//! the new workers do afterwards; aborted at its deadline otherwise.

use super::canary::{answered, canary_config, of_generation};
use super::*;
use crate::events::RolloutOutcome;

/// Every ready worker of `generation` asks to be replaced, and its replacement gets ready: one
/// round of steady recycling (a `RequestCount` reached on every worker).
fn recycle(h: &mut Harness, generation: u64) {
    for old in of_generation(h, generation) {
        h.replace_me(old, "request-count: 300 requests served");
    }
    h.ready_all();
    h.exit_leaving();
}

#[test]
fn a_rollout_under_steady_recycling_ends_after_its_own_replacements_settle() {
    let mut h = Harness::ready_with(config(2).max_surge(2).rollout_settle(secs(5)));
    h.control(Control::RollingRestart);
    h.ready_all();
    h.exit_leaving();
    assert_eq!(generations(&h), [2, 2]);
    let reached = since_start(&h);

    // The new workers recycle every second: neither restarts the settle clock.
    for _ in 0..4 {
        h.advance(secs(1));
        recycle(&mut h, 2);
        assert!(
            h.policy.rollouts.under_way.is_some(),
            "done before the settle time"
        );
    }
    h.advance(reached + secs(5) - since_start(&h));
    assert!(h.policy.rollouts.under_way.is_none());
    let record = h.status().last_rollout.expect("a record");
    assert_eq!(record.outcome, RolloutOutcome::Done);
    assert_eq!(
        record.replaced, 2,
        "the recycles are the workers' own business"
    );
    assert_eq!(record.ended_at_ms, Some(millis(reached + secs(5))));
}

#[test]
fn a_rollout_whose_recycled_slot_has_a_successor_starting_still_ends() {
    // Under load a recycle is always under way somewhere: the rollout does not wait for a
    // moment when none is.
    let mut h = Harness::ready_with(config(2).max_surge(2).rollout_settle(secs(1)));
    h.control(Control::RollingRestart);
    h.ready_all();
    h.exit_leaving();
    let recycled = h.current(0);
    h.replace_me(recycled, "request-count: 300 requests served");
    assert!(h.successor(0).is_some());
    h.advance(secs(1));
    assert_took!(h, Event::RolloutDone { generation: 2 });
    assert!(h.successor(0).is_some(), "the recycle goes on, unhurried");
}

#[test]
fn a_new_worker_that_crashes_is_watched_again_from_its_respawn() {
    // A crash is not a recycle: the slot is empty until its respawn serves, and the build is
    // watched for the whole settle time from then.
    let mut h = Harness::ready_with(config(2).max_surge(2).rollout_settle(secs(5)));
    h.control(Control::RollingRestart);
    h.ready_all();
    h.exit_leaving();
    h.advance(secs(3));
    let crashed = h.current(0);
    h.exit(crashed, "exit 101");
    h.advance(secs(3));
    assert!(h.policy.rollouts.under_way.is_some(), "slot 0 is empty");
    h.ready_all();
    let respawned = since_start(&h);
    h.advance(secs(4));
    assert!(
        h.policy.rollouts.under_way.is_some(),
        "done before its respawn settled"
    );
    h.advance(respawned + secs(5) - since_start(&h));
    let record = h.status().last_rollout.expect("a record");
    assert_eq!((record.outcome, record.replaced), (RolloutOutcome::Done, 2));
}

#[test]
fn a_slot_taken_back_by_an_older_generation_must_be_reached_again() {
    // The canary crashes during its window: its slot is respawned with the good generation.
    // The rollout has not reached that slot any more, and is done only once it has again.
    let mut h = Harness::ready_with(canary_config(2));
    let canary = roll_first(&mut h);
    answered(&mut h, canary, 100, 0);
    h.advance(secs(10));
    h.exit(canary, "exit 101");
    h.advance(secs(1));
    h.ready_all();
    assert_eq!(generations(&h), [1, 1]);
    h.advance(secs(20));
    assert_took!(h, Event::CanaryPassed { generation: 2, .. });
    // Slot 1 is replaced first; slot 0, reached once, still runs generation 1.
    let (second, _) = h.starting(1);
    let (again, _) = h.starting(0);
    h.ready_worker(second);
    h.exit_leaving();
    h.advance(secs(1));
    assert!(
        h.policy.rollouts.under_way.is_some(),
        "slot 0 runs generation 1"
    );
    h.ready_worker(again);
    h.exit_leaving();
    assert_eq!(generations(&h), [2, 2]);
    assert_took!(h, Event::RolloutDone { generation: 2 });
}

#[test]
fn a_canary_worker_that_asks_to_be_replaced_is_replaced_by_the_canary_generation() {
    let mut h = Harness::ready_with(canary_config(3));
    let canary = roll_first(&mut h);
    h.advance(secs(10));
    h.replace_me(canary, "request-count: 300 requests served");
    let (next, _) = h.starting(0);
    assert_eq!(
        h.worker(next).generation,
        Generation(2),
        "a recycled canary is still the canary: its window would lose its only worker"
    );
    h.ready_worker(next);
    h.exit_leaving();
    assert_eq!(of_generation(&h, 2), [next]);
}

#[test]
fn a_rollout_past_its_deadline_is_aborted_naming_the_option_and_the_good_generation_stays() {
    let mut h = Harness::ready_with(config(2).max_surge(1).rollout_timeout(secs(20)));
    h.control(Control::RollingRestart);
    let (first, _) = h.starting(0);
    h.ready_worker(first);
    h.exit_leaving();
    // The second replacement is slow, within its start timeout (30 s) but not the rollout's.
    let (slow, _) = h.starting(1);
    h.advance(secs(19));
    assert!(h.policy.rollouts.under_way.is_some());
    h.advance(secs(1));
    assert_took!(
        h,
        Event::RolloutAborted { generation: 2, why }
            if why == "not done within its rollout_timeout of 20s (REGIMENT_ROLLOUT_TIMEOUT): \
                       1 of 2 slots ran generation 2 to ready"
    );
    assert!(
        h.processes[&slow].drained,
        "the rollout's starting worker goes"
    );
    let status = h.status();
    assert_eq!(status.good_generation, 1);
    let record = status.last_rollout.expect("a record");
    assert_eq!(
        (record.outcome, record.replaced),
        (RolloutOutcome::Aborted, 1)
    );
    // What is spawned from now on runs the good generation.
    h.exit_leaving();
    h.replace_me(h.current(1), "request-count: 300 requests served");
    let (next, _) = h.starting(1);
    assert_eq!(h.worker(next).generation, Generation(1));
}

#[test]
fn the_time_a_rollout_is_given_by_default_covers_a_slow_healthy_rollout() {
    // (waves + failure limit) start timeouts, the longest backoff, the window, the settle time.
    let defaults = config(8).rollout_settle(secs(5));
    assert_eq!(
        defaults.time_allowed_for_rollout(8),
        secs((8 / 2 + 3) * 30 + 30 + 5)
    );
    assert_eq!(
        defaults.time_allowed_for_rollout(1),
        secs((1 + 3) * 30 + 30 + 5)
    );
    assert_eq!(
        canary_config(8)
            .rollout_settle(secs(5))
            .time_allowed_for_rollout(8),
        secs((1 + 2 + 3) * 30 + 30 + 30 + 5),
        "the canary's wave (its config has a surge of 4: 1 + 7/4 rounded up) and window too"
    );
    assert_eq!(
        defaults
            .rollout_timeout(secs(600))
            .time_allowed_for_rollout(8),
        secs(600)
    );
    // Huge settings saturate instead of overflowing in the master.
    let huge = PolicyConfig {
        start_timeout: Duration::MAX,
        ..defaults
    };
    assert_eq!(huge.time_allowed_for_rollout(usize::MAX), Duration::MAX);

    // A healthy rollout of 8 workers, each as slow as the start timeout allows, ends done.
    let mut h = Harness::ready_with(defaults);
    h.control(Control::RollingRestart);
    while h.policy.rollouts.under_way.is_some() {
        h.advance(secs(29));
        h.ready_all();
        h.exit_leaving();
        h.advance(secs(5));
    }
    assert_eq!(
        h.status().last_rollout.map(|r| r.outcome),
        Some(RolloutOutcome::Done)
    );
}

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

#[test]
fn a_slot_emptied_by_an_abort_at_the_deadline_is_filled_at_once() {
    // Slot 1 is empty (its worker crashed) and its first worker of the new build is starting
    // when the deadline passes: the abort drains it, and the good generation fills the slot
    // in the same step, not at the next tick.
    let mut h = Harness::ready_with(config(2).max_surge(1).rollout_timeout(secs(20)));
    let crashed = h.current(1);
    h.control(Control::RollingRestart);
    let (first, _) = h.starting(0);
    h.exit(crashed, "exit 101");
    h.advance(ms(100));
    h.ready_worker(first);
    let starting = h.current(1);
    assert_eq!(h.worker(starting).generation, Generation(2));
    h.advance(secs(20) - since_start(&h) - ms(1));
    // The deadline's own turn, as a driver makes it: one call.
    let deadline = h.policy.poll_timeout().expect("the deadline");
    h.now = deadline;
    h.policy.handle_timeout(deadline);
    let refill = h.policy.slots[1].current.expect("filled in the same turn");
    h.pump_effects();
    assert_took!(h, Event::RolloutAborted { generation: 2, .. });
    assert_ne!(refill, starting);
    assert_eq!(h.worker(refill).generation, Generation(1));
}

/// The rollouts whose end was reported so far (`Effect::RolloutEnded`): generation, outcome.
fn ended(h: &Harness) -> Vec<(u64, RolloutOutcome)> {
    h.log
        .iter()
        .filter_map(|(_, e)| match e {
            Effect::RolloutEnded(log) => Some((log.generation.0, log.outcome)),
            _ => None,
        })
        .collect()
}

/// What `reload --wait` waits on: the generation a rolling restart answers is the one whose end
/// is reported, however the rollouts go.
#[test]
fn a_rolling_restart_answers_the_generation_whose_end_it_waits_for() {
    let mut h = Harness::ready(2);
    assert_eq!(h.rolling_restart(), Some(Generation(2)));
    // One asked during a rollout supersedes it: a generation of its own.
    assert_eq!(h.rolling_restart(), Some(Generation(3)));
    assert_eq!(ended(&h), [(2, RolloutOutcome::Superseded)]);
    h.ready_all();
    h.exit_leaving();
    assert_eq!(ended(&h)[1..], [(3, RolloutOutcome::Done)]);
    // The master stops during the next: it ends aborted, and no later one starts.
    assert_eq!(h.rolling_restart(), Some(Generation(4)));
    h.control(Control::Stop);
    assert_eq!(ended(&h)[2..], [(4, RolloutOutcome::Aborted)]);
    assert_eq!(h.rolling_restart(), None, "stopping: nothing starts");
    assert_eq!(
        h.take_events()
            .iter()
            .filter(|e| matches!(e, Event::RolloutStarted { .. }))
            .count(),
        3
    );
}
