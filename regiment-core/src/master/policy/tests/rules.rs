//! Every lifecycle rule of the policy, one test per behaviour, on simulated time: no process,
//! no sleep, no clock. What only real processes show (exec, fds, signals, process groups, the
//! master's death) stays end to end in `tests/tests/core_lifecycle.rs`.

use std::time::Duration;

use super::super::{
    BackoffConfig, Cause, Control, Effect, Generation, Input, KillReason, PolicyConfig, WorkerId,
};
use super::util::{Harness, SpawnAnswer, config, ms, program_of, secs};
use crate::events::{Event, SlotStatus, Status, WorkerState, WorkerStatus};

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

// ---- replacements: new before old, once ------------------------------------------------------

#[test]
fn a_replacement_is_ready_before_the_old_worker_drains() {
    let mut h = Harness::ready(2);
    let (old, other) = (h.current(0), h.current(1));
    let old_pid = h.pid(old);

    h.replace_me(old, "asked by the test");
    let new = h.successor(0).expect("a replacement starting");
    let new_pid = h.pid(new);
    assert_eq!(spawns(&h), [(new, 0, Generation(1), Some(old))]);
    assert_eq!(
        h.take_events(),
        [
            Event::ReplaceRequested {
                slot: 0,
                pid: old_pid,
                generation: 1,
                reason: "asked by the test".into(),
            },
            spawned(0, new_pid, 1, Some(old_pid)),
        ]
    );

    // However long the replacement takes within its start timeout, the old worker serves.
    h.advance(secs(30) - ms(1));
    assert_eq!(h.take_events(), []);
    assert!(drains(&h).is_empty());
    assert_eq!(h.current(0), old);

    h.ready_worker(new);
    assert_eq!(
        h.take_events(),
        [
            ready(0, new_pid, 1),
            draining(0, old_pid, 1, &format!("replaced by pid {new_pid}")),
        ]
    );
    assert_eq!(drains(&h), [(since_start(&h), old, secs(30))]);
    assert_eq!((h.current(0), h.successor(0)), (new, None));

    h.exit_leaving();
    assert_eq!(h.take_events(), [exited(0, old_pid, 1, "exit 0")]);
    assert_eq!(h.current(1), other, "the other slot was left alone");
    assert_eq!(all_spawns(&h), 3);
}

#[test]
fn many_replacement_requests_from_one_worker_make_one_replacement() {
    let mut h = Harness::ready(1);
    let old = h.current(0);
    let old_pid = h.pid(old);

    // The worker repeats its request (as the fixture does) while its replacement starts.
    h.replace_me(old, "max requests");
    h.replace_me(old, "max requests");
    let new = h.successor(0).expect("a replacement starting");
    h.replace_me(old, "max requests");
    let new_pid = h.pid(new);
    assert_eq!(
        h.take_events(),
        [
            Event::ReplaceRequested {
                slot: 0,
                pid: old_pid,
                generation: 1,
                reason: "max requests".into(),
            },
            spawned(0, new_pid, 1, Some(old_pid)),
        ]
    );
    h.ready_worker(new);
    h.exit_leaving();
    h.advance(secs(3600));
    assert_eq!(all_spawns(&h), 2, "one replacement for three requests");
    assert_eq!(h.current(0), new);
    assert_eq!(h.status().slots[0].restarts, 1);
}

#[test]
fn requests_from_two_criteria_at_once_make_one_replacement_for_the_first_reason() {
    let mut h = Harness::ready(1);
    let old = h.current(0);
    let old_pid = h.pid(old);

    h.replace_me(old, "max requests: 1000");
    h.replace_me(old, "memory: 600 MiB over 512 MiB");
    let new = h.successor(0).expect("a replacement starting");
    assert_eq!(
        h.take_events(),
        [
            Event::ReplaceRequested {
                slot: 0,
                pid: old_pid,
                generation: 1,
                reason: "max requests: 1000".into(),
            },
            spawned(0, h.pid(new), 1, Some(old_pid)),
        ]
    );
    assert_eq!(
        h.worker(old).replace_reason.as_deref(),
        Some("max requests: 1000")
    );
    h.ready_worker(new);
    h.exit_leaving();
    assert_eq!(all_spawns(&h), 2);
    assert_eq!(
        h.status().slots[0],
        SlotStatus {
            slot: 0,
            restarts: 1,
            last_restart_reason: Some("max requests: 1000".into()),
        }
    );
}

#[test]
fn a_replacement_request_from_a_draining_worker_is_ignored() {
    let mut h = Harness::ready(1);
    let old = h.current(0);
    let old_pid = h.pid(old);
    // Replaced by a rolling restart: it has not asked for anything yet.
    h.control(Control::RollingRestart);
    let new = h.successor(0).unwrap();
    h.ready_worker(new);
    h.take_events();
    assert!(h.processes[&old].drained);

    h.replace_me(old, "leaking");
    assert_eq!(
        h.take_events(),
        [Event::ReplaceRequested {
            slot: 0,
            pid: old_pid,
            generation: 1,
            reason: "leaking".into(),
        }]
    );
    assert_eq!(spawns(&h), []);
    assert_eq!((h.current(0), h.successor(0)), (new, None));
    // It is left to its drain deadline; its successor is not replaced for it.
    h.advance(secs(30) - ms(1));
    assert_eq!(h.take_events(), []);
    h.advance(ms(1));
    assert_eq!(
        kills(&h),
        [(since_start(&h), old, KillReason::DrainDeadline)]
    );
    h.exit_leaving();
    h.advance(secs(3600));
    assert_eq!(all_spawns(&h), 2);
    assert_eq!(h.current(0), new);
}

#[test]
fn a_replacement_request_from_a_starting_worker_is_acted_on_once_it_is_ready() {
    let mut h = Harness::ready(1);
    let old = h.current(0);
    let old_pid = h.pid(old);
    h.replace_me(old, "first");
    let new = h.successor(0).unwrap();
    let new_pid = h.pid(new);
    h.take_events();

    h.replace_me(new, "second");
    assert_eq!(
        h.take_events(),
        [Event::ReplaceRequested {
            slot: 0,
            pid: new_pid,
            generation: 1,
            reason: "second".into(),
        }]
    );
    assert_eq!(spawns(&h), [], "nothing replaces a worker not serving yet");
    assert_eq!(h.successor(0), Some(new));

    h.ready_worker(new);
    let third = h.successor(0).expect("the second request acted on");
    assert_eq!(spawns(&h), [(third, 0, Generation(1), Some(new))]);
    assert_eq!(
        h.take_events(),
        [
            ready(0, new_pid, 1),
            draining(0, old_pid, 1, &format!("replaced by pid {new_pid}")),
            spawned(0, h.pid(third), 1, Some(new_pid)),
        ]
    );
    h.ready_worker(third);
    assert_eq!(
        h.take_events(),
        [
            ready(0, h.pid(third), 1),
            draining(0, new_pid, 1, &format!("replaced by pid {}", h.pid(third))),
        ]
    );
    assert_eq!(
        h.status().slots[0].last_restart_reason.as_deref(),
        Some("second")
    );
}

#[test]
fn a_first_worker_that_asked_to_be_replaced_while_starting_is_replaced_once_ready() {
    let mut h = Harness::new(config(1));
    h.start();
    let first = h.current(0);
    h.replace_me(first, "asked early");
    assert_eq!(spawns(&h), []);
    h.ready_worker(first);
    let next = h.successor(0).expect("the early request acted on");
    assert_eq!(spawns(&h), [(next, 0, Generation(1), Some(first))]);
}

#[test]
fn a_worker_that_exits_before_its_replacement_is_ready_is_not_respawned_twice() {
    let mut h = Harness::ready(1);
    let old = h.current(0);
    let old_pid = h.pid(old);
    h.replace_me(old, "asked");
    let succ = h.successor(0).unwrap();
    let succ_pid = h.pid(succ);
    h.take_events();

    h.exit(old, "signal 9 (SIGKILL)");
    assert_eq!(
        h.take_events(),
        [Event::Crashed {
            slot: 0,
            pid: old_pid,
            generation: 1,
            status: "signal 9 (SIGKILL)".into(),
            respawn_in_ms: 0,
        }],
        "the starting replacement takes the slot"
    );
    assert_eq!(spawns(&h), []);
    h.advance(secs(20));
    assert_eq!(h.take_events(), []);

    h.ready_worker(succ);
    assert_eq!(h.take_events(), [ready(0, succ_pid, 1)]);
    assert_eq!((h.current(0), h.successor(0)), (succ, None));
    h.advance(secs(3600));
    assert_eq!(h.take_events(), []);
    assert_eq!(all_spawns(&h), 2);
    // One new worker, one restart, and the crash is why.
    let slot = &h.status().slots[0];
    assert_eq!(slot.restarts, 1);
    assert_eq!(
        slot.last_restart_reason.as_deref(),
        Some("crashed: signal 9 (SIGKILL)")
    );
}

