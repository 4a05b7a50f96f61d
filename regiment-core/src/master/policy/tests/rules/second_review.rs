//! Found in the second review: each failed before its fix.

use super::canary::{answered, canary_config, of_generation};
use super::*;

/// A rollout completes only once its last worker served for the settle time; a build that
/// crashes soon after it is ready is caught meanwhile and never becomes the good one.
#[test]
fn a_rollout_completes_after_its_settle_time_and_early_crashes_within_it_abort_it() {
    let settle = config(1).rollout_settle(secs(5)).rollout_failures(1);
    let mut h = Harness::ready_with(settle);
    roll_first(&mut h);
    h.advance(ms(4_999));
    assert_eq!(
        h.status().rollout,
        Some(2),
        "not done before the settle time"
    );
    h.advance(ms(1));
    assert_eq!(h.status().good_generation, 2);

    let mut h = Harness::ready_with(settle);
    let doomed = roll_first(&mut h);
    h.advance(secs(1));
    h.exit(doomed, "exit 5");
    let status = h.status();
    assert_eq!(status.good_generation, 1);
    assert_eq!(
        status.last_rollout.unwrap().why.as_deref(),
        Some("1 workers of generation 2 crashed soon after they were ready")
    );
    h.advance(ms(100));
    assert_eq!(h.worker(h.current(0)).generation, Generation(1));
}

/// A canary deploy of the fix of a crash loop: the canary goes to a serving slot first (it is
/// judged beside the old generation), and where no slot serves, to a failing one, whose next
/// spawn runs the new build at once.
#[test]
fn a_canary_of_the_fix_of_a_crash_loop_goes_where_it_can_run() {
    let mut h = Harness::new(canary_config(3));
    h.start();
    for s in 1..3 {
        let w = h.current(s);
        h.ready_worker(w);
    }
    // Slot 0's worker never gets ready.
    let a = h.current(0);
    h.advance(secs(30));
    h.exit(a, "signal 9 (SIGKILL)");
    h.control(Control::RollingRestart);
    let (canary, _) = h.starting(1);
    assert_eq!(h.worker(canary).generation, Generation(2));

    // No slot serves: the canary is the failing slot's next worker.
    let mut h = Harness::new(canary_config(2));
    h.start();
    h.advance(secs(30));
    for s in 0..2 {
        let w = h.current(s);
        h.exit(w, "signal 9 (SIGKILL)");
    }
    h.control(Control::RollingRestart);
    h.advance(ms(100));
    assert_eq!(
        generations(&h),
        [2, 1],
        "one canary, the other slot on the good build"
    );
}

/// A scale-down during the canary's window does not complete the rollout unjudged.
#[test]
fn a_scale_down_during_the_canary_does_not_complete_the_rollout_unjudged() {
    let mut h = Harness::ready_with(canary_config(2));
    let canary = roll_first(&mut h);
    h.control(Control::ScaleDown);
    h.advance(secs(1));
    assert_eq!(h.status().rollout, Some(2), "still judged first");
    assert_eq!(h.status().good_generation, 1);
    answered(&mut h, canary, 50, 50);
    h.advance(secs(30));
    assert_eq!(h.status().good_generation, 1, "refused");
}

/// After an aborted rollout, a superseded generation's replacement still starting does not
/// join either.
#[test]
fn after_an_abort_a_superseded_generation_still_starting_does_not_join() {
    let mut h = Harness::ready_with(config(2).max_surge(2).rollout_failures(2));
    h.control(Control::RollingRestart);
    let ((s0, _), (gen2, _)) = (h.starting(0), h.starting(1));
    h.exit(s0, "exit 1");
    h.control(Control::RollingRestart); // generation 3 supersedes 2
    for _ in 0..2 {
        h.advance(ms(400));
        let (gen3, _) = h.starting(0);
        assert_eq!(h.worker(gen3).generation, Generation(3));
        h.exit(gen3, "exit 1");
    }
    assert_eq!(h.status().last_rollout.unwrap().generation, 3);
    assert_eq!(h.status().rollout, None, "aborted");
    assert!(
        h.processes[&gen2].drained,
        "generation 2 never completed either"
    );
    h.ready_worker(gen2);
    assert_eq!(h.worker(h.current(1)).generation, Generation(1));
}

/// A canary worker that answered only 5xx and crashed within the window is still counted.
#[test]
fn a_canary_worker_gone_within_the_window_still_counts() {
    let mut h = Harness::ready_with(canary_config(3).rollout_failures(5));
    let canary = roll_first(&mut h);
    h.advance(secs(1)); // the window opened
    answered(&mut h, canary, 40, 40);
    h.exit(canary, "exit 101");
    h.take_events();
    h.advance(secs(30));
    assert_took!(
        h,
        Event::RolloutAborted { generation: 2, why } if why.contains("100.00% of 40 requests (40 answered 5xx")
    );
}

/// Figures from workers are untrusted: huge ones neither overflow nor tip the judgement.
#[test]
fn huge_figures_from_workers_neither_overflow_nor_decide() {
    let mut h = Harness::ready_with(canary_config(3));
    let canary = roll_first(&mut h);
    h.advance(ms(1));
    for old in of_generation(&h, 1) {
        answered(&mut h, old, u64::MAX, u64::MAX);
    }
    answered(&mut h, canary, 100, 100);
    h.advance(secs(30));
    assert_eq!(h.status().good_generation, 1);
}
