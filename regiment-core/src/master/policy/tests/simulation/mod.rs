//! Deterministic simulation: seeded random histories of a cluster, with the lifecycle rules
//! checked as invariants after every step.
//!
//! A history is a list of abstract steps (time passes, the k-th live worker becomes ready,
//! crashes, asks to be replaced, a rolling restart, a stop, ...), drawn from a seed before it
//! runs, so that it replays exactly. Each history ends with a quiet phase in which every spawn
//! succeeds and every worker behaves: a graceful stop must then end, and otherwise a new rolling
//! restart must complete. A failing history is shortened (first to the prefix that fails, then
//! step by step while it still fails) and printed with its seed.
//!
//! CI checks 10 000 histories. More, or one seed again:
//!
//! ```text
//! REGIMENT_SIM_HISTORIES=1000000 cargo test --release -p regiment-core --lib simulation
//! REGIMENT_SIM_SEED=4242 cargo test -p regiment-core --lib simulation -- --nocapture
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::super::rollout::Stage;
use super::super::worker::{Heartbeats, Phase};
use super::super::{
    BackoffConfig, CanaryConfig, Control, Effect, Generation, Input, Load, PolicyConfig, WorkerId,
};
use super::util::{Harness, SpawnAnswer, ms};
use crate::events::Event;

/// Histories checked by default (CI).
const HISTORIES: u64 = 10_000;
/// Steps of each history.
const STEPS: usize = 300;
/// Rounds of the quiet phase before a history is declared stuck.
const QUIET_ROUNDS: usize = 2_000;

/// One thing that happens to the cluster. Workers are named by their rank among the live
/// processes (modulo their number), so that any list of steps is a valid history.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Advance(Duration),
    Ready(usize),
    /// Exits unasked (a crash; or a drained worker finishing).
    Exit(usize),
    ReplaceMe(usize),
    /// Asks to be replaced as regiment's workers do: a heartbeat with the requests answered so
    /// far (none, for a worker that answered nothing yet), then the request.
    HeartbeatAndAsk(usize),
    /// A ready worker of the newest generation asks to be replaced, as a worker that reached
    /// its request count does: steady recycling.
    Recycle,
    Heartbeat(usize),
    Garbage(usize),
    /// A message from a worker the books no longer hold (its exit was reported already).
    Stray,
    RollingRestart,
    /// A rolling restart to a generation whose workers all fail to start.
    BadRollingRestart,
    /// A rolling restart to a generation whose workers answer every request with a 5xx.
    ErroringRollingRestart,
    /// A rolling restart to a generation whose handlers panic: no request gets an answer.
    PanickingRollingRestart,
    /// The policy is handed over as an upgrade hands it over (snapshot, JSON and back,
    /// restored under the same options), and goes on.
    Handover,
    /// The master upgrades itself: it hands its books over, and the new master rolls its build
    /// out (refused, as any upgrade, while one is under way or the master is stopping).
    Upgrade,
    /// An upgrade the driver cannot hand over (its preflight refuses the new binary).
    RefusedUpgrade,
    /// An upgrade handed over to a new master that cannot take over: the previous program
    /// restores the same books and ends the upgrade, rolled back.
    RolledBackUpgrade,
    Stop,
    ForcedStop,
    ScaleUp,
    ScaleDown,
    ScaleTo(usize),
    Replace(usize),
    /// The next spawns fail.
    FailSpawns(u8),
    /// The next spawn starts a process whose IPC channel cannot be set up.
    FailSpawnWithLeftover,
    /// Quiet phase: every starting worker becomes ready (or fails, for a bad generation).
    ReadyAll,
    /// Quiet phase: every ready worker sends a heartbeat.
    HeartbeatAll,
    /// Quiet phase: every drained or killed worker exits.
    ExitLeaving,
    /// The k-th live worker's private memory grows by this many MB (a leak, a cache).
    Grow(usize, u64),
    /// The driver reads the regiment's memory: every live process at its size.
    ReadMemory,
}

/// A new worker's private memory (USS), bytes; it grows by [`Step::Grow`].
const NEW_WORKER: u64 = 10 * MB;
/// The master's PSS in every reading.
const MASTER: u64 = 5 * MB;
const MB: u64 = 1_000_000;
/// With a memory budget, histories scale up to this many slots at most.
const BUDGETED_SLOTS: usize = 8;