#[test]
fn a_replacement_that_fails_to_start_is_retried_after_a_backoff_and_the_old_worker_serves() {
    let mut h = Harness::ready(1);
    let old = h.current(0);
    h.replace_me(old, "asked");
    let first = h.successor(0).unwrap();
    let first_pid = h.pid(first);
    h.take_events();

    h.exit(first, "exit 1");
    assert_eq!(
        h.take_events(),
        [start_failed(
            0,
            first_pid,
            1,
            "exited before ready: exit 1",
            100
        )]
    );
    assert_eq!(h.current(0), old);
    assert!(h.worker(old).is_ready());
    h.advance(ms(99));
    assert_eq!(h.successor(0), None);
    h.advance(ms(1));
    let second = h.successor(0).expect("retried after 100 ms");
    assert_eq!(spawns(&h), [(second, 0, Generation(1), Some(old))]);
    h.ready_worker(second);
    assert!(h.processes[&old].drained);
    assert_eq!(h.status().slots[0].restarts, 1);
}

// ---- rolling restarts ---------------------------------------------------------------------------

#[test]
fn a_rolling_restart_with_a_surge_of_one_replaces_every_worker_one_at_a_time() {
    let mut h = ready_with(PolicyConfig {
        max_surge: Some(1),
        ..config(3)
    });
    let old: Vec<WorkerId> = (0..3).map(|s| h.current(s)).collect();
    let old_pids: Vec<u32> = old.iter().map(|id| h.pid(*id)).collect();

    h.control(Control::RollingRestart);
    let mut new = h.successor(0).unwrap();
    assert_eq!(
        h.take_events(),
        [
            Event::RolloutStarted { generation: 2 },
            spawned(0, h.pid(new), 2, Some(old_pids[0])),
        ]
    );
    for slot in 0..3 {
        assert_eq!(successors(&h), 1, "never two successors at once");
        assert_eq!(h.successor(slot), Some(new));
        let p = &h.processes[&new];
        assert_eq!(
            (p.slot, p.generation, p.replaces),
            (slot, Generation(2), Some(old[slot]))
        );
        assert!(!h.processes[&old[slot]].drained);
        let new_pid = h.pid(new);
        h.ready_worker(new);
        let mut expected = vec![
            ready(slot, new_pid, 2),
            draining(
                slot,
                old_pids[slot],
                1,
                &format!("replaced by pid {new_pid}"),
            ),
        ];
        if slot < 2 {
            let next = h.successor(slot + 1).expect("the next slot's replacement");
            expected.push(spawned(slot + 1, h.pid(next), 2, Some(old_pids[slot + 1])));
            new = next;
        } else {
            expected.push(Event::RolloutDone { generation: 2 });
        }
        assert_eq!(h.take_events(), expected);
        h.exit_leaving();
        assert_eq!(h.take_events(), [exited(slot, old_pids[slot], 1, "exit 0")]);
    }
    for slot in 0..3 {
        assert_eq!(h.worker(h.current(slot)).generation, Generation(2));
    }
    let status = h.status();
    assert_eq!((status.generation, status.rollout), (2, None));
    assert!(status.slots.iter().all(|s| s.restarts == 1
        && s.last_restart_reason.as_deref() == Some("rolling restart to generation 2")));
}

#[test]
fn the_default_surge_is_a_quarter_of_the_workers_and_at_least_one() {
    let c = config(8);
    assert_eq!(c.max_surge, None);
    assert_eq!((c.surge(8), c.surge(3), c.surge(1)), (2, 1, 1));
    let chosen = PolicyConfig {
        max_surge: Some(3),
        ..c
    };
    assert_eq!(chosen.surge(8), 3);

    // Eight workers: two replacements at once, never more, until every slot is replaced.
    let mut h = Harness::ready(8);
    h.control(Control::RollingRestart);
    let started: Vec<usize> = spawns(&h).iter().map(|s| s.1).collect();
    assert_eq!(started, [0, 1]);
    assert_eq!(roll(&mut h, 2), 2);
    for slot in 0..8 {
        assert_eq!(h.worker(h.current(slot)).generation, Generation(2));
    }
    assert_eq!(all_spawns(&h), 16);
}

#[test]
fn a_chosen_surge_is_used_whole() {
    let mut h = ready_with(PolicyConfig {
        max_surge: Some(2),
        ..config(4)
    });
    h.control(Control::RollingRestart);
    assert_eq!(roll(&mut h, 2), 2);
    h.control(Control::RollingRestart);
    assert_eq!(roll(&mut h, 2), 2);
    for slot in 0..4 {
        assert_eq!(h.worker(h.current(slot)).generation, Generation(3));
    }
    assert_eq!(all_spawns(&h), 12);
}

#[test]
fn a_second_rolling_restart_supersedes_the_first_and_rolls_to_the_newest_generation() {
    let mut h = Harness::ready(3);
    let old_pids: Vec<u32> = (0..3).map(|s| h.pid(h.current(s))).collect();
    h.control(Control::RollingRestart);
    let gen2 = h.successor(0).unwrap();
    h.take_events();

    h.control(Control::RollingRestart);
    assert_eq!(
        h.take_events(),
        [
            Event::RolloutAborted {
                generation: 2,
                why: "superseded by the rolling restart to generation 3".into(),
            },
            Event::RolloutStarted { generation: 3 },
        ]
    );
    assert_eq!(
        spawns(&h),
        [],
        "the surge is used by the generation-2 replacement"
    );
    assert_eq!(h.status().rollout, Some(3));

    // The generation-2 replacement is not wasted: it takes its slot, and is replaced in turn.
    let gen2_pid = h.pid(gen2);
    h.ready_worker(gen2);
    let next = h.successor(1).unwrap();
    assert_eq!(
        h.take_events(),
        [
            ready(0, gen2_pid, 2),
            draining(0, old_pids[0], 1, &format!("replaced by pid {gen2_pid}")),
            spawned(1, h.pid(next), 3, Some(old_pids[1])),
        ]
    );
    h.exit_leaving();
    roll(&mut h, 1);
    let events = h.take_events();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::RolloutDone { .. }))
            .collect::<Vec<_>>(),
        [&Event::RolloutDone { generation: 3 }]
    );
    for slot in 0..3 {
        assert_eq!(h.worker(h.current(slot)).generation, Generation(3));
    }
    // Slot 0 twice (to 2, then to 3), the others once.
    assert_eq!(all_spawns(&h), 3 + 4);
}

/// A replacement queued by a rollout that a newer one supersedes now deploys the newer one, and
/// says so: the status of a slot running generation 3 does not say "rolling restart to
/// generation 2".
#[test]
fn a_superseding_rollout_names_its_own_generation_in_the_restart_reason() {
    let mut h = Harness::ready(3);
    h.control(Control::RollingRestart);
    h.control(Control::RollingRestart);
    roll(&mut h, 1);
    let status = h.status();
    for (slot, w) in status.slots.iter().zip(&status.workers) {
        assert_eq!(w.generation, 3);
        assert_eq!(
            slot.last_restart_reason.as_deref(),
            Some("rolling restart to generation 3"),
            "slot {}",
            slot.slot
        );
    }
}

