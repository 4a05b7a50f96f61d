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

use super::super::canary::Stage;
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
    Heartbeat(usize),
    Garbage(usize),
    /// A message from a worker the books no longer hold (its exit was reported already).
    Stray,
    RollingRestart,
    /// A rolling restart to a generation whose workers all fail to start.
    BadRollingRestart,
    /// A rolling restart to a generation whose workers answer every request with a 5xx.
    ErroringRollingRestart,
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
}

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
        rollout_settle: ms([0, 500, 3_000][rng.random_range(0..3)]),
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
        0..3_187 => Step::Advance(match rng.random_range(0..10) {
            0..6 => ms(rng.random_range(1..=300)),
            6..9 => ms(rng.random_range(300..=3_000)),
            _ => ms(rng.random_range(3_000..=30_000)),
        }),
        3_187..5_587 => Step::Ready(k),
        5_587..6_287 => Step::Exit(k),
        6_287..6_987 => Step::ReplaceMe(k),
        6_987..8_187 => Step::Heartbeat(k),
        8_187..8_337 => Step::Garbage(k),
        8_337..8_437 => Step::Stray,
        8_437..8_837 => Step::RollingRestart,
        8_837..8_937 => Step::BadRollingRestart,
        8_937..8_987 => Step::ErroringRollingRestart,
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
    /// Requests each worker has answered (10 more at each heartbeat).
    answered: BTreeMap<WorkerId, u64>,
    /// Rollouts started and not ended yet.
    rollouts: BTreeSet<u64>,
    /// Rollouts ended.
    ended: BTreeSet<u64>,
    /// Rollouts aborted (not superseded): none of their workers may join afterwards.
    aborted: BTreeSet<u64>,
    /// The generation spawns must run, as the events so far say: the rolling one, else the
    /// last one whose rollout completed.
    rolling: Option<u64>,
    /// The rolling generation is an unproven canary: only its own replacements run it.
    canary_stage: bool,
    good: u64,
    /// Successors that became ready, by the worker they replace.
    took_over: BTreeMap<WorkerId, u32>,
    /// Seen `Stopping` (nothing may be spawned from then on).
    stopping: bool,
    stopped: bool,
    /// The process given as stray: an id the books held and no longer hold.
    gone: Option<WorkerId>,
}

/// What the checks need from before a step.
struct Before {
    /// Where the step's effects start in the harness's log.
    log_len: usize,
    ready: BTreeSet<WorkerId>,
    /// Slot, pid and phase of every worker in the books.
    workers: BTreeMap<WorkerId, (usize, u32, Phase)>,
}

impl World {
    fn new(config: PolicyConfig) -> Self {
        let mut h = Harness::new(config);
        h.start();
        Self {
            h,
            bad: BTreeSet::new(),
            erroring: BTreeSet::new(),
            answered: BTreeMap::new(),
            rollouts: BTreeSet::new(),
            ended: BTreeSet::new(),
            aborted: BTreeSet::new(),
            rolling: None,
            canary_stage: false,
            good: 1,
            took_over: BTreeMap::new(),
            stopping: false,
            stopped: false,
            gone: None,
        }
    }

    fn nth_live(&self, k: usize) -> Option<WorkerId> {
        let n = self.h.processes.len();
        (n > 0).then(|| *self.h.processes.keys().nth(k % n).expect("in range"))
    }