fn draw_config(rng: &mut ChaCha8Rng) -> PolicyConfig {
    PolicyConfig {
        workers: rng.random_range(1..=5),
        drain_timeout: ms(rng.random_range(500..=8_000)),
        start_timeout: ms(rng.random_range(500..=8_000)),
        max_surge: if rng.random_bool(0.5) {
            None
        } else {
            Some(rng.random_range(1..=3))
        },
        backoff: BackoffConfig {
            initial: ms(100),
            max: ms(rng.random_range(100..=5_000)),
            reset_after: ms(rng.random_range(1_000..=20_000)),
        },
        rollout_failures: rng.random_range(1..=4),
        heartbeat_timeout: if rng.random_bool(0.5) {
            None
        } else {
            Some(ms(rng.random_range(1_000..=5_000)))
        },
        unresponsive_grace: ms(rng.random_range(100..=3_000)),
        rollout_settle: ms([0, 500, 3_000][rng.random_range(0..3)]),
        // Derived, or given: long enough for the quiet phase's rollout (at most a backoff, a
        // canary's window, the settle time and a round per replacement), short enough to pass
        // in many histories.
        rollout_timeout: if rng.random_bool(0.5) {
            None
        } else {
            Some(ms(rng.random_range(20_000..=60_000)))
        },
        readiness: crate::Readiness::Listening,
        // From just enough for the most slots a history with a budget has, each with a new
        // worker starting beside its own (a quiet phase rolls out under steady recycling, and
        // must be able to end), to ample; workers that grow go over it.
        memory_budget: rng.random_bool(0.5).then(|| {
            let rolling = MASTER + 2 * BUDGETED_SLOTS as u64 * (NEW_WORKER + MB);
            rolling + rng.random_range(0..=150) * MB
        }),
        canary: if rng.random_bool(0.5) {
            None
        } else {
            Some(CanaryConfig {
                workers: rng.random_range(1..=2),
                window: ms(rng.random_range(500..=10_000)),
                max_error_ratio: [0.0, 0.01, 0.2][rng.random_range(0..3)],
                min_requests: rng.random_range(0..=50),
            })
        },
    }
}

fn draw_step(rng: &mut ChaCha8Rng) -> Step {
    let k = rng.random_range(0..64);
    // Weights out of 10 000; a stop ends about a third of the histories, so that most end
    // with a rollout that must complete.
    match rng.random_range(0..10_000) {
        3_042..3_142 => Step::Handover,
        3_142..3_172 => Step::Upgrade,
        3_172..3_180 => Step::RefusedUpgrade,
        3_180..3_187 => Step::RolledBackUpgrade,
        2_442..2_742 => Step::Grow(k, rng.random_range(1..=60)),
        2_742..3_042 => Step::ReadMemory,
        0..2_442 => Step::Advance(match rng.random_range(0..10) {
            0..6 => ms(rng.random_range(1..=300)),
            6..9 => ms(rng.random_range(300..=3_000)),
            _ => ms(rng.random_range(3_000..=30_000)),
        }),
        3_187..5_587 => Step::Ready(k),
        5_587..6_287 => Step::Exit(k),
        6_287..6_637 => Step::ReplaceMe(k),
        6_637..6_787 => Step::HeartbeatAndAsk(k),
        6_787..6_987 => Step::Recycle,
        6_987..8_187 => Step::Heartbeat(k),
        8_187..8_337 => Step::Garbage(k),
        8_337..8_437 => Step::Stray,
        8_437..8_837 => Step::RollingRestart,
        8_837..8_937 => Step::BadRollingRestart,
        8_937..8_962 => Step::ErroringRollingRestart,
        8_962..8_987 => Step::PanickingRollingRestart,
        8_987..8_997 => Step::Stop,
        8_997..9_000 => Step::ForcedStop,
        9_000..9_250 => Step::ScaleUp,
        9_250..9_420 => Step::ScaleDown,
        9_420..9_500 => Step::ScaleTo(rng.random_range(0..6)),
        9_500..9_800 => Step::Replace(rng.random_range(0..6)),
        9_800..9_950 => Step::FailSpawns(rng.random_range(1..=4)),
        _ => Step::FailSpawnWithLeftover,
    }
}

/// A seed's configuration and history.
fn draw(seed: u64, steps: usize) -> (PolicyConfig, Vec<Step>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let config = draw_config(&mut rng);
    let steps = (0..steps).map(|_| draw_step(&mut rng)).collect();
    (config, steps)
}

/// A rule broken at step `at` (`steps.len()` for the quiet phase).
#[derive(Debug)]
struct Broken {
    at: usize,
    violation: Violation,
}

/// An invariant, by name, and how it was broken.
#[derive(Debug)]
struct Violation {
    rule: &'static str,
    detail: String,
}

