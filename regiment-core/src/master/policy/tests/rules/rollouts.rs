//! Rolling restarts.

use super::*;

#[test]
fn a_rolling_restart_with_a_surge_of_one_replaces_every_worker_one_at_a_time() {
    let mut h = Harness::ready_with(config(3).max_surge(1));
    let old: Vec<WorkerId> = (0..3).map(|s| h.current(s)).collect();
    let old_pids: Vec<u32> = old.iter().map(|id| h.pid(*id)).collect();

    h.control(Control::RollingRestart);
    let (mut new, _) = h.starting(0);
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
            replaced_by(slot, old_pids[slot], 1, new_pid),
        ];
        if slot < 2 {
            let (next, next_pid) = h.starting(slot + 1);
            expected.push(spawned(slot + 1, next_pid, 2, Some(old_pids[slot + 1])));
            new = next;
        } else {
            expected.push(Event::RolloutDone { generation: 2 });
        }
        assert_eq!(h.take_events(), expected);
        h.exit_leaving();
        assert_eq!(h.take_events(), [exited(slot, old_pids[slot], 1, "exit 0")]);
    }
    assert_eq!(generations(&h), [2; 3]);
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
    assert_eq!(c.max_surge(3).surge(8), 3);

    // Eight workers: two replacements at once, never more, until every slot is replaced.
    let mut h = Harness::ready(8);
    h.control(Control::RollingRestart);
    let started: Vec<usize> = spawns(&h).iter().map(|s| s.1).collect();
    assert_eq!(started, [0, 1]);
    assert_eq!(roll(&mut h, 2), 2);
    assert_eq!(generations(&h), [2; 8]);
    assert_eq!(all_spawns(&h), 16);
}

#[test]
fn a_chosen_surge_is_used_whole() {
    let mut h = Harness::ready_with(config(4).max_surge(2));
    h.control(Control::RollingRestart);
    assert_eq!(roll(&mut h, 2), 2);
    h.control(Control::RollingRestart);
    assert_eq!(roll(&mut h, 2), 2);
    assert_eq!(generations(&h), [3; 4]);
    assert_eq!(all_spawns(&h), 12);
}

#[test]
fn a_second_rolling_restart_supersedes_the_first_and_rolls_to_the_newest_generation() {
    let mut h = Harness::ready(3);
    let old_pids: Vec<u32> = (0..3).map(|s| h.pid(h.current(s))).collect();
    h.control(Control::RollingRestart);
    let (gen2, gen2_pid) = h.starting(0);
    h.take_events();

    h.control(Control::RollingRestart);
    assert_eq!(
        h.take_events(),
        [
            rollout_aborted(2, "superseded by the rolling restart to generation 3"),
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
    h.ready_worker(gen2);
    let (_, next_pid) = h.starting(1);
    assert_eq!(
        h.take_events(),
        [
            ready(0, gen2_pid, 2),
            replaced_by(0, old_pids[0], 1, gen2_pid),
            spawned(1, next_pid, 3, Some(old_pids[1])),
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
    assert_eq!(generations(&h), [3; 3]);
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
    let (victim, victim_pid) = h.serving(2);
    roll_first(&mut h);
    h.take_events();

    h.exit(victim, "signal 9 (SIGKILL)");
    assert_eq!(
        h.take_events(),
        [killed_from_outside(2, victim_pid, 1, "SIGKILL", 100)]
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
    assert_took!(h, Event::RolloutDone { generation: 2 });
    assert_eq!(generations(&h), [2; 3]);
    // The respawn was slot 2's replacement: nothing else was started for it.
    assert_eq!(all_spawns(&h), 3 + 3);
}

/// What the policy tells its driver to do with program files, and the spawns, in order.
fn program_effects(h: &Harness) -> Vec<String> {
    h.log
        .iter()
        .filter_map(|(_, e)| match e {
            Effect::OpenProgram(g) => Some(format!("open {g}")),
            Effect::ReleaseProgram(g) => Some(format!("release {g}")),
            Effect::Spawn { generation, .. } => Some(format!("spawn {generation}")),
            _ => None,
        })
        .collect()
}

#[test]
fn a_rollout_opens_its_program_before_its_spawns_and_releases_those_no_worker_spawns_from() {
    let mut h = Harness::ready(1);
    h.control(Control::RollingRestart);
    // Superseded while its worker starts: that generation spawns no more.
    h.control(Control::RollingRestart);
    h.ready_all();
    h.exit_leaving();
    assert_took!(h, Event::RolloutDone { generation: 3 });
    assert_eq!(
        program_effects(&h),
        [
            "spawn 1",
            "open 2",
            "spawn 2",
            "release 2",
            "open 3",
            "spawn 3",
            // Generation 3 is the good one now: the program of 1 is kept no longer.
            "release 1",
        ]
    );
}