#[test]
fn a_crash_during_a_rollout_is_respawned_in_the_new_generation_and_the_rollout_completes() {
    let mut h = Harness::ready(3);
    let victim = h.current(2);
    let victim_pid = h.pid(victim);
    h.control(Control::RollingRestart);
    let first = h.successor(0).unwrap();
    h.ready_worker(first);
    h.exit_leaving();
    h.take_events();

    h.exit(victim, "signal 9 (SIGKILL)");
    assert_eq!(
        h.take_events(),
        [Event::Crashed {
            slot: 2,
            pid: victim_pid,
            generation: 1,
            status: "signal 9 (SIGKILL)".into(),
            respawn_in_ms: 100,
        }]
    );
    assert_eq!(
        h.status().rollout,
        Some(2),
        "an old worker's crash is no failed deploy"
    );
    h.advance(ms(100));
    let respawned = h.current(2);
    assert_eq!(spawns(&h), [(respawned, 2, Generation(2), None)]);
    h.ready_all();
    h.exit_leaving();
    roll(&mut h, 1);
    assert!(
        h.take_events()
            .contains(&Event::RolloutDone { generation: 2 })
    );
    for slot in 0..3 {
        assert_eq!(h.worker(h.current(slot)).generation, Generation(2));
    }
    // The respawn was slot 2's replacement: nothing else was started for it.
    assert_eq!(all_spawns(&h), 3 + 3);
}

// ---- failing deploys ------------------------------------------------------------------------

#[test]
fn a_deploy_whose_workers_exit_before_ready_is_aborted_and_the_old_worker_stays() {
    let mut h = Harness::ready(1);
    let old = h.current(0);
    let old_pid = h.pid(old);
    h.control(Control::RollingRestart);
    let mut new = h.successor(0).unwrap();
    assert_eq!(
        h.take_events(),
        [
            Event::RolloutStarted { generation: 2 },
            spawned(0, h.pid(new), 2, Some(old_pid)),
        ]
    );
    for (i, delay) in [100, 200, 400].into_iter().enumerate() {
        let pid = h.pid(new);
        h.exit(new, "exit 3");
        let mut expected = vec![start_failed(
            0,
            pid,
            2,
            "exited before ready: exit 3",
            delay,
        )];
        if i == 2 {
            expected.push(Event::RolloutAborted {
                generation: 2,
                why: "3 consecutive workers of generation 2 failed to start".into(),
            });
        }
        assert_eq!(h.take_events(), expected);
        assert_eq!(h.current(0), old);
        if i < 2 {
            h.advance(ms(delay - 1));
            assert_eq!(h.successor(0), None, "retried early");
            h.advance(ms(1));
            new = h.successor(0).expect("retried after its backoff");
            assert_eq!(spawns(&h), [(new, 0, Generation(2), Some(old))]);
            h.take_events();
        }
    }
    // Nothing more is tried; the old worker serves on, never told to drain.
    h.advance(secs(3600));
    assert_eq!(h.take_events(), []);
    assert_eq!(all_spawns(&h), 1 + 3);
    assert_eq!(h.current(0), old);
    assert!(h.worker(old).is_ready());
    assert_eq!(drains(&h), []);
    assert_eq!(h.status().rollout, None);
}

#[test]
fn a_deploy_whose_workers_never_get_ready_is_killed_at_the_start_timeout_and_aborted() {
    let mut h = Harness::ready(1);
    let old = h.current(0);
    h.control(Control::RollingRestart);
    for (i, delay) in [100, 200, 400].into_iter().enumerate() {
        h.take_events();
        let new = h.successor(0).expect("a replacement starting");
        let pid = h.pid(new);
        let spawned_at = since_start(&h);
        h.advance(secs(30) - ms(1));
        assert_eq!(h.take_events(), []);
        h.advance(ms(1));
        assert_eq!(
            kills(&h).last(),
            Some(&(spawned_at + secs(30), new, KillReason::StartTimeout))
        );
        assert_eq!(
            h.take_events(),
            [Event::Killed {
                slot: 0,
                pid,
                generation: 2,
                why: "start timeout".into(),
            }]
        );
        h.exit_leaving();
        let mut expected = vec![start_failed(
            0,
            pid,
            2,
            "start timeout: signal 9 (SIGKILL)",
            delay,
        )];
        if i == 2 {
            expected.push(Event::RolloutAborted {
                generation: 2,
                why: "3 consecutive workers of generation 2 failed to start".into(),
            });
        }
        assert_eq!(h.take_events(), expected);
        h.advance(ms(delay));
    }
    assert_eq!(h.successor(0), None);
    assert_eq!(h.current(0), old);
    assert!(h.worker(old).is_ready());
    assert_eq!(drains(&h), []);
}

#[test]
fn a_ready_from_a_worker_killed_at_its_start_timeout_does_not_count() {
    let mut h = Harness::ready(1);
    let old = h.current(0);
    h.replace_me(old, "asked");
    let late = h.successor(0).unwrap();
    h.advance(secs(30));
    assert_eq!(h.processes[&late].killed, Some(KillReason::StartTimeout));
    h.take_events();

    // Its `ready` was queued behind the kill.
    h.ready_worker(late);
    assert_eq!(h.take_events(), []);
    assert!(
        !h.processes[&old].drained,
        "the old worker would lose its slot to a dead one"
    );
    assert_eq!(h.current(0), old);
}

#[test]
fn retries_of_failing_deploys_keep_backing_off_up_to_the_cap_while_the_slot_serves() {
    let mut h = ready_with(PolicyConfig {
        backoff: BackoffConfig {
            initial: ms(100),
            max: ms(2_000),
            reset_after: secs(60),
        },
        ..config(1)
    });
    let old = h.current(0);
    h.control(Control::RollingRestart);
    assert_eq!(fail_rollout(&mut h), [100, 200, 400]);

    // The next deploy, at once: the slot serves, so its backoff goes on (a deploy that keeps
    // failing never becomes a fork loop), starting with what is left of the last delay.
    let aborted_at = h.now;
    h.control(Control::RollingRestart);
    assert_eq!(spawns(&h), []);
    h.advance(ms(399));
    assert_eq!(h.successor(0), None);
    h.advance(ms(1));
    assert!(h.successor(0).is_some());
    assert_eq!(h.now - aborted_at, ms(400));
    assert_eq!(fail_rollout(&mut h), [800, 1_600, 2_000]);
    assert_eq!(h.current(0), old);

    // A good deploy after two failed ones rolls out.
    h.control(Control::RollingRestart);
    h.advance(ms(2_000));
    let new = h.successor(0).expect("the good deploy's worker");
    assert_eq!(h.worker(new).generation, Generation(4));
    let new_pid = h.pid(new);
    h.take_events();
    h.ready_worker(new);
    assert_eq!(
        h.take_events(),
        [
            ready(0, new_pid, 4),
            draining(0, h.pid(old), 1, &format!("replaced by pid {new_pid}")),
            Event::RolloutDone { generation: 4 },
        ]
    );
}

/// Defect fix: the backoff of a slot only started over when a worker had been ready for a
/// healthy period, so each deploy that failed made the next one wait longer, for ever (here the
/// second deploy's retries would have been 800, 1600, 2000 ms, a week later as a minute later).
#[test]
fn a_failed_deploy_long_ago_does_not_slow_the_retries_of_the_next_one() {
    let mut h = ready_with(PolicyConfig {
        backoff: BackoffConfig {
            initial: ms(100),
            max: ms(2_000),
            reset_after: secs(60),
        },
        ..config(1)
    });
    h.control(Control::RollingRestart);
    assert_eq!(fail_rollout(&mut h), [100, 200, 400]);
    // The last retry would have ended 400 ms after the abort; a healthy period after that:
    h.advance(ms(400) + secs(60));
    h.control(Control::RollingRestart);
    assert!(h.successor(0).is_some(), "tried at once");
    assert_eq!(fail_rollout(&mut h), [100, 200, 400]);
}