fn broken<T>(rule: &'static str, detail: impl Into<String>) -> Result<T, Violation> {
    Err(Violation {
        rule,
        detail: detail.into(),
    })
}

/// The world of one history: the harness and what the checks remember between steps.
struct World {
    h: Harness,
    /// Generations whose workers fail to start.
    bad: BTreeSet<Generation>,
    /// Generations whose workers answer every request with a 5xx.
    erroring: BTreeSet<Generation>,
    /// Generations whose workers answer no request at all (every handler panics).
    panicking: BTreeSet<Generation>,
    /// Requests each worker has answered (10 more at each heartbeat).
    answered: BTreeMap<WorkerId, u64>,
    /// Rollouts started and not ended yet, with the time each must have ended by.
    rollouts: BTreeMap<u64, Instant>,
    /// Rollouts ended.
    ended: BTreeSet<u64>,
    /// Rollouts aborted (not superseded), with why: none of their workers may join afterwards.
    aborted: BTreeMap<u64, String>,
    /// The generation spawns must run, as the events so far say: the rolling one, else the
    /// last one whose rollout completed.
    rolling: Option<u64>,
    /// The rolling generation is an unproven canary: only its own replacements run it.
    canary_stage: bool,
    good: u64,
    /// The programs open, as the policy's effects opened and released them.
    programs: BTreeSet<Generation>,
    /// Successors that became ready, by the worker they replace.
    took_over: BTreeMap<WorkerId, u32>,
    /// Seen `Stopping` (nothing may be spawned from then on).
    stopping: bool,
    stopped: bool,
    /// The process given as stray: an id the books held and no longer hold.
    gone: Option<WorkerId>,
    /// Whether the handover steps hand the books over, or the history runs as if they were
    /// not there (its twin, which must decide the same).
    handovers: Handovers,
    /// Each live worker's private memory (USS), once it grew from [`NEW_WORKER`].
    sizes: BTreeMap<WorkerId, u64>,
    /// Workers a budget replacement was asked for, by pid, until they exit.
    budget_victims: BTreeSet<u32>,
}

/// What the handover steps of a history do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handovers {
    /// Snapshot, JSON and back, restore.
    Made,
    /// Nothing: the policy goes on as it is.
    Skipped,
}

/// What the checks need from before a step.
struct Before {
    /// The slots' current workers that serve and no replacement is starting for: those a
    /// budget replacement may choose.
    replaceable: Vec<WorkerId>,
    /// Where the step's effects start in the harness's log.
    log_len: usize,
    ready: BTreeSet<WorkerId>,
    /// Slot, pid and phase of every worker in the books.
    workers: BTreeMap<WorkerId, (usize, u32, Phase)>,
}

impl World {
    fn new(config: PolicyConfig, t0: Instant, handovers: Handovers) -> Self {
        let mut h = Harness::new_at(config, t0);
        h.start();
        Self {
            h,
            bad: BTreeSet::new(),
            erroring: BTreeSet::new(),
            panicking: BTreeSet::new(),
            answered: BTreeMap::new(),
            rollouts: BTreeMap::new(),
            ended: BTreeSet::new(),
            aborted: BTreeMap::new(),
            rolling: None,
            canary_stage: false,
            good: 1,
            programs: BTreeSet::from([Generation::FIRST]),
            took_over: BTreeMap::new(),
            stopping: false,
            stopped: false,
            gone: None,
            handovers,
            sizes: BTreeMap::new(),
            budget_victims: BTreeSet::new(),
        }
    }

    /// A live worker's private memory, as the simulation makes it.
    fn size(&self, id: WorkerId) -> u64 {
        self.sizes.get(&id).copied().unwrap_or(NEW_WORKER)
    }

    fn nth_live(&self, k: usize) -> Option<WorkerId> {
        let n = self.h.processes.len();
        (n > 0).then(|| *self.h.processes.keys().nth(k % n).expect("in range"))
    }

    fn before(&self) -> Before {
        let workers = &self.h.policy.workers;
        let p = &self.h.policy;
        let replaceable = (p.slots.iter())
            .filter(|s| s.successor.is_none() && s.vacating.is_none())
            .filter_map(|s| s.current)
            .filter(|id| workers.get(id).is_some_and(|w| w.is_ready()))
            .collect();
        Before {
            replaceable,
            log_len: self.h.log.len(),
            ready: workers
                .iter()
                .filter(|(_, w)| w.is_ready())
                .map(|(id, _)| *id)
                .collect(),
            workers: workers
                .iter()
                .map(|(id, w)| (*id, (w.slot, w.pid, w.phase)))
                .collect(),
        }
    }

