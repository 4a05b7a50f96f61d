//! Every lifecycle rule of the policy, one test per behaviour, on simulated time: no process,
//! no sleep, no clock. What only real processes show (exec, fds, signals, process groups, the
//! master's death) stays end to end in `tests/tests/core_lifecycle.rs`.

use std::time::Duration;

use super::super::{
    BackoffConfig, Cause, Control, Effect, Generation, Input, KillReason, PolicyConfig, WorkerId,
};
use super::util::{Harness, SpawnAnswer, config, ms, program_of, secs};
use crate::events::{Event, SlotStatus, Status, WorkerState, WorkerStatus};

mod canary;
mod commands;
mod failing_deploys;
mod good_generation;
mod heartbeats;
mod messages;
mod replacements;
mod review;
mod rollouts;
mod second_review;
mod spawn_failures;
mod status;
mod stop;
mod timers;

// ---- helpers ------------------------------------------------------------------------------

/// A started policy with `config`, every first worker ready, the events so far taken.
fn ready_with(config: PolicyConfig) -> Harness {
    let mut h = Harness::new(config);
    h.start();
    h.ready_all();
    h.take_events();
    h
}

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
    while h.policy.rollout.is_some() {
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
    while h.policy.rollout.is_some() {
        let Some(new) = h.successor(0) else {
            // The slot still backs off from an earlier failure.
            let at = h.policy.poll_timeout().expect("a retry is due");
            h.advance(at - h.now);
            continue;
        };
        h.exit(new, "exit 3");
        let retry = h
            .take_events()
            .iter()
            .find_map(|e| match e {
                Event::StartFailed { retry_in_ms, .. } => Some(*retry_in_ms),
                _ => None,
            })
            .expect("a start-failed event");
        delays.push(retry);
        if h.policy.rollout.is_some() {
            h.advance(ms(retry - 1));
            assert_eq!(h.successor(0), None, "retried before {retry} ms");
            h.advance(ms(1));
            assert!(h.successor(0).is_some(), "not retried after {retry} ms");
        }
    }
    delays
}

fn spawned(slot: usize, pid: u32, generation: u64, replaces: Option<u32>) -> Event {
    Event::Spawned {
        slot,
        pid,
        generation,
        replaces,
        program: program_of(Generation(generation)),
    }
}

fn ready(slot: usize, pid: u32, generation: u64) -> Event {
    Event::Ready {
        slot,
        pid,
        generation,
    }
}

/// A drain with the default 30 s deadline.
fn draining(slot: usize, pid: u32, generation: u64, why: &str) -> Event {
    Event::Draining {
        slot,
        pid,
        generation,
        why: why.into(),
        deadline_ms: 30_000,
    }
}

fn exited(slot: usize, pid: u32, generation: u64, status: &str) -> Event {
    Event::Exited {
        slot,
        pid,
        generation,
        status: status.into(),
    }
}

fn start_failed(slot: usize, pid: u32, generation: u64, why: &str, retry_in_ms: u64) -> Event {
    Event::StartFailed {
        slot,
        pid,
        generation,
        why: why.into(),
        retry_in_ms,
    }
}