    fn before(&self) -> Before {
        let workers = &self.h.policy.workers;
        Before {
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

    /// A heartbeat after 10 more requests, all answered 5xx by an erroring generation.
    fn heartbeat(&mut self, id: WorkerId) {
        let requests = self.answered.entry(id).or_default();
        *requests += 10;
        let requests = *requests;
        let erroring = self.erroring.contains(&self.h.processes[&id].generation);
        self.h.input(Input::Heartbeat {
            id,
            load: Load {
                rss: 1,
                requests,
                in_flight: 0,
                responses_5xx: if erroring { requests } else { 0 },
                failures: 0,
            },
        });
    }

    fn exit(&mut self, id: WorkerId, status: &str) {
        self.gone = Some(id);
        self.h.exit(id, status);
    }

    /// Applies one step; tells whether it may lower the number of ready workers.
    fn apply(&mut self, step: &Step) -> Lowers {
        match *step {
            Step::Advance(d) => {
                // SIGKILL is not ignored: the killed processes are reaped before time goes on.
                let killed: Vec<WorkerId> = self
                    .h
                    .processes
                    .iter()
                    .filter(|(_, p)| p.killed.is_some())
                    .map(|(id, _)| *id)
                    .collect();
                for id in killed {
                    self.exit(id, "signal 9 (SIGKILL)");
                }
                self.h.advance(d);
            }
            Step::Ready(k) => {
                if let Some(id) = self.nth_live(k) {
                    if self.bad.contains(&self.h.processes[&id].generation) {
                        self.exit(id, "exit 3");
                    } else {
                        self.h.ready_worker(id);
                    }
                }
            }
            Step::Exit(k) => {
                if let Some(id) = self.nth_live(k) {
                    let status = if self.h.processes[&id].drained {
                        "exit 0"
                    } else {
                        "exit 101"
                    };
                    self.exit(id, status);
                    return Lowers::Maybe;
                }
            }
            Step::ReplaceMe(k) => {
                if let Some(id) = self.nth_live(k) {
                    self.h.replace_me(id, "rss 812 MB > 750 MB");
                }
            }
            Step::Heartbeat(k) => {
                if let Some(id) = self.nth_live(k) {
                    self.heartbeat(id);
                }
            }
            Step::Garbage(k) => {
                if let Some(id) = self.nth_live(k) {
                    self.h.input(Input::InvalidMessage {
                        id,
                        why: "not JSON".into(),
                    });
                }
            }
            Step::Stray => {
                let id = self.gone.unwrap_or(WorkerId(u64::MAX));
                self.h.input(Input::Ready(id));
                self.h.replace_me(id, "late");
                self.h.input(Input::Exited {
                    id,
                    status: "exit 0".into(),
                });
            }
            Step::RollingRestart => self.h.control(Control::RollingRestart),
            Step::BadRollingRestart => {
                self.bad.insert(self.h.policy.generation.next());
                self.h.control(Control::RollingRestart);
            }
            Step::ErroringRollingRestart => {
                self.erroring.insert(self.h.policy.generation.next());
                self.h.control(Control::RollingRestart);
            }
            Step::Stop => {
                self.h.control(Control::Stop);
                return Lowers::Maybe;
            }
            Step::ForcedStop => {
                self.h.control(Control::ForcedStop);
                return Lowers::Maybe;
            }
            Step::ScaleUp => self.h.control(Control::ScaleUp),
            Step::ScaleDown => {
                self.h.control(Control::ScaleDown);
                return Lowers::Maybe;
            }
            Step::ScaleTo(workers) => {
                self.h.control(Control::ScaleTo(workers));
                return Lowers::Maybe;
            }
            Step::Replace(slot) => self.h.control(Control::Replace {
                slot,
                reason: "operator".into(),
            }),
            Step::FailSpawns(n) => self
                .h
                .spawn_answers
                .extend(std::iter::repeat_n(SpawnAnswer::Fail, n.into())),
            Step::FailSpawnWithLeftover => self
                .h
                .spawn_answers
                .push_back(SpawnAnswer::FailWithLeftover),
            Step::ReadyAll => loop {
                // Until none is left starting: a ready worker may start a replacement.
                let starting = self.h.in_phase(|p| matches!(p, Phase::Starting { .. }));
                if starting.is_empty() {
                    break;
                }
                for id in starting {
                    if self.bad.contains(&self.h.processes[&id].generation) {
                        self.exit(id, "exit 3");
                    } else {
                        self.h.ready_worker(id);
                    }
                }
            },
            Step::HeartbeatAll => {
                for id in self.h.in_phase(|p| matches!(p, Phase::Ready { .. })) {
                    self.heartbeat(id);
                }
            }
            Step::ExitLeaving => {
                if let Some(id) = self.h.processes.keys().next_back() {
                    self.gone = Some(*id);
                }
                self.h.exit_leaving();
            }
        }
        Lowers::No
    }

    /// Every rule, after a step.
    fn check(&mut self, before: &Before, lowers: Lowers, step: &Step) -> Result<(), Violation> {
        let effects: Vec<Effect> = self.h.log[before.log_len..]
            .iter()
            .map(|(_, e)| e.clone())
            .collect();
        for e in &effects {
            let p = &self.h.policy;
            let config = p.config;
            match e {
                Effect::Spawn {
                    id,
                    replaces,
                    generation,
                    ..
                } => {
                    // A spawn runs the rollout's generation, else the last good one: never
                    // one whose rollout ended without completing.
                    // During a canary, the canary's own replacements run the rolling
                    // generation and everything else the good one (the count of the canary's
                    // generation is checked below).
                    let expected = match self.rolling {
                        Some(_) if self.canary_stage && generation.0 == self.good => self.good,
                        Some(g) => g,
                        None => self.good,
                    };
                    if generation.0 != expected {
                        return broken(
                            "spawns run the good or the rolling generation",
                            format!(
                                "{id} spawned with generation {generation}, not {expected} \
                                 (good {}, rolling {:?})",
                                self.good, self.rolling
                            ),
                        );
                    }
                    // Once stopping, nothing is spawned.
                    if self.stopping {
                        return broken(
                            "nothing spawned while stopping",
                            format!("{id} spawned while stopping"),
                        );
                    }
                    if replaces.is_some() {
                        let starting = p.slots.iter().filter(|s| s.successor.is_some()).count();
                        let budget = config.surge(p.slots.len());
                        if starting > budget {
                            return broken(
                                "surge bounded",
                                format!(
                                    "{starting} replacements starting at once, max_surge {budget}"
                                ),
                            );
                        }
                    }
                }
                Effect::Drain { id, .. } => {
                    // New before old: a serving worker drains only once its successor serves.
                    if before.ready.contains(id)
                        && !self.stopping
                        && !matches!(step, Step::Stop | Step::ForcedStop)
                    {
                        let slot = before.workers[id].0;
                        if slot < p.slots.len() {
                            let s = &p.slots[slot];
                            let successor_serves = s
                                .current
                                .filter(|c| c != id)
                                .and_then(|c| p.workers.get(&c))
                                .is_some_and(|w| w.is_ready());
                            if !successor_serves {
                                return broken(
                                    "new before old",
                                    format!(
                                        "{id} (slot {slot}) told to drain before a successor was ready"
                                    ),
                                );
                            }
                        }
                    }
                }
                Effect::Event(ev) => self.check_event(ev, before)?,
                Effect::Kill { .. }
                | Effect::StatusChanged
                | Effect::RolloutEnded(_)
                | Effect::Replaced(_) => {}
            }
        }

        let h = &self.h;
        let p = &h.policy;
        let now = h.now;
        // While nothing crashes (and no stop or scale-down), the ready workers never decrease.
        let ready_now = h.ready_count();
        if lowers == Lowers::No && ready_now < before.ready.len() {
            return broken(
                "ready workers never drop",
                format!(
                    "ready workers went from {} to {ready_now} with nothing crashing",
                    before.ready.len()
                ),
            );
        }

        // While a canary is unproven, no more of its generation serve than the canary count.
        if let (Some(r), Some(c)) = (p.rollout, p.config.canary)
            && r.stage != Stage::Full
        {
            let serving = p
                .workers
                .values()
                .filter(|w| w.generation == r.target && w.is_ready())
                .count();
            if serving > c.workers {
                return broken(
                    "an unproven canary stays within its count",
                    format!(
                        "{serving} ready workers of generation {} during its canary of {}",
                        r.target, c.workers
                    ),
                );
            }
        }

        // A forced stop kills every worker at once.
        let forced = effects
            .iter()
            .any(|e| matches!(e, Effect::Event(Event::Stopping { forced: true })));
        if (forced || matches!(step, Step::ForcedStop))
            && let Some((id, _)) = p
                .workers
                .iter()
                .find(|(_, w)| !matches!(w.phase, Phase::Killed { .. }))
        {
            return broken(
                "forced stop kills every worker",
                format!("forced stop left {id} unkilled"),
            );
        }

        // Every process spawned is in the books until its exit; the books hold nothing else.
        let books: Vec<WorkerId> = p.workers.keys().copied().collect();
        let live: Vec<WorkerId> = h.processes.keys().copied().collect();
        if books != live {
            return broken(
                "books hold every live process",
                format!("books {books:?} but live processes {live:?}"),
            );
        }
        // Every deadline is enforced, and no timer is left due.
        for (id, w) in &p.workers {
            match w.phase {
                Phase::Starting { deadline } | Phase::Draining { deadline, .. }
                    if deadline <= now =>
                {
                    return broken(
                        "deadlines enforced",
                        format!("{id} is past its deadline in {:?}", w.phase),
                    );
                }
                _ => {}
            }
        }
        // A worker that sends heartbeats and went silent for longer than the timeout has been
        // judged, whatever else it asked for.
        if let Some(timeout) = p.config.heartbeat_timeout {
            for (id, w) in &p.workers {
                if w.is_ready()
                    && w.heartbeats == Heartbeats::Seen
                    && now.saturating_duration_since(w.last_heard) > timeout
                {
                    return broken(
                        "deadlines enforced",
                        format!("{id} silent for {:?} and not judged", now - w.last_heard),
                    );
                }
            }
        }
        if let Some(t) = p.poll_timeout()
            && t <= now
        {
            return broken(
                "deadlines enforced",
                format!("a timer due {:?} ago was not handled", now - t),
            );
        }
        // Stopped exactly when stopping and every worker has exited.
        if p.is_stopped() != (self.stopping && p.workers.is_empty()) {
            return broken(
                "stop ends when every worker exited",
                format!(
                    "stopped: {}, stopping: {}, workers: {}",
                    p.is_stopped(),
                    self.stopping,
                    p.workers.len()
                ),
            );
        }
        if !self.stopping {
            for (i, s) in p.slots.iter().enumerate() {
                // No slot stays empty unless it backs off.
                let filled = s.current.is_some() || s.successor.is_some();
                if !filled && s.retry_at.is_none_or(|t| t <= now) {
                    return broken(
                        "no slot stays empty",
                        format!("slot {i} is empty and waits for nothing"),
                    );
                }
                // A successor replaces the slot's worker of the moment.
                if let Some(succ) = s.successor
                    && h.processes.get(&succ).and_then(|p| p.replaces) != s.current
                    && s.current.is_some()
                    && h.processes[&succ].replaces.is_some()
                {
                    // The current worker changed only if it exited (the successor then takes
                    // the slot when ready): it must be gone from the books.
                    let replaced = h.processes[&succ].replaces.expect("checked");
                    if p.workers.contains_key(&replaced) {
                        return broken(
                            "a successor replaces its slot's worker",
                            format!(
                                "slot {i}: successor {succ} replaces {replaced}, which is not the slot's worker"
                            ),
                        );
                    }
                }
            }
            // One queue entry per slot, and only for a slot that wants a replacement.
            let queued: BTreeSet<usize> = p.queue.iter().copied().collect();
            if queued.len() != p.queue.len() {
                return broken(
                    "one queue entry per slot",
                    format!("a slot is queued twice: {:?}", p.queue),
                );
            }
        }
        Ok(())
    }

    fn check_event(&mut self, ev: &Event, before: &Before) -> Result<(), Violation> {
        let config = self.h.policy.config;
        let backoff = config.backoff;
        let in_bounds =
            |d: u64| d >= backoff.initial.as_millis() as u64 && d <= backoff.max.as_millis() as u64;
        match ev {
            // Events name processes that were started.
            Event::Ready { pid: 0, .. }
            | Event::Draining { pid: 0, .. }
            | Event::Killed { pid: 0, .. }
            | Event::Unresponsive { pid: 0, .. }
            | Event::Crashed { pid: 0, .. } => {
                return broken("events name started processes", format!("{ev:?}"));
            }
            Event::Stopping { .. } => self.stopping = true,
            Event::Stopped => {
                if self.stopped {
                    return broken("stop ends when every worker exited", "stopped twice");
                }
                self.stopped = true;
            }
            Event::RolloutStarted { generation }
                if !self.rollouts.insert(*generation) || self.ended.contains(generation) =>
            {
                return broken(
                    "every rollout ends once",
                    format!("rollout {generation} started twice"),
                );
            }
            Event::RolloutDone { generation } | Event::RolloutAborted { generation, .. }
                if !self.rollouts.remove(generation) || !self.ended.insert(*generation) =>
            {
                return broken(
                    "every rollout ends once",
                    format!("rollout {generation} ended without being under way"),
                );
            }
            Event::RolloutStarted { generation } => {
                self.rolling = Some(*generation);
                let p = &self.h.policy;
                self.canary_stage = p.config.canary.is_some_and(|c| c.workers < p.slots.len());
            }
            Event::CanaryPassed { generation, why } => {
                self.canary_stage = false;
                // A canary that answers only 5xx, beside workers that answer none, never passes
                // a margin below 100 % once it had to answer anything.
                let p = &self.h.policy;
                let c = p.config.canary.expect("a canary was configured");
                // Compared with the good generation: unless it answers 5xx too.
                let others_clean = !self.erroring.contains(&p.good);
                if self.erroring.contains(&Generation(*generation))
                    && others_clean
                    && c.min_requests > 0
                    && c.max_error_ratio < 1.0
                {
                    return broken(
                        "a canary worse than the margin is refused",
                        format!("generation {generation} passed: {why}"),
                    );
                }
            }
            Event::RolloutAborted { generation, why } => {
                self.rolling = None;
                if !why.starts_with("superseded") {
                    self.aborted.insert(*generation);
                }
            }
            Event::RolloutDone { generation } => {
                self.rolling = None;
                self.good = *generation;
                if self.h.policy.good.0 != *generation {
                    return broken(
                        "a completed rollout's generation is the good one",
                        format!(
                            "rollout {generation} done, good generation {}",
                            self.h.policy.good
                        ),
                    );
                }
            }
            Event::StartFailed {
                retry_in_ms, slot, ..
            } => {
                let expected_zero = self.stopping || *slot >= self.h.policy.slots.len();
                if expected_zero != (*retry_in_ms == 0)
                    || (!expected_zero && !in_bounds(*retry_in_ms))
                {
                    return broken(
                        "backoff within bounds",
                        format!("retry_in_ms {retry_in_ms} outside the backoff {backoff:?}"),
                    );
                }
            }
            Event::Crashed {
                respawn_in_ms, pid, ..
            } => {
                if *respawn_in_ms != 0 && !in_bounds(*respawn_in_ms) {
                    return broken(
                        "backoff within bounds",
                        format!("respawn_in_ms {respawn_in_ms} outside the backoff {backoff:?}"),
                    );
                }
                // A worker that stayed ready for a healthy period starts the backoff over.
                let crashed = before.workers.values().find(|(_, p, _)| p == pid);
                if let Some((_, _, Phase::Ready { since })) = crashed
                    && self.h.now.saturating_duration_since(*since) >= backoff.reset_after
                    && *respawn_in_ms != 0
                    && *respawn_in_ms != backoff.initial.as_millis() as u64
                {
                    return broken(
                        "backoff resets after a healthy period",
                        format!(
                            "a worker healthy for {:?} crashed and its slot waits {respawn_in_ms} ms",
                            self.h.now - *since
                        ),
                    );
                }
            }
            Event::Ready {
                pid, generation, ..
            } if self.aborted.contains(generation) => {
                return broken(
                    "no worker of an aborted rollout joins",
                    format!("pid {pid} of aborted generation {generation} became ready"),
                );
            }
            Event::Ready { pid, .. } => {
                // Any number of requests for one slot make one replacement.
                let replaces = self
                    .h
                    .processes
                    .values()
                    .find(|p| p.pid == *pid)
                    .and_then(|p| p.replaces);
                if let Some(old) = replaces {
                    let n = self.took_over.entry(old).or_default();
                    *n += 1;
                    if *n > 1 {
                        return broken(
                            "one replacement per request",
                            format!("{old} was replaced by {n} workers"),
                        );
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The quiet phase: every spawn succeeds, every worker behaves, every rule is still
    /// checked. A stop must end; otherwise a new rolling restart must complete and fill every
    /// slot.
    fn settle(&mut self, at: usize) -> Result<(), Broken> {
        self.h.spawn_answers.clear();
        let quiet = [
            Step::ReadyAll,
            Step::HeartbeatAll,
            Step::ExitLeaving,
            // Shorter than any start timeout: workers of the quiet phase are ready in time.
            Step::Advance(ms(100)),
        ];
        let mut steps = vec![];
        if !self.stopping {
            steps.push(Step::RollingRestart);
        }
        let target = self.h.policy.generation.next();
        for round in 0..QUIET_ROUNDS {
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
            if self.h.policy.is_stopped() || (!self.stopping && self.settled(target)) {
                return match self.rollouts.first() {
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
        p.rollout.is_none()
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
