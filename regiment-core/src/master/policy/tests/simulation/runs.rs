//! Running histories, shortening and reporting a failing one, and the tests that run them.

use super::*;
use crate::master::policy::upgrade::UpgradeOutcome;

/// Runs a history; the first rule it breaks.
fn run(config: PolicyConfig, steps: &[Step]) -> Result<(), Broken> {
    run_counting(config, steps).map(|_| ())
}

/// Runs a history; the first rule it breaks, or the kinds of event it produced. A history
/// that hands the policy over runs twice: as drawn, and as its twin without the handovers,
/// which must decide exactly the same.
fn run_counting(config: PolicyConfig, steps: &[Step]) -> Result<Coverage, Broken> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // One starting instant for both: their logs compare instant by instant.
        let t0 = Instant::now();
        let (world, marks) = run_world(config, steps, t0, Handovers::Made)?;
        if steps
            .iter()
            .any(|s| matches!(s, Step::Handover | Step::Upgrade | Step::RolledBackUpgrade))
        {
            let (twin, _) = run_world(config, steps, t0, Handovers::Skipped)?;
            same_decisions(&world, &twin, &marks)?;
        }
        Ok(coverage(&world, steps))
    }));
    outcome.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(Broken {
            at: steps.len(),
            violation: Violation {
                rule: "the policy never panics",
                detail: what,
            },
        })
    })
}

/// Runs a history in a world whose handover steps do as `handovers` says; the world after its
/// quiet phase, and where each step's effects start in its log (and, last, the quiet phase's).
fn run_world(
    config: PolicyConfig,
    steps: &[Step],
    t0: Instant,
    handovers: Handovers,
) -> Result<(World, Vec<usize>), Broken> {
    let mut world = World::new(config, t0, handovers);
    let mut marks = Vec::with_capacity(steps.len() + 1);
    for (at, step) in steps.iter().enumerate() {
        marks.push(world.h.log.len());
        let before = world.before();
        let lowers = world.apply(step);
        world
            .check(&before, lowers, step)
            .map_err(|violation| Broken { at, violation })?;
    }
    marks.push(world.h.log.len());
    world.settle(steps.len())?;
    Ok((world, marks))
}

/// A history with handovers decides what its twin without them decides, at the same instants.
/// A status to publish is no decision: a restored policy publishes its own first.
fn same_decisions(world: &World, twin: &World, marks: &[usize]) -> Result<(), Broken> {
    let decisions = |w: &World| -> Vec<(usize, Instant, Effect)> {
        (w.h.log.iter().enumerate())
            .filter(|(_, (_, e))| *e != Effect::StatusChanged)
            .map(|(i, (at, e))| (i, *at, e.clone()))
            .collect()
    };
    let (ours, theirs) = (decisions(world), decisions(twin));
    let differs = ours
        .iter()
        .zip(&theirs)
        .position(|((_, t, a), (_, u, b))| (t, a) != (u, b))
        .or_else(|| (ours.len() != theirs.len()).then(|| ours.len().min(theirs.len())));
    let Some(k) = differs else {
        return Ok(());
    };
    let index = ours.get(k).map_or(world.h.log.len(), |(i, _, _)| *i);
    // The step whose effects hold it (past the last: the quiet phase, `steps.len()`).
    let at = marks.partition_point(|m| *m <= index).saturating_sub(1);
    let show = |d: Option<&(usize, Instant, Effect)>| match d {
        Some((_, t, e)) => format!("{e:?} at {:?}", *t - world.h.t0),
        None => "nothing".into(),
    };
    Err(Broken {
        at,
        violation: Violation {
            rule: "a handover changes no decision",
            detail: format!(
                "decision #{k}: with the handovers {}, without {}",
                show(ours.get(k)),
                show(theirs.get(k))
            ),
        },
    })
}

/// How often each kind of event happened in a world's history (and its upgrades and
/// handovers, which are no events).
fn coverage(world: &World, steps: &[Step]) -> Coverage {
    let mut coverage = Coverage::new();
    for (_, e) in &world.h.log {
        let kind = match e {
            Effect::UpgradeEnded(log) => match log.outcome {
                UpgradeOutcome::Done => Some("upgrade-done"),
                UpgradeOutcome::Aborted => Some("upgrade-aborted"),
                UpgradeOutcome::Refused => Some("upgrade-refused"),
                UpgradeOutcome::RolledBack => Some("upgrade-rolled-back"),
                UpgradeOutcome::InProgress => Some("upgrade-in-progress"),
            },
            _ => None,
        };
        if let Some(kind) = kind {
            *coverage.entry(kind.into()).or_default() += 1;
        }
        if let Effect::Event(e) = e {
            let json = serde_json::to_value(e).expect("events serialize");
            let kind = json["event"].as_str().unwrap_or("?").to_owned();
            *coverage.entry(kind).or_default() += 1;
            let also = match e {
                Event::RolloutAborted { why, .. } if why.starts_with("not done within") => {
                    Some("rollout-timed-out")
                }
                Event::Draining { why, .. }
                    if why.starts_with("rollout aborted") && why.ends_with("points worse") =>
                {
                    Some("canary-withdrawn")
                }
                Event::ReplaceRequested { reason, .. } if reason.starts_with("memory-budget") => {
                    Some("memory-budget")
                }
                Event::Draining { why, .. } if why.contains("drained before its replacement") => {
                    Some("drained-first")
                }
                _ => None,
            };
            if let Some(kind) = also {
                *coverage.entry(kind.into()).or_default() += 1;
            }
        }
    }
    let handovers = steps.iter().filter(|s| **s == Step::Handover).count() as u64;
    if handovers > 0 {
        *coverage.entry("handover".into()).or_default() += handovers;
    }
    coverage
}