#[test]
fn an_aborted_rollout_drains_its_replacements_still_starting_and_the_old_workers_stay() {
    let mut h = ready_with(PolicyConfig {
        max_surge: Some(2),
        rollout_failures: 1,
        ..config(2)
    });
    let old: Vec<WorkerId> = (0..2).map(|s| h.current(s)).collect();
    h.control(Control::RollingRestart);
    let (starting, failing) = (h.successor(0).unwrap(), h.successor(1).unwrap());
    let (starting_pid, failing_pid) = (h.pid(starting), h.pid(failing));
    h.take_events();

    h.exit(failing, "exit 1");
    let why = "1 consecutive workers of generation 2 failed to start";
    assert_eq!(
        h.take_events(),
        [
            start_failed(1, failing_pid, 2, "exited before ready: exit 1", 100),
            Event::RolloutAborted {
                generation: 2,
                why: why.into(),
            },
            draining(0, starting_pid, 2, &format!("rollout aborted: {why}")),
        ]
    );
    assert_eq!(drains(&h), [(since_start(&h), starting, secs(30))]);
    assert_eq!((h.successor(0), h.successor(1)), (None, None));

    // Its `ready` does not count any more; the old workers serve on, never told to drain.
    h.ready_worker(starting);
    assert_eq!(h.take_events(), []);
    h.exit_leaving();
    assert_eq!(h.take_events(), [exited(0, starting_pid, 2, "exit 0")]);
    h.advance(secs(3600));
    assert_eq!(h.take_events(), []);
    assert_eq!((h.current(0), h.current(1)), (old[0], old[1]));
    assert_eq!(drains(&h).len(), 1);
    assert_eq!(all_spawns(&h), 2 + 2);
}

#[test]
fn new_workers_that_crash_soon_after_ready_abort_the_rollout() {
    let mut h = ready_with(PolicyConfig {
        max_surge: Some(1),
        rollout_failures: 2,
        ..config(3)
    });
    let old: Vec<WorkerId> = (0..3).map(|s| h.current(s)).collect();
    h.control(Control::RollingRestart);
    let n0 = h.successor(0).unwrap();
    h.ready_worker(n0);
    h.exit_leaving();
    let n1 = h.successor(1).unwrap();
    h.advance(ms(100));
    h.exit(n0, "exit 101");
    assert_eq!(h.status().rollout, Some(2), "one crash is not enough");
    h.ready_worker(n1);
    h.exit_leaving();
    let n2 = h.successor(2).unwrap();
    let n2_pid = h.pid(n2);
    h.advance(ms(100));
    // Slot 0's respawn after its crash, of generation 2, starting.
    let respawn = h.current(0);
    let respawn_pid = h.pid(respawn);
    h.take_events();

    h.exit(n1, "exit 101");
    let why = "2 workers of generation 2 crashed soon after they were ready";
    let events = h.take_events();
    let fresh = h.current(0);
    assert_eq!(
        events[1..],
        [
            Event::RolloutAborted {
                generation: 2,
                why: why.into(),
            },
            // No worker of the aborted generation joins: the starting ones are drained, and
            // the empty slot gets the good generation at once.
            draining(0, respawn_pid, 2, &format!("rollout aborted: {why}")),
            draining(2, n2_pid, 2, &format!("rollout aborted: {why}")),
            spawned(0, h.pid(fresh), 1, None),
        ]
    );
    assert!(matches!(events[0], Event::Crashed { slot: 1, .. }));
    // The last slot's old worker was never replaced: it serves on.
    assert_eq!(h.current(2), old[2]);
    assert!(!h.processes[&old[2]].drained);
    assert!(h.worker(old[2]).is_ready());
}

/// Defect fix: a slot whose worker keeps failing to start backed off up to 30 s, and a rolling
/// restart (what may be the fix) waited for that backoff before trying its new workers.
#[test]
fn a_rolling_restart_tries_a_crash_looping_slot_at_once() {
    let mut h = Harness::ready(2);
    let crashing = h.current(0);
    h.exit(crashing, "exit 1");
    let mut delays = vec![100];
    // Every respawn exits before ready, until the backoff is at its 30 s cap.
    while delays.last() != Some(&30_000) {
        h.advance(ms(*delays.last().unwrap()));
        let w = h.current(0);
        h.exit(w, "exit 1");
        delays.extend(h.take_events().iter().filter_map(|e| match e {
            Event::StartFailed { retry_in_ms, .. } => Some(*retry_in_ms),
            _ => None,
        }));
    }
    assert_eq!(
        delays,
        [
            100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 30_000
        ]
    );
    let serving = h.current(1);
    let serving_pid = h.pid(serving);
    h.take_events();

    h.control(Control::RollingRestart);
    let fix = h.policy.slots[0]
        .current
        .expect("the empty slot tried at once");
    let replacement = h.successor(1).unwrap();
    assert_eq!(
        spawns(&h),
        [
            (fix, 0, Generation(2), None),
            (replacement, 1, Generation(2), Some(serving))
        ]
    );
    assert_eq!(
        h.take_events(),
        [
            Event::RolloutStarted { generation: 2 },
            spawned(0, h.pid(fix), 2, None),
            spawned(1, h.pid(replacement), 2, Some(serving_pid)),
        ]
    );
    // And its backoff started over.
    let fix_pid = h.pid(fix);
    h.exit(fix, "exit 1");
    assert_eq!(
        h.take_events(),
        [start_failed(
            0,
            fix_pid,
            2,
            "exited before ready: exit 1",
            100
        )]
    );
}

// ---- timers: drain deadline, respawn backoff -----------------------------------------------------

#[test]
fn a_draining_worker_is_killed_at_exactly_the_drain_deadline() {
    let mut h = ready_with(PolicyConfig {
        drain_timeout: secs(1),
        ..config(1)
    });
    let old = h.current(0);
    let old_pid = h.pid(old);
    h.replace_me(old, "asked");
    h.advance(secs(2));
    h.ready_all();
    let drained_at = since_start(&h);
    assert_eq!(drains(&h), [(drained_at, old, secs(1))]);
    h.take_events();

    h.advance(ms(999));
    assert_eq!(kills(&h), []);
    assert_eq!(h.policy.poll_timeout(), Some(h.t0 + drained_at + secs(1)));
    h.advance(ms(1));
    assert_eq!(
        kills(&h),
        [(drained_at + secs(1), old, KillReason::DrainDeadline)]
    );
    assert_eq!(
        h.take_events(),
        [Event::Killed {
            slot: 0,
            pid: old_pid,
            generation: 1,
            why: "drain deadline".into(),
        }]
    );
    h.exit_leaving();
    assert_eq!(
        h.take_events(),
        [exited(0, old_pid, 1, "signal 9 (SIGKILL)")]
    );
    assert_eq!(h.ready_count(), 1);
}

#[test]
fn a_worker_that_exits_within_its_drain_is_not_killed() {
    let mut h = Harness::ready(1);
    let old = h.current(0);
    h.replace_me(old, "asked");
    h.ready_all();
    h.advance(secs(29));
    h.exit_leaving();
    h.advance(secs(3600));
    assert_eq!(kills(&h), []);
    assert_eq!(h.policy.poll_timeout(), None);
}

#[test]
fn a_crashing_worker_is_respawned_in_its_slot_with_growing_delays() {
    let mut h = Harness::ready(2);
    let other = h.current(0);
    for delay in [100, 200, 400, 800] {
        // Up a second: not a healthy period.
        h.advance(secs(1));
        h.take_events();
        let w = h.current(1);
        let pid = h.pid(w);
        h.exit(w, "signal 9 (SIGKILL)");
        assert_eq!(
            h.take_events(),
            [Event::Crashed {
                slot: 1,
                pid,
                generation: 1,
                status: "signal 9 (SIGKILL)".into(),
                respawn_in_ms: delay,
            }]
        );
        h.advance(ms(delay - 1));
        assert_eq!(h.policy.slots[1].current, None, "respawned early");
        h.advance(ms(1));
        let respawned = h.current(1);
        assert_eq!(spawns(&h), [(respawned, 1, Generation(1), None)]);
        h.ready_worker(respawned);
    }
    assert_eq!(h.current(0), other, "the other slot was left alone");
    assert_eq!(
        h.status().slots[1],
        SlotStatus {
            slot: 1,
            restarts: 4,
            last_restart_reason: Some("crashed: signal 9 (SIGKILL)".into()),
        }
    );
}

#[test]
fn the_respawn_delays_start_over_after_a_worker_stayed_healthy() {
    let mut h = Harness::ready(1);
    let crash = |h: &mut Harness| {
        let w = h.current(0);
        h.exit(w, "signal 9 (SIGKILL)");
        let delay = h
            .take_events()
            .iter()
            .find_map(|e| match e {
                Event::Crashed { respawn_in_ms, .. } => Some(*respawn_in_ms),
                _ => None,
            })
            .expect("a crash");
        h.advance(ms(delay));
        h.ready_all();
        delay
    };
    assert_eq!(crash(&mut h), 100);
    assert_eq!(crash(&mut h), 200);
    assert_eq!(crash(&mut h), 400);
    // Ready for a millisecond less than the healthy period: still growing.
    h.advance(secs(60) - ms(1));
    assert_eq!(crash(&mut h), 800);
    // Ready for the healthy period: back to the start.
    h.advance(secs(60));
    assert_eq!(crash(&mut h), 100);
    assert_eq!(crash(&mut h), 200);
}

