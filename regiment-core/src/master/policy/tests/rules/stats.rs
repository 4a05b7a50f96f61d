//! The counters the policy keeps for the metrics.

use super::super::super::Stats;
use super::*;

#[test]
fn the_policy_counts_crashes_failed_starts_kills_replacements_and_rollout_ends() {
    let mut h = Harness::ready_with(config(1).rollout_failures(1).drain_timeout(secs(10)));
    assert_eq!(h.policy.stats(), &Stats::default());

    // A crash; the respawn fills an empty slot: no replacement.
    h.exit(h.current(0), "exit 101");
    h.advance(ms(100));
    h.ready_all();
    // A rollout whose worker never gets ready: killed at its start timeout, a failed start,
    // and (one failure is the limit) the rollout is aborted.
    h.control(Control::RollingRestart);
    h.advance(secs(30));
    h.exit_leaving();
    // A rollout superseded by the next one, which completes: one replacement; the old worker
    // outlives its drain and is killed at the deadline.
    h.control(Control::RollingRestart);
    h.control(Control::RollingRestart);
    h.advance(secs(1));
    h.ready_all();
    h.advance(secs(10));

    let stats = h.policy.stats();
    assert_eq!(stats.crashes, 1);
    assert_eq!(stats.start_failures, 1);
    assert_eq!(
        stats.kills.iter().collect::<Vec<_>>(),
        [
            (&KillReason::StartTimeout, &1),
            (&KillReason::DrainDeadline, &1)
        ]
    );
    assert_eq!(
        (
            stats.rollouts_done,
            stats.rollouts_aborted,
            stats.rollouts_superseded
        ),
        (1, 1, 1)
    );
    assert_eq!(
        stats.replacements.iter().collect::<Vec<_>>(),
        [(&"rollout", &1)]
    );
}
