//! Running histories, shortening and reporting a failing one, and the tests that run them.

use super::*;

/// Runs a history; the first rule it breaks.
fn run(config: PolicyConfig, steps: &[Step]) -> Result<(), Broken> {
    run_counting(config, steps).map(|_| ())
}

/// Runs a history; the first rule it breaks, or the kinds of event it produced.
fn run_counting(config: PolicyConfig, steps: &[Step]) -> Result<Coverage, Broken> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut world = World::new(config);
        for (at, step) in steps.iter().enumerate() {
            let before = world.before();
            let lowers = world.apply(step);
            world
                .check(&before, lowers, step)
                .map_err(|violation| Broken { at, violation })?;
        }
        world.settle(steps.len())?;
        let mut coverage = Coverage::new();
        for (_, e) in &world.h.log {
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
                    _ => None,
                };
                if let Some(kind) = also {
                    *coverage.entry(kind.into()).or_default() += 1;
                }
            }
        }
        Ok(coverage)
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
            "canary-withdrawn",
            "scaled",
            "stopping",
            "stopped",
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