#[test]
fn a_crash_after_a_healthy_period_starts_the_backoff_over_despite_failed_replacements() {
    let mut h = Harness::ready(1);
    let old = h.current(0);
    let old_pid = h.pid(old);
    h.advance(secs(60));
    // Its replacements keep failing, which grows the slot's backoff...
    h.replace_me(old, "asked");
    for delay in [100, 200] {
        let new = h.successor(0).unwrap();
        h.exit(new, "exit 1");
        if delay == 100 {
            h.advance(ms(delay));
        }
    }
    h.take_events();
    // ...but the worker itself crashes after a healthy period: its respawn starts over.
    h.exit(old, "signal 11 (SIGSEGV)");
    assert_eq!(
        h.take_events(),
        [Event::Crashed {
            slot: 0,
            pid: old_pid,
            generation: 1,
            status: "signal 11 (SIGSEGV)".into(),
            respawn_in_ms: 100,
        }]
    );
    h.advance(ms(100));
    let respawned = h.current(0);
    assert_eq!(spawns(&h), [(respawned, 0, Generation(1), None)]);
    // The fresh worker is the replacement that was asked for: none is started for it.
    h.ready_worker(respawned);
    assert_eq!(h.successor(0), None);
    assert_eq!(h.policy.queue.len(), 0);
}

#[test]
fn a_first_worker_that_fails_to_start_is_retried_with_backoff() {
    let mut h = Harness::new(config(1));
    h.start();
    for delay in [100, 200, 400] {
        let w = h.current(0);
        let pid = h.pid(w);
        h.take_events();
        h.exit(w, "exit 2");
        assert_eq!(
            h.take_events(),
            [start_failed(
                0,
                pid,
                1,
                "exited before ready: exit 2",
                delay
            )]
        );
        h.advance(ms(delay - 1));
        assert_eq!(h.policy.slots[0].current, None);
        h.advance(ms(1));
        assert_eq!(spawns(&h).len(), 1);
    }
    h.ready_all();
    assert_eq!(h.ready_count(), 1);
}

// ---- stop -------------------------------------------------------------------------------------