    /// Whether every request `generation` receives fails (answered 5xx, or not at all).
    fn fails_every_request(&self, generation: Generation) -> bool {
        self.erroring.contains(&generation) || self.panicking.contains(&generation)
    }

    /// A heartbeat after 10 more requests, all answered 5xx by an erroring generation, none
    /// answered by a panicking one.
    fn heartbeat(&mut self, id: WorkerId) {
        *self.answered.entry(id).or_default() += 10;
        self.report(id);
    }

    /// A heartbeat with the requests answered so far.
    fn report(&mut self, id: WorkerId) {
        let requests = self.answered.get(&id).copied().unwrap_or(0);
        let generation = self.h.processes[&id].generation;
        let erroring = self.erroring.contains(&generation);
        let panicking = self.panicking.contains(&generation);
        self.h.input(Input::Heartbeat {
            id,
            load: Load {
                rss: 1,
                requests,
                in_flight: 0,
                responses_5xx: if erroring { requests } else { 0 },
                failures: if panicking { requests } else { 0 },
                latency: None,
            },
        });
    }

    fn exit(&mut self, id: WorkerId, status: &str) {
        self.gone = Some(id);
        self.h.exit(id, status);
    }

    /// The quiet phase: every spawn succeeds, every worker behaves, every rule is still
    /// checked. A stop must end; otherwise a new rolling restart must complete and fill every
    /// slot, although a worker of the new generation asks to be replaced at every round for as
    /// long as the rollout is under way (a rollout must end under steady recycling).
    fn settle(&mut self, at: usize) -> Result<(), Broken> {
        self.h.spawn_answers.clear();
        // Workers behave: none grows any more, and the memory is read at every round.
        let quiet = [
            Step::ReadyAll,
            Step::HeartbeatAll,
            Step::ExitLeaving,
            Step::ReadMemory,
            // Shorter than any start timeout: workers of the quiet phase are ready in time.
            Step::Advance(ms(100)),
        ];
        let mut steps = vec![];
        if !self.stopping {
            steps.push(Step::RollingRestart);
        }
        // Workers behave: what grew is given back (a cache emptied), and nothing grows.
        self.sizes.clear();
        let target = self.h.policy.rollouts.newest.next();
        for round in 0..QUIET_ROUNDS {
            if self
                .h
                .policy
                .rollouts
                .under_way
                .as_ref()
                .is_some_and(|r| r.target == target)
            {
                steps.push(Step::Recycle);
            }
            steps.extend(quiet.iter().cloned());
            for step in steps.drain(..) {
                let before = self.before();
                let lowers = self.apply(&step);
                self.check(&before, lowers, &step)
                    .map_err(|mut violation| {
                        violation.detail =
                            format!("quiet phase, round {round}, {step:?}: {}", violation.detail);
                        Broken { at, violation }
                    })?;
            }
            if let Some(why) = self.aborted.get(&target.0) {
                return Err(Broken {
                    at,
                    violation: Violation {
                        rule: "a healthy rollout completes",
                        detail: format!(
                            "the rollout to generation {target} was aborted in the quiet phase, \
                             round {round}: {why}"
                        ),
                    },
                });
            }
            if self.h.policy.is_stopped() || (!self.stopping && self.settled(target)) {
                return match self.rollouts.keys().next() {
                    Some(g) => Err(Broken {
                        at,
                        violation: Violation {
                            rule: "every rollout ends once",
                            detail: format!("rollout {g} never ended"),
                        },
                    }),
                    None => Ok(()),
                };
            }
        }
        let violation = if self.stopping {
            Violation {
                rule: "stop ends when every worker exited",
                detail: "a stop never ended".into(),
            }
        } else {
            Violation {
                rule: "a later rollout completes",
                detail: format!("the rollout to generation {target} never completed"),
            }
        };
        Err(Broken { at, violation })
    }

    fn settled(&self, target: Generation) -> bool {
        let p = &self.h.policy;
        p.rollouts.under_way.is_none()
            && self.ended.contains(&target.0)
            && p.slots.iter().all(|s| {
                s.successor.is_none()
                    && s.pending.is_none()
                    && s.current
                        .and_then(|c| p.workers.get(&c))
                        .is_some_and(|w| w.is_ready() && w.generation == target)
            })
            && p.workers.len() == p.slots.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lowers {
    No,
    Maybe,
}

/// How often each kind of event happened: the histories must reach every rule.
type Coverage = BTreeMap<String, u64>;

mod apply;
mod checks;
mod runs;
