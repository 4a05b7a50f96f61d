//! Deploys as transactions: the good generation, the rollout's record.

use super::*;

/// After an aborted rollout, every later spawn (a crash respawn, a replacement asked by the
/// worker, a new slot) runs the last good generation, with its program.
#[test]
fn after_an_aborted_rollout_every_spawn_runs_the_good_generation() {
    let mut h = Harness::ready_with(config(2).rollout_failures(1));
    h.control(Control::RollingRestart);
    let (bad, _) = h.starting(0);
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
    let (succ, _) = h.starting(0);
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
            canary: None,
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
            canary: None,
        }
    );

    // Superseded.
    h.control(Control::RollingRestart);
    h.control(Control::RollingRestart);
    assert_took!(h, Event::RolloutAborted { generation: 3, .. });
    assert_eq!(record(&h).generation, 4);
    roll(&mut h, 1);
    assert_eq!(record(&h).outcome, RolloutOutcome::Done);

    // Aborted: why, and the good generation stays.
    let mut h = Harness::ready_with(config(1).rollout_failures(1));
    h.control(Control::RollingRestart);
    h.control(Control::RollingRestart);
    // The superseded rollout's replacement fails: not a failure of generation 3.
    let (gen2, _) = h.starting(0);
    h.exit(gen2, "exit 1");
    assert_eq!(record(&h).outcome, RolloutOutcome::InProgress);
    h.advance(ms(100));
    let (gen3, _) = h.starting(0);
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