#[test]
fn a_stop_drains_every_worker_and_stopped_comes_after_the_last_exit() {
    let mut h = Harness::ready(2);
    let (a, b) = (h.current(0), h.current(1));
    let (a_pid, b_pid) = (h.pid(a), h.pid(b));
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
    let (a, b) = (h.current(0), h.current(1));
    let (a_pid, b_pid) = (h.pid(a), h.pid(b));
    h.control(Control::RollingRestart);
    let new = h.successor(0).unwrap();
    let new_pid = h.pid(new);
    h.take_events();

    h.control(Control::Stop);
    assert_eq!(
        h.take_events(),
        [
            Event::RolloutAborted {
                generation: 2,
                why: "stopping".into(),
            },
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
    assert_eq!(
        h.take_events(),
        [Event::ReplaceRequested {
            slot: 0,
            pid: a_pid,
            generation: 1,
            reason: "asked".into(),
        }]
    );
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
    let (a, b) = (h.current(0), h.current(1));
    let (a_pid, b_pid) = (h.pid(a), h.pid(b));
    h.control(Control::Stop);
    h.advance(secs(1));
    h.take_events();

    h.control(Control::Stop);
    assert_eq!(
        h.take_events(),
        [
            Event::Stopping { forced: true },
            Event::Killed {
                slot: 0,
                pid: a_pid,
                generation: 1,
                why: "forced stop".into(),
            },
            Event::Killed {
                slot: 1,
                pid: b_pid,
                generation: 1,
                why: "forced stop".into(),
            },
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
    let w = h.current(0);
    h.control(Control::ForcedStop);
    let pid = h.pid(w);
    // Killed at once: no drain message first.
    assert_eq!(
        h.take_events(),
        [
            Event::Stopping { forced: true },
            Event::Killed {
                slot: 0,
                pid,
                generation: 1,
                why: "forced stop".into(),
            },
        ]
    );
    assert!(!h.step_effects().any(|e| matches!(e, Effect::Drain { .. })));
    assert_eq!(kills(&h), [(secs(0), w, KillReason::ForcedStop)]);
    h.exit_leaving();
    assert_eq!(h.take_events().last(), Some(&Event::Stopped));
}

// ---- commands: scale, replace ---------------------------------------------------------------

#[test]
fn scale_up_adds_a_slot_and_spawns_into_it() {
    let mut h = Harness::ready(2);
    h.control(Control::ScaleUp);
    let new = h.current(2);
    assert_eq!(spawns(&h), [(new, 2, Generation(1), None)]);
    assert_eq!(
        h.take_events(),
        [
            Event::Scaled { workers: 3 },
            spawned(2, h.pid(new), 1, None)
        ]
    );
    h.ready_worker(new);
    let status = h.status();
    assert_eq!(status.workers_wanted, 3);
    assert_eq!(status.slots.len(), 3);
    assert_eq!(h.ready_count(), 3);
}

#[test]
fn scale_down_drains_the_last_slots_workers_and_never_goes_below_one() {
    let mut h = Harness::ready(3);
    let last = h.current(2);
    let last_pid = h.pid(last);
    h.control(Control::ScaleDown);
    assert_eq!(
        h.take_events(),
        [
            Event::Scaled { workers: 2 },
            draining(2, last_pid, 1, "scaled down"),
        ]
    );
    h.exit_leaving();
    assert_eq!(h.take_events(), [exited(2, last_pid, 1, "exit 0")]);
    h.advance(secs(3600));
    assert_eq!(all_spawns(&h), 3, "nothing respawned in the removed slot");

    h.control(Control::ScaleDown);
    assert_eq!(h.policy.slots.len(), 1);
    h.take_events();
    h.control(Control::ScaleDown);
    assert_eq!(h.take_events(), []);
    assert_eq!(h.policy.slots.len(), 1);
    assert_eq!(h.status().workers_wanted, 1);
}

#[test]
fn scale_to_a_count_adds_or_drains_slots_at_once_with_one_event() {
    let mut h = Harness::ready(2);
    h.control(Control::ScaleTo(4));
    let (two, three) = (h.current(2), h.current(3));
    assert_eq!(
        spawns(&h),
        [
            (two, 2, Generation(1), None),
            (three, 3, Generation(1), None)
        ]
    );
    assert_eq!(
        h.take_events(),
        [
            Event::Scaled { workers: 4 },
            spawned(2, h.pid(two), 1, None),
            spawned(3, h.pid(three), 1, None),
        ]
    );
    h.ready_worker(two);
    h.ready_worker(three);
    h.take_events();
    let (one, pids) = (h.current(1), [h.pid(three), h.pid(two)]);
    h.control(Control::ScaleTo(1));
    assert_eq!(
        h.take_events(),
        [
            Event::Scaled { workers: 1 },
            draining(3, pids[0], 1, "scaled down"),
            draining(2, pids[1], 1, "scaled down"),
            draining(1, h.pid(one), 1, "scaled down"),
        ]
    );
    assert_eq!(h.status().workers_wanted, 1);
    // The same count, or none at all, changes nothing: a cluster keeps one worker.
    h.control(Control::ScaleTo(1));
    h.control(Control::ScaleTo(0));
    assert_eq!(h.take_events(), []);
    assert_eq!(h.status().workers_wanted, 1);
}

#[test]
fn scale_down_also_drains_a_replacement_starting_in_the_removed_slot() {
    let mut h = Harness::ready(2);
    let old = h.current(1);
    h.replace_me(old, "asked");
    let new = h.successor(1).unwrap();
    h.take_events();
    h.control(Control::ScaleDown);
    assert_eq!(
        h.take_events(),
        [
            Event::Scaled { workers: 1 },
            draining(1, h.pid(old), 1, "scaled down"),
            draining(1, h.pid(new), 1, "scaled down"),
        ]
    );
    h.ready_worker(new);
    h.exit_leaving();
    h.advance(secs(3600));
    assert_eq!(all_spawns(&h), 3);
    assert_eq!(h.ready_count(), 1);
}

#[test]
fn replacing_a_slot_replaces_its_worker_new_before_old() {
    let mut h = Harness::ready(2);
    let old = h.current(1);
    let old_pid = h.pid(old);
    h.control(Control::Replace {
        slot: 1,
        reason: "operator".into(),
    });
    let new = h.successor(1).expect("a replacement starting");
    let new_pid = h.pid(new);
    assert_eq!(spawns(&h), [(new, 1, Generation(1), Some(old))]);
    assert_eq!(h.take_events(), [spawned(1, new_pid, 1, Some(old_pid))]);
    assert!(!h.processes[&old].drained);
    h.ready_worker(new);
    assert_eq!(
        h.take_events(),
        [
            ready(1, new_pid, 1),
            draining(1, old_pid, 1, &format!("replaced by pid {new_pid}")),
        ]
    );
    assert_eq!(
        h.status().slots[1],
        SlotStatus {
            slot: 1,
            restarts: 1,
            last_restart_reason: Some("operator".into()),
        }
    );
}

#[test]
fn replacing_a_missing_slot_does_nothing() {
    let mut h = Harness::ready(2);
    h.control(Control::Replace {
        slot: 2,
        reason: "operator".into(),
    });
    assert_eq!(
        h.step_effects().collect::<Vec<_>>(),
        [&Effect::StatusChanged]
    );
    h.advance(secs(3600));
    assert_eq!(h.take_events(), []);
    assert_eq!(all_spawns(&h), 2);
}

/// The cause of every replacement that took its slot so far, in order.
fn replaced(h: &Harness) -> Vec<Cause> {
    h.log
        .iter()
        .filter_map(|(_, e)| match e {
            Effect::Replaced(p) => Some(p.cause),
            _ => None,
        })
        .collect()
}

#[test]
fn a_replacement_reports_its_cause_once_it_took_the_slot() {
    let mut h = ready_with(PolicyConfig {
        heartbeat_timeout: Some(secs(5)),
        max_surge: Some(3),
        ..config(3)
    });
    // An operator's reason is free text: what counts is who asked.
    h.control(Control::Replace {
        slot: 0,
        reason: "request-count: says the operator".into(),
    });
    h.replace_me(h.current(1), "request-count: 3 requests >= 3");
    h.heartbeat(h.current(2));
    h.advance(ms(5_001));
    assert_eq!(successors(&h), 3);
    assert_eq!(replaced(&h), [], "new before old: none took its slot yet");
    h.ready_all();
    assert_eq!(
        replaced(&h),
        [Cause::Operator, Cause::Worker, Cause::Unresponsive]
    );
    h.exit_leaving();
    h.control(Control::RollingRestart);
    h.ready_all();
    assert_eq!(replaced(&h)[3..], [Cause::Rollout; 3]);
}

// ---- heartbeats -------------------------------------------------------------------------------

fn with_heartbeat_timeout(workers: usize) -> Harness {
    ready_with(PolicyConfig {
        heartbeat_timeout: Some(secs(5)),
        ..config(workers)
    })
}

#[test]
fn a_ready_worker_that_goes_silent_is_reported_unresponsive_and_replaced() {
    let mut h = with_heartbeat_timeout(1);
    let old = h.current(0);
    let old_pid = h.pid(old);
    h.advance(secs(1));
    h.heartbeat(old);
    h.advance(secs(5));
    assert_eq!(
        h.take_events(),
        [],
        "silent 5 s: not longer than the timeout"
    );
    h.advance(ms(1));
    let new = h.successor(0).expect("a replacement starting");
    assert_eq!(spawns(&h), [(new, 0, Generation(1), Some(old))]);
    assert_eq!(
        h.take_events(),
        [
            Event::Unresponsive {
                slot: 0,
                pid: old_pid,
                generation: 1,
                silent_ms: 5_001,
            },
            spawned(0, h.pid(new), 1, Some(old_pid)),
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
    let old = h.current(0);
    let old_pid = h.pid(old);
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
    assert_eq!(
        h.take_events(),
        [Event::Unresponsive {
            slot: 0,
            pid: old_pid,
            generation: 1,
            silent_ms: 5_001,
        }]
    );
    assert_eq!(
        h.worker(old).replace_reason.as_deref(),
        Some("leaking"),
        "the first reason stands"
    );
}

// ---- spawn failures -------------------------------------------------------------------------

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
    let retries: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::StartFailed { retry_in_ms, .. } => Some(*retry_in_ms),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [100, 200, 400]);
    assert_eq!(
        events.last(),
        Some(&Event::RolloutAborted {
            generation: 2,
            why: "3 consecutive workers of generation 2 failed to start".into(),
        })
    );
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

// ---- messages -------------------------------------------------------------------------------

#[test]
fn ready_counts_once_per_worker() {
    let mut h = Harness::new(config(1));
    h.start();
    let w = h.current(0);
    h.take_events();
    for _ in 0..3 {
        h.ready_worker(w);
    }
    assert_eq!(h.take_events(), [ready(0, h.pid(w), 1)]);
}

#[test]
fn invalid_messages_are_reported_then_thinned() {
    let mut h = Harness::ready(1);
    let w = h.current(0);
    let pid = h.pid(w);
    for _ in 0..2_000 {
        h.input(Input::InvalidMessage {
            id: w,
            why: "not a protocol message".into(),
        });
    }
    let whys: Vec<String> = h
        .take_events()
        .into_iter()
        .map(|e| match e {
            Event::InvalidMessage {
                slot: 0,
                pid: p,
                generation: 1,
                why,
            } if p == pid => why,
            other => panic!("{other:?}"),
        })
        .collect();
    let mut expected = vec!["not a protocol message".to_owned()];
    expected.extend(
        (2..=10)
            .chain([1_000, 2_000])
            .map(|n| format!("not a protocol message (invalid message #{n})")),
    );
    assert_eq!(whys, expected);
    assert!(h.worker(w).is_ready(), "survived");
}

// ---- status -------------------------------------------------------------------------------------

#[test]
fn the_status_shows_workers_states_generations_reasons_and_slots_restarts() {
    let mut h = Harness::ready(2);
    let (a, b) = (h.current(0), h.current(1));
    let (a_pid, b_pid) = (h.pid(a), h.pid(b));
    let worker =
        |slot, pid, generation, state, age_ms, load: u64, reason: Option<&str>| WorkerStatus {
            slot,
            pid,
            generation,
            state,
            age_ms,
            rss: load,
            requests: load,
            in_flight: 0,
            responses_5xx: 0,
            failures: 0,
            replace_reason: reason.map(Into::into),
            program: Some(program_of(Generation(generation))),
        };
    let slot = |slot, restarts, reason: Option<&str>| SlotStatus {
        slot,
        restarts,
        last_restart_reason: reason.map(Into::into),
    };
    assert_eq!(
        h.status(),
        Status {
            master_pid: 0,
            generation: 1,
            good_generation: 1,
            workers_wanted: 2,
            rollout: None,
            last_rollout: None,
            stopping: false,
            listeners: vec![],
            admin: None,
            workers: vec![
                worker(0, a_pid, 1, WorkerState::Ready, 0, 0, None),
                worker(1, b_pid, 1, WorkerState::Ready, 0, 0, None),
            ],
            slots: vec![slot(0, 0, None), slot(1, 0, None)],
        }
    );

    h.advance(secs(2));
    h.heartbeat(a);
    h.replace_me(a, "asked by the test");
    let a2 = h.successor(0).unwrap();
    let a2_pid = h.pid(a2);
    h.advance(ms(500));
    assert_eq!(
        h.status().workers,
        [
            worker(
                0,
                a_pid,
                1,
                WorkerState::Ready,
                2_500,
                1,
                Some("asked by the test")
            ),
            worker(0, a2_pid, 1, WorkerState::Starting, 500, 0, None),
            worker(1, b_pid, 1, WorkerState::Ready, 2_500, 0, None),
        ]
    );
    h.ready_worker(a2);
    assert_eq!(
        h.status().workers[0],
        worker(
            0,
            a_pid,
            1,
            WorkerState::Draining,
            2_500,
            1,
            Some("asked by the test")
        )
    );
    h.exit_leaving();
    h.exit(b, "signal 9 (SIGKILL)");
    let status = h.status();
    assert_eq!(
        status.workers,
        [worker(0, a2_pid, 1, WorkerState::Ready, 500, 0, None)]
    );
    assert_eq!(
        status.slots,
        [
            slot(0, 1, Some("asked by the test")),
            slot(1, 1, Some("crashed: signal 9 (SIGKILL)")),
        ]
    );
    h.control(Control::RollingRestart);
    let status = h.status();
    assert_eq!((status.generation, status.rollout), (2, Some(2)));
    assert_eq!(
        status.workers.len(),
        3,
        "slot 0's replacement and slot 1's new worker"
    );
    assert!(
        status.workers[1..]
            .iter()
            .all(|w| w.generation == 2 && w.state == WorkerState::Starting)
    );
    h.control(Control::Stop);
    let status = h.status();
    assert!(status.stopping);
    assert_eq!(status.rollout, None);
    assert!(
        status
            .workers
            .iter()
            .all(|w| w.state == WorkerState::Draining)
    );
}

// ---- found in review: each failed before its fix ---------------------------------------------

/// The driver answers spawns one by one; a rollout aborted by the third failure must not then
/// start the fourth spawn it asked for in the same breath (nor report a drain of pid 0).
#[test]
fn a_rollout_aborted_while_its_spawns_are_answered_starts_none_it_no_longer_wants() {
    let mut h = ready_with(PolicyConfig {
        max_surge: Some(4),
        ..config(16)
    });
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
    let mut h = Harness::new(PolicyConfig {
        heartbeat_timeout: Some(secs(5)),
        ..config(1)
    });
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
    let mut h = ready_with(PolicyConfig {
        heartbeat_timeout: Some(secs(5)),
        ..config(1)
    });
    let w = h.current(0);
    h.heartbeat(w);
    for _ in 0..10 {
        h.advance(secs(1));
        h.input(Input::InvalidMessage {
            id: w,
            why: "not JSON".into(),
        });
    }
    assert!(
        h.take_events()
            .iter()
            .any(|e| matches!(e, Event::Unresponsive { .. }))
    );
    assert!(h.successor(0).is_some());
}

/// A worker's own request that finds a rollout's replacement already under way makes it its
/// own: when the rollout is aborted, the replacement still happens.
#[test]
fn a_replacement_asked_during_a_rollout_survives_its_abort() {
    let mut h = ready_with(PolicyConfig {
        rollout_failures: 1,
        ..config(2)
    });
    let (a, b) = (h.current(0), h.current(1));
    h.control(Control::RollingRestart);
    // Slot 0's replacement is starting; slot 1's is queued behind the surge of one.
    let starting = h.successor(0).expect("slot 0 starts first");
    assert!(h.policy.slots[1].pending.is_some());
    h.replace_me(b, "rss 812 MB > 750 MB");
    h.exit(starting, "exit 3"); // the rollout is aborted
    assert!(
        h.take_events()
            .iter()
            .any(|e| matches!(e, Event::RolloutAborted { .. }))
    );
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
    let mut h = ready_with(PolicyConfig {
        rollout_failures: 5,
        ..config(1)
    });
    h.control(Control::RollingRestart);
    let gen2 = h.successor(0).unwrap();
    h.control(Control::RollingRestart);
    h.exit(gen2, "exit 3");
    h.advance(ms(100));
    let gen3 = h.successor(0).expect("retried after the backoff");
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
    let old = h.current(0);
    h.replace_me(old, "asked");
    let succ = h.successor(0).unwrap();
    h.exit(old, "signal 9 (SIGKILL)");
    h.exit(succ, "exit 3");
    h.advance(ms(100));
    let fresh = h.current(0);
    h.ready_worker(fresh);
    let slot = &h.status().slots[0];
    assert_eq!(slot.restarts, 1);
    assert_eq!(
        slot.last_restart_reason.as_deref(),
        Some("crashed: signal 9 (SIGKILL)")
    );
}

// ---- deploys as transactions: the good generation, the rollout's record ---------------------

/// After an aborted rollout, every later spawn (a crash respawn, a replacement asked by the
/// worker, a new slot) runs the last good generation, with its program.
#[test]
fn after_an_aborted_rollout_every_spawn_runs_the_good_generation() {
    let mut h = ready_with(PolicyConfig {
        rollout_failures: 1,
        ..config(2)
    });
    h.control(Control::RollingRestart);
    let bad = h.successor(0).unwrap();
    h.exit(bad, "exit 1");
    assert_eq!(h.status().rollout, None);
    assert_eq!(
        h.status().generation,
        1,
        "new workers get the good generation"
    );

    // A crash of slot 1's worker: respawned from the good program.
    let b = h.current(1);
    h.exit(b, "signal 9 (SIGKILL)");
    h.advance(ms(100));
    let respawn = h.current(1);
    assert_eq!(h.worker(respawn).generation, Generation(1));
    h.ready_worker(respawn);
    // The worker of slot 0 asks to be replaced: its successor runs the good program too.
    let a = h.current(0);
    h.replace_me(a, "rss 812 MB > 750 MB");
    h.advance(ms(100));
    let succ = h
        .successor(0)
        .expect("replacement starting after the slot's backoff");
    assert_eq!(h.worker(succ).generation, Generation(1));
    // And a new slot.
    h.control(Control::ScaleUp);
    assert_eq!(h.worker(h.current(2)).generation, Generation(1));
    h.ready_all();
    let status = h.status();
    assert!(
        status
            .workers
            .iter()
            .all(|w| w.generation == 1 && w.program == Some(program_of(Generation(1)))),
        "{status:?}"
    );
    assert_eq!(status.good_generation, 1);
}

/// A completed rollout makes its generation the good one: a crash afterwards respawns it.
#[test]
fn a_completed_rollout_becomes_the_good_generation() {
    let mut h = Harness::ready(2);
    h.control(Control::RollingRestart);
    roll(&mut h, 1);
    assert_eq!(h.status().good_generation, 2);
    let a = h.current(0);
    h.exit(a, "exit 101");
    h.advance(ms(100));
    assert_eq!(h.worker(h.current(0)).generation, Generation(2));
}

/// The status keeps the last rollout: under way, then done with how many workers it replaced,
/// its start and end; an aborted one says why; a superseded one says so.
#[test]
fn the_status_records_the_last_rollout_and_how_it_ended() {
    use crate::events::{RolloutOutcome, RolloutRecord};
    let mut h = Harness::ready(2);
    h.advance(secs(1));
    h.control(Control::RollingRestart);
    let record = |h: &Harness| h.status().last_rollout.expect("a rollout was started");
    assert_eq!(
        record(&h),
        RolloutRecord {
            generation: 2,
            outcome: RolloutOutcome::InProgress,
            why: None,
            replaced: 0,
            started_at_ms: 1_000,
            ended_at_ms: None,
        }
    );
    h.advance(secs(2));
    roll(&mut h, 1);
    assert_eq!(
        record(&h),
        RolloutRecord {
            generation: 2,
            outcome: RolloutOutcome::Done,
            why: None,
            replaced: 2,
            started_at_ms: 1_000,
            ended_at_ms: Some(3_000),
        }
    );

    // Superseded.
    h.control(Control::RollingRestart);
    h.control(Control::RollingRestart);
    let superseded = h
        .take_events()
        .into_iter()
        .find(|e| matches!(e, Event::RolloutAborted { generation: 3, .. }));
    assert!(superseded.is_some());
    assert_eq!(record(&h).generation, 4);
    roll(&mut h, 1);
    assert_eq!(record(&h).outcome, RolloutOutcome::Done);

    // Aborted: why, and the good generation stays.
    let mut h = ready_with(PolicyConfig {
        rollout_failures: 1,
        ..config(1)
    });
    h.control(Control::RollingRestart);
    h.control(Control::RollingRestart);
    // The superseded rollout's replacement fails: not a failure of generation 3.
    let gen2 = h.successor(0).unwrap();
    h.exit(gen2, "exit 1");
    assert_eq!(record(&h).outcome, RolloutOutcome::InProgress);
    h.advance(ms(100));
    let gen3 = h.successor(0).unwrap();
    h.exit(gen3, "exit 1");
    let status = h.status();
    let r = status.last_rollout.expect("recorded");
    assert_eq!((r.generation, r.outcome), (3, RolloutOutcome::Aborted));
    assert_eq!(
        r.why.as_deref(),
        Some("1 consecutive workers of generation 3 failed to start")
    );
    assert_eq!((status.good_generation, status.generation), (1, 1));
}

// ---- canary rollouts -------------------------------------------------------------------------

fn canary_config(workers: usize) -> PolicyConfig {
    PolicyConfig {
        max_surge: Some(4),
        canary: Some(super::super::CanaryConfig {
            workers: 1,
            window: secs(30),
            max_error_ratio: 0.01,
            min_requests: 20,
        }),
        ..config(workers)
    }
}

/// A heartbeat saying the worker answered `requests` requests, `errors` of them with a 5xx.
fn answered(h: &mut Harness, id: WorkerId, requests: u64, errors: u64) {
    h.input(Input::Heartbeat {
        id,
        load: super::super::Load {
            rss: 1,
            requests,
            in_flight: 0,
            responses_5xx: errors,
            failures: 0,
        },
    });
}

/// Ready workers of `generation`.
fn of_generation(h: &Harness, generation: u64) -> Vec<WorkerId> {
    h.policy
        .workers
        .iter()
        .filter(|(_, w)| w.is_ready() && w.generation == Generation(generation))
        .map(|(id, _)| *id)
        .collect()
}

#[test]
fn a_canary_replaces_one_worker_and_serves_its_window_before_the_others_are_replaced() {
    let mut h = ready_with(canary_config(4));
    h.control(Control::RollingRestart);
    assert_eq!(
        successors(&h),
        1,
        "only the canary starts, whatever the surge"
    );
    let canary = h.successor(0).unwrap();
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
    let events = h.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::CanaryPassed { generation: 2, .. })),
        "{events:?}"
    );
    assert_eq!(successors(&h), 3);
    roll(&mut h, 4);
    assert_eq!(h.status().good_generation, 2);
}

#[test]
fn a_canary_worse_than_the_margin_is_refused_and_replaced_by_the_good_generation() {
    let mut h = ready_with(canary_config(3));
    let old: Vec<WorkerId> = (0..3).map(|s| h.current(s)).collect();
    h.control(Control::RollingRestart);
    let canary = h.successor(0).unwrap();
    h.ready_worker(canary);
    h.exit_leaving();
    h.advance(secs(10));
    answered(&mut h, canary, 50, 50);
    answered(&mut h, old[1], 200, 1);
    answered(&mut h, old[2], 200, 1);
    h.take_events();
    h.advance(secs(20));
    let why = "the canary of generation 2 answered 5xx to 100.00% (50 of 50 requests), \
               generation 1 to 0.50% (2 of 400 requests): more than 1.00 points worse";
    let events = h.take_events();
    assert!(
        events.contains(&Event::RolloutAborted {
            generation: 2,
            why: why.into()
        }),
        "{events:?}"
    );
    // The canary is replaced, new before old, by the good generation.
    let back = h.successor(0).expect("the canary's slot is replaced");
    assert_eq!(h.worker(back).generation, Generation(1));
    assert!(
        h.worker(canary).is_ready(),
        "serves until its replacement is ready"
    );
    h.ready_worker(back);
    assert!(h.processes[&canary].drained);
    assert_eq!(h.status().last_rollout.unwrap().why.as_deref(), Some(why));
    assert_eq!((h.current(1), h.current(2)), (old[1], old[2]));
}

#[test]
fn a_canary_that_answered_too_few_requests_is_refused() {
    let mut h = ready_with(canary_config(2));
    h.control(Control::RollingRestart);
    let canary = h.successor(0).unwrap();
    h.ready_worker(canary);
    answered(&mut h, canary, 19, 0);
    h.take_events();
    h.advance(secs(30));
    assert!(h.take_events().iter().any(|e| matches!(
        e,
        Event::RolloutAborted { generation: 2, why }
            if why == "the canary of generation 2 answered 19 requests in 30s, fewer than the 20 required"
    )));
}

/// While the canary is unproven, a crash elsewhere respawns the good generation: no more of
/// the unproven one serve than the canary count.
#[test]
fn during_a_canary_other_spawns_run_the_good_generation() {
    let mut h = ready_with(canary_config(3));
    h.control(Control::RollingRestart);
    let canary = h.successor(0).unwrap();
    h.ready_worker(canary);
    h.exit_leaving();
    let b = h.current(1);
    h.exit(b, "exit 101");
    h.advance(ms(100));
    assert_eq!(h.worker(h.current(1)).generation, Generation(1));
    h.control(Control::ScaleUp);
    assert_eq!(h.worker(h.current(3)).generation, Generation(1));
}

// ---- found in the second review: each failed before its fix ----------------------------------

/// A rollout completes only once its last worker served for the settle time; a build that
/// crashes soon after it is ready is caught meanwhile and never becomes the good one.
#[test]
fn a_rollout_completes_after_its_settle_time_and_early_crashes_within_it_abort_it() {
    let settle = PolicyConfig {
        rollout_settle: secs(5),
        rollout_failures: 1,
        ..config(1)
    };
    let mut h = ready_with(settle);
    h.control(Control::RollingRestart);
    let new = h.successor(0).unwrap();
    h.ready_worker(new);
    h.exit_leaving();
    h.advance(ms(4_999));
    assert_eq!(
        h.status().rollout,
        Some(2),
        "not done before the settle time"
    );
    h.advance(ms(1));
    assert_eq!(h.status().good_generation, 2);

    let mut h = ready_with(settle);
    h.control(Control::RollingRestart);
    let doomed = h.successor(0).unwrap();
    h.ready_worker(doomed);
    h.exit_leaving();
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
    let canary = h.successor(1).expect("the first serving slot's canary");
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
    let generations: Vec<u64> = (0..2)
        .map(|s| h.worker(h.current(s)).generation.0)
        .collect();
    assert_eq!(
        generations,
        [2, 1],
        "one canary, the other slot on the good build"
    );
}

/// A scale-down during the canary's window does not complete the rollout unjudged.
#[test]
fn a_scale_down_during_the_canary_does_not_complete_the_rollout_unjudged() {
    let mut h = ready_with(canary_config(2));
    h.control(Control::RollingRestart);
    let canary = h.successor(0).unwrap();
    h.ready_worker(canary);
    h.exit_leaving();
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
    let mut h = ready_with(PolicyConfig {
        max_surge: Some(2),
        rollout_failures: 2,
        ..config(2)
    });
    h.control(Control::RollingRestart);
    let (s0, gen2) = (h.successor(0).unwrap(), h.successor(1).unwrap());
    h.exit(s0, "exit 1");
    h.control(Control::RollingRestart); // generation 3 supersedes 2
    for _ in 0..2 {
        h.advance(ms(400));
        let gen3 = h.successor(0).expect("slot 0 tries generation 3");
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
    let mut h = ready_with(PolicyConfig {
        rollout_failures: 5,
        ..canary_config(3)
    });
    h.control(Control::RollingRestart);
    let canary = h.successor(0).unwrap();
    h.ready_worker(canary);
    h.exit_leaving();
    h.advance(secs(1)); // the window opened
    answered(&mut h, canary, 40, 40);
    h.exit(canary, "exit 101");
    h.take_events();
    h.advance(secs(30));
    assert!(h.take_events().iter().any(|e| matches!(
        e,
        Event::RolloutAborted { generation: 2, why } if why.contains("100.00% (40 of 40 requests)")
    )));
}

/// Figures from workers are untrusted: huge ones neither overflow nor tip the judgement.
#[test]
fn huge_figures_from_workers_neither_overflow_nor_decide() {
    let mut h = ready_with(canary_config(3));
    h.control(Control::RollingRestart);
    let canary = h.successor(0).unwrap();
    h.ready_worker(canary);
    h.exit_leaving();
    h.advance(ms(1));
    for old in of_generation(&h, 1) {
        answered(&mut h, old, u64::MAX, u64::MAX);
    }
    answered(&mut h, canary, 100, 100);
    h.advance(secs(30));
    assert_eq!(h.status().good_generation, 1);
}
