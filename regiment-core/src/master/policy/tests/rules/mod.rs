//! Every lifecycle rule of the policy, one test per behaviour, on simulated time: no process,
//! no sleep, no clock. What only real processes show (exec, fds, signals, process groups, the
//! master's death) stays end to end in `tests/tests/core_lifecycle.rs`.

use std::time::Duration;

use super::super::status::PolicyStatus;
use super::super::{Control, Effect, Generation, Input, KillReason, PolicyConfig, WorkerId};
use super::util::{Harness, SpawnAnswer, config, ms, program_of, secs};
use crate::events::{Event, WorkerState, WorkerStatus};
use crate::protocol::CriterionKind;
use expect::*;

/// Takes the events and asserts that one of them matches the pattern (a guard may follow it),
/// showing them all when none does.
macro_rules! assert_took {
    ($h:expr, $($pattern:tt)+) => {{
        let events = $h.take_events();
        assert!(
            events.iter().any(|e| matches!(e, $($pattern)+)),
            "no event matches {}: {events:?}",
            stringify!($($pattern)+)
        );
    }};
}

mod abandoned_drains;
mod canary;
mod commands;
mod expect;
mod failing_deploys;
mod good_generation;
mod handover;
mod heartbeats;
mod memory_budget;
mod messages;
mod outside_kills;
mod replacements;
mod review;
mod rollout_ends;
mod rollouts;
mod second_review;
mod spawn_failures;
mod stats;
mod status;
mod stop;
mod timers;
mod unserved;
mod upgrades;

// ---- helpers ------------------------------------------------------------------------------

/// The spawns of the latest call: (id, slot, generation, replaces).
fn spawns(h: &Harness) -> Vec<(WorkerId, usize, Generation, Option<WorkerId>)> {
    h.step_effects()
        .filter_map(|e| match e {
            Effect::Spawn {
                id,
                slot,
                generation,
                replaces,
            } => Some((*id, *slot, *generation, *replaces)),
            _ => None,
        })
        .collect()
}

/// Every spawn so far.
fn all_spawns(h: &Harness) -> usize {
    h.log
        .iter()
        .filter(|(_, e)| matches!(e, Effect::Spawn { .. }))
        .count()
}

/// Every kill so far: how long after the start, whom, why.
fn kills(h: &Harness) -> Vec<(Duration, WorkerId, KillReason)> {
    h.log
        .iter()
        .filter_map(|(at, e)| match e {
            Effect::Kill { id, why } => Some((*at - h.t0, *id, *why)),
            _ => None,
        })
        .collect()
}

/// Every drain so far: how long after the start, whom, with what deadline.
fn drains(h: &Harness) -> Vec<(Duration, WorkerId, Duration)> {
    h.log
        .iter()
        .filter_map(|(at, e)| match e {
            Effect::Drain { id, kill_at } => Some((*at - h.t0, *id, *kill_at - *at)),
            _ => None,
        })
        .collect()
}

/// Replacements starting now.
fn successors(h: &Harness) -> usize {
    h.policy
        .slots
        .iter()
        .filter(|s| s.successor.is_some())
        .count()
}

fn since_start(h: &Harness) -> Duration {
    h.now - h.t0
}

/// Readies the replacements of the rollout under way one at a time (the lowest id first), the
/// old workers exiting as soon as they are told to drain, until it ends. Checks the surge at
/// every step; returns the most replacements ever starting at once.
fn roll(h: &mut Harness, surge: usize) -> usize {
    let mut most = 0;
    while h.policy.rollouts.under_way.is_some() {
        let starting = successors(h);
        assert!(starting <= surge, "{starting} replacements start at once");
        most = most.max(starting);
        let next = (0..h.policy.slots.len())
            .filter_map(|s| h.successor(s))
            .min()
            .expect("a rollout under way has a replacement starting");
        h.ready_worker(next);
        h.exit_leaving();
    }
    most
}

/// Fails the replacement of slot 0 (exit before ready) until the rollout is aborted, checking
/// that every retry starts exactly when announced; returns the announced delays.
fn fail_rollout(h: &mut Harness) -> Vec<u64> {
    let mut delays = Vec::new();
    while h.policy.rollouts.under_way.is_some() {
        let Some(new) = h.successor(0) else {
            // The slot still backs off from an earlier failure.
            let at = h.policy.poll_timeout().expect("a retry is due");
            h.advance(at - h.now);
            continue;
        };
        h.exit(new, "exit 3");
        let retry = *announced_delays(&h.take_events())
            .first()
            .expect("a start-failed event");
        delays.push(retry);
        if h.policy.rollouts.under_way.is_some() {
            h.advance(ms(retry - 1));
            assert_eq!(h.successor(0), None, "retried before {retry} ms");
            h.advance(ms(1));
            assert!(h.successor(0).is_some(), "not retried after {retry} ms");
        }
    }
    delays
}

/// The delays announced in `events` before the next try: of each failed start, its retry; of
/// each crash, its respawn.
fn announced_delays(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StartFailed { retry_in_ms, .. } => Some(*retry_in_ms),
            Event::Crashed { respawn_in_ms, .. } => Some(*respawn_in_ms),
            _ => None,
        })
        .collect()
}

/// The generation of each slot's serving worker, in slot order.
fn generations(h: &Harness) -> Vec<u64> {
    (0..h.policy.slots.len())
        .map(|s| h.worker(h.current(s)).generation.0)
        .collect()
}

/// Slot `slot`'s worker asks to be replaced for `reason`: its replacement starts at once.
/// Returns both, with their pids: `(old, old_pid, new, new_pid)`.
fn replace(h: &mut Harness, slot: usize, reason: &str) -> (WorkerId, u32, WorkerId, u32) {
    let (old, old_pid) = h.serving(slot);
    h.replace_me(old, reason);
    let (new, new_pid) = h.starting(slot);
    (old, old_pid, new, new_pid)
}

/// A rolling restart whose first replacement (slot 0's: the canary, under a canary config)
/// gets ready, and whose old worker exits at once. Returns the new worker.
fn roll_first(h: &mut Harness) -> WorkerId {
    h.control(Control::RollingRestart);
    let (new, _) = h.starting(0);
    h.ready_worker(new);
    h.exit_leaving();
    new
}