/// The shortest prefix that fails, then without every step whose removal keeps it failing.
fn shorten(config: PolicyConfig, steps: &[Step], broken: &Broken) -> Vec<Step> {
    let mut steps = steps[..(broken.at + 1).min(steps.len())].to_vec();
    // Passes until no single step can go (a few: each removal may free others).
    for _ in 0..8 {
        let len = steps.len();
        let mut i = steps.len();
        while i > 0 {
            i -= 1;
            let mut shorter = steps.clone();
            shorter.remove(i);
            if run(config, &shorter).is_err_and(|b| b.violation.rule == broken.violation.rule) {
                steps = shorter;
            }
        }
        if steps.len() == len {
            break;
        }
    }
    steps
}

fn report(seed: u64, config: PolicyConfig, steps: &[Step], broken: &Broken) -> String {
    let short = shorten(config, steps, broken);
    let again = run(config, &short).expect_err("the shortened history fails");
    let mut out = format!(
        "seed {seed}: \"{}\" broken at step {} of {}: {}\n\
         replay: REGIMENT_SIM_SEED={seed} cargo test -p regiment-core --lib simulation\n\
         config: {config:?}\n\
         shortest history that breaks it ({} steps; {}):\n",
        broken.violation.rule,
        broken.at,
        steps.len(),
        broken.violation.detail,
        short.len(),
        again.violation.detail,
    );
    for (i, s) in short.iter().enumerate() {
        let _ = writeln!(out, "  {i:>3}: {s:?}");
    }
    out
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: expected a whole number"))
    })
}

#[test]
fn random_histories_keep_every_rule() {
    let steps = env_u64("REGIMENT_SIM_STEPS").map_or(STEPS, |n| n as usize);
    let seeds: Vec<u64> = match env_u64("REGIMENT_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("REGIMENT_SIM_HISTORIES").unwrap_or(HISTORIES)).collect(),
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    let (failures, coverage) = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..threads)
            .map(|t| {
                let seeds = &seeds;
                scope.spawn(move || {
                    let mut coverage = Coverage::new();
                    for &seed in seeds.iter().skip(t).step_by(threads) {
                        let (config, history) = draw(seed, steps);
                        match run_counting(config, &history) {
                            Ok(c) => {
                                for (kind, n) in c {
                                    *coverage.entry(kind).or_default() += n;
                                }
                            }
                            Err(broken) => {
                                return (Some(report(seed, config, &history, &broken)), coverage);
                            }
                        }
                    }
                    (None, coverage)
                })
            })
            .collect();
        let mut failures = Vec::new();
        let mut coverage = Coverage::new();
        for t in threads {
            let (failure, c) = t.join().expect("simulation thread");
            failures.extend(failure);
            for (kind, n) in c {
                *coverage.entry(kind).or_default() += n;
            }
        }
        (failures, coverage)
    });
    eprintln!(
        "simulation: {} histories of {steps} steps in {:.1?}; events: {coverage:?}",
        seeds.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    if seeds.len() >= 1_000 {
        // The histories reach every rule: a generator that stopped doing so would check nothing.
        for kind in [
            "spawned",
            "ready",
            "replace-requested",
            "replacement-delayed",
            "draining",
            "killed",
            "exited",
            "crashed",
            "start-failed",
            "invalid-message",
            "unresponsive",
            "rollout-started",
            "rollout-done",
            "rollout-aborted",
            "rollout-timed-out",
            "memory-budget",
            "drained-first",
            "canary-withdrawn",
            "scaled",
            "stopping",
            "stopped",
            "handover",
            "upgrade-done",
            "upgrade-aborted",
            "upgrade-refused",
            "upgrade-rolled-back",
        ] {
            assert!(
                coverage.get(kind).is_some_and(|n| *n > 0),
                "no {kind} event in any history"
            );
        }
    }
}

#[test]
fn a_history_replays_exactly_from_its_seed() {
    assert_eq!(draw(7, 50).1, draw(7, 50).1);
    assert_eq!(
        format!("{:?}", draw(7, 50).0),
        format!("{:?}", draw(7, 50).0)
    );
    assert_ne!(draw(7, 50).1, draw(8, 50).1);
}
