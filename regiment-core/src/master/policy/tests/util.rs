//! A policy on simulated time, with every effect answered as a driver would: spawns get pids
//! (or fail, when told to), kills and drains are recorded, events are kept in order.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::super::handover::PolicyState;
use super::super::status::PolicyStatus;
use super::super::worker::{Phase, Worker};
use super::super::{
    BackoffConfig, Control, Effect, Generation, Input, KillReason, Load, Policy, PolicyConfig,
    Termination, WallClock, WorkerId,
};
use crate::defaults;
use crate::events::{Event, ProgramId};
use crate::protocol::CriterionKind;
use crate::readiness::Readiness;

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The defaults a master runs with, for `workers` slots (no heartbeat timeout, as by default).
pub(super) fn config(workers: usize) -> PolicyConfig {
    PolicyConfig {
        workers,
        drain_timeout: defaults::DRAIN_TIMEOUT,
        start_timeout: defaults::START_TIMEOUT,
        max_surge: None,
        backoff: BackoffConfig {
            initial: defaults::BACKOFF_INITIAL,
            max: defaults::BACKOFF_MAX,
            reset_after: defaults::BACKOFF_RESET,
        },
        rollout_failures: defaults::ROLLOUT_FAILURE_LIMIT,
        heartbeat_timeout: None,
        unresponsive_grace: secs(2),
        canary: None,
        rollout_settle: Duration::ZERO,
        rollout_timeout: None,
        readiness: Readiness::Listening,
        memory_budget: None,
    }
}

/// One setting changed from [`config`], so that a test names only what it changes:
/// `config(2).max_surge(2).rollout_failures(1)`.
impl PolicyConfig {
    pub(super) fn max_surge(self, max_surge: usize) -> Self {
        Self {
            max_surge: Some(max_surge),
            ..self
        }
    }

    pub(super) fn rollout_failures(self, rollout_failures: u32) -> Self {
        Self {
            rollout_failures,
            ..self
        }
    }

    pub(super) fn heartbeat_timeout(self, timeout: Duration) -> Self {
        Self {
            heartbeat_timeout: Some(timeout),
            ..self
        }
    }

    pub(super) fn drain_timeout(self, drain_timeout: Duration) -> Self {
        Self {
            drain_timeout,
            ..self
        }
    }

    pub(super) fn rollout_settle(self, rollout_settle: Duration) -> Self {
        Self {
            rollout_settle,
            ..self
        }
    }

    pub(super) fn rollout_timeout(self, timeout: Duration) -> Self {
        Self {
            rollout_timeout: Some(timeout),
            ..self
        }
    }

    pub(super) fn readiness(self, readiness: Readiness) -> Self {
        Self { readiness, ..self }
    }

    /// The longest respawn delay; the first and the healthy period stay the defaults.
    pub(super) fn backoff_max(self, max: Duration) -> Self {
        Self {
            backoff: BackoffConfig {
                max,
                ..self.backoff
            },
            ..self
        }
    }
}

/// The executable of a generation, as a driver would report it: one file per generation.
pub(super) fn program_of(generation: Generation) -> ProgramId {
    ProgramId {
        path: "/srv/app/current/bin/app".into(),
        device: 2049,
        inode: 1000 + generation.0,
        modified_ms: 1_700_000_000_000 + generation.0,
    }
}

/// How the harness answers the next spawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SpawnAnswer {
    /// The program could not be executed (or the hook failed).
    Fail,
    /// The process started but its IPC channel could not be set up: killed at once.
    FailWithLeftover,
}

/// A process the harness "started", until its exit is reported.
#[derive(Debug, Clone)]
pub(super) struct Process {
    pub pid: u32,
    pub slot: usize,
    pub generation: Generation,
    pub replaces: Option<WorkerId>,
    pub drained: bool,
    pub killed: Option<KillReason>,
}

/// A policy and the world around it.
pub(super) struct Harness {
    pub policy: Policy,
    pub now: Instant,
    pub t0: Instant,
    next_pid: u32,
    /// How the next spawns are answered; once empty, spawns succeed.
    pub spawn_answers: VecDeque<SpawnAnswer>,
    /// Live processes (spawned, exit not reported yet).
    pub processes: BTreeMap<WorkerId, Process>,
    /// Every effect, with the time it was polled.
    pub log: Vec<(Instant, Effect)>,
    /// Where the effects of the latest call start in `log`.
    pub step_start: usize,
    /// Where `take_events` last stopped.
    seen: usize,
}

impl Harness {
    pub(super) fn new(config: PolicyConfig) -> Self {
        Self::new_at(config, Instant::now())
    }

    /// A policy whose simulated time starts at `t0`: two harnesses started at the same `t0`
    /// log the same instants for the same history.
    pub(super) fn new_at(config: PolicyConfig, t0: Instant) -> Self {
        Self {
            policy: Policy::new(config),
            now: t0,
            t0,
            next_pid: 1000,
            spawn_answers: VecDeque::new(),
            processes: BTreeMap::new(),
            log: Vec::new(),
            step_start: 0,
            seen: 0,
        }
    }

    /// A started policy with `workers` slots and the default settings, every first worker
    /// ready, the events so far taken.
    pub(super) fn ready(workers: usize) -> Self {
        Self::ready_with(config(workers))
    }

    /// A started policy with `config`, every first worker ready, the events so far taken.
    pub(super) fn ready_with(config: PolicyConfig) -> Self {
        let mut h = Self::new(config);
        h.start();
        h.ready_all();
        h.take_events();
        h
    }

    pub(super) fn start(&mut self) {
        self.step_start = self.log.len();
        self.policy.start(self.now);
        self.pump();
    }

    pub(super) fn input(&mut self, input: Input) {
        self.step_start = self.log.len();
        self.policy.handle(self.now, input);
        self.pump();
    }

    pub(super) fn control(&mut self, c: Control) {
        self.step_start = self.log.len();
        self.policy.control(self.now, c);
        self.pump();
    }

    /// A rolling restart, as a `reload --wait` asks it: the generation it started.
    pub(super) fn rolling_restart(&mut self) -> Option<Generation> {
        self.step_start = self.log.len();
        let started = self.policy.rolling_restart(self.now);
        self.pump();
        started
    }

    /// Lets `d` pass, firing the policy's timers at the times they are due, as a driver does.
    pub(super) fn advance(&mut self, d: Duration) {
        self.step_start = self.log.len();
        let until = self.now + d;
        while let Some(t) = self.policy.poll_timeout().filter(|t| *t <= until) {
            assert!(t >= self.now, "a timer due in the past was left unhandled");
            self.now = t;
            self.policy.handle_timeout(self.now);
            self.pump();
        }
        self.now = until;
        self.policy.handle_timeout(self.now);
        self.pump();
    }

    pub(super) fn ready_worker(&mut self, id: WorkerId) {
        self.input(Input::Ready(id));
    }

    /// Every starting worker reports ready (repeated until none is left starting).
    pub(super) fn ready_all(&mut self) {
        loop {
            let starting = self.in_phase(|p| matches!(p, Phase::Starting { .. }));
            if starting.is_empty() {
                return;
            }
            for id in starting {
                self.ready_worker(id);
            }
        }
    }

    /// The workers whose phase matches.
    pub(super) fn in_phase(&self, matches: impl Fn(&Phase) -> bool) -> Vec<WorkerId> {
        self.policy
            .workers
            .iter()
            .filter(|(_, w)| matches(&w.phase))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The process exits with `status`, written as events write it: `exit 1`, `signal 9
    /// (SIGKILL)`.
    pub(super) fn exit(&mut self, id: WorkerId, status: &str) {
        self.processes.remove(&id);
        self.input(Input::Exited {
            id,
            status: termination(status),
        });
    }

    /// Every drained or killed process exits (a well-behaved worker after its drain).
    pub(super) fn exit_leaving(&mut self) {
        let leaving: Vec<(WorkerId, bool)> = self
            .processes
            .iter()
            .filter(|(_, p)| p.drained || p.killed.is_some())
            .map(|(id, p)| (*id, p.killed.is_some()))
            .collect();
        for (id, killed) in leaving {
            self.exit(
                id,
                if killed {
                    "signal 9 (SIGKILL)"
                } else {
                    "exit 0"
                },
            );
        }
    }

    /// The worker asks for its replacement naming no criterion, as an application's own
    /// request does.
    pub(super) fn replace_me(&mut self, id: WorkerId, reason: &str) {
        self.replace_me_for(id, CriterionKind::Unspecified, reason);
    }

    /// The worker asks for its replacement on `criterion`'s behalf.
    pub(super) fn replace_me_for(&mut self, id: WorkerId, criterion: CriterionKind, reason: &str) {
        self.input(Input::ReplaceMe {
            id,
            criterion,
            reason: reason.into(),
        });
    }

    pub(super) fn heartbeat(&mut self, id: WorkerId) {
        self.input(Input::Heartbeat {
            id,
            load: Load {
                rss: 1,
                requests: 1,
                in_flight: 0,
                responses_5xx: 0,
                failures: 0,
                latency: None,
            },
        });
    }

    /// The policy's status, its times in milliseconds since the harness started.
    pub(super) fn status(&self) -> PolicyStatus {
        self.policy.status(
            self.now,
            WallClock {
                instant: self.t0,
                unix_ms: 0,
            },
        )
    }

    /// The slot's serving worker.
    pub(super) fn current(&self, slot: usize) -> WorkerId {
        self.policy.slots[slot].current.expect("slot has a worker")
    }

    /// The replacement starting in the slot.
    pub(super) fn successor(&self, slot: usize) -> Option<WorkerId> {
        self.policy.slots[slot].successor
    }

    /// The slot's serving worker and its pid.
    pub(super) fn serving(&self, slot: usize) -> (WorkerId, u32) {
        let id = self.current(slot);
        (id, self.pid(id))
    }

    /// The replacement starting in the slot (there must be one) and its pid.
    pub(super) fn starting(&self, slot: usize) -> (WorkerId, u32) {
        let id = self.successor(slot).expect("a replacement starting");
        (id, self.pid(id))
    }

    pub(super) fn worker(&self, id: WorkerId) -> &Worker {
        &self.policy.workers[&id]
    }

    pub(super) fn pid(&self, id: WorkerId) -> u32 {
        self.processes[&id].pid
    }

    /// Workers in Ready phase.
    pub(super) fn ready_count(&self) -> usize {
        self.policy
            .workers
            .values()
            .filter(|w| w.is_ready())
            .count()
    }

    /// The events polled since the last call.
    pub(super) fn take_events(&mut self) -> Vec<Event> {
        let events = self.log[self.seen..]
            .iter()
            .filter_map(|(_, e)| match e {
                Effect::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        self.seen = self.log.len();
        events
    }

    /// The effects of the latest call.
    pub(super) fn step_effects(&self) -> impl Iterator<Item = &Effect> {
        self.log[self.step_start..].iter().map(|(_, e)| e)
    }

    /// The master hands its books over to a new one configured with `config`, as an upgrade
    /// does: snapshot, JSON and back, restored on the new master's clock, which reads `now`
    /// at the instant of the snapshot.
    pub(super) fn hand_over(&mut self, config: PolicyConfig, now: Instant) {
        let state = self
            .policy
            .snapshot(self.now)
            .expect("a quiet policy snapshots");
        let state = PolicyState::from_json(&state.to_json()).expect("a state reads back");
        self.policy = Policy::restore(config, state, now).expect("a state restores");
        self.now = now;
        self.pump_effects();
    }

    /// Answers the effects of a call a test made to the policy itself.
    pub(super) fn pump_effects(&mut self) {
        self.step_start = self.log.len();
        self.pump();
    }

    /// Answers the policy's effects until it has none left.
    fn pump(&mut self) {
        while let Some(effect) = self.policy.poll() {
            self.log.push((self.now, effect.clone()));
            match effect {
                Effect::Spawn {
                    id,
                    slot,
                    generation,
                    replaces,
                } => {
                    let pid = self.next_pid;
                    self.next_pid += 1;
                    let answer = match self.spawn_answers.pop_front() {
                        None => Input::Spawned {
                            id,
                            pid,
                            program: program_of(generation),
                        },
                        Some(SpawnAnswer::Fail) => Input::SpawnFailed {
                            id,
                            why: "spawn of /srv/app failed: No such file or directory".into(),
                            leftover: None,
                        },
                        Some(SpawnAnswer::FailWithLeftover) => Input::SpawnFailed {
                            id,
                            why: "IPC channel setup failed: too many open files".into(),
                            leftover: Some(pid),
                        },
                    };
                    let started = !matches!(answer, Input::SpawnFailed { leftover: None, .. });
                    if started {
                        let killed = matches!(answer, Input::SpawnFailed { .. })
                            .then_some(KillReason::IpcSetupFailed);
                        self.processes.insert(
                            id,
                            Process {
                                pid,
                                slot,
                                generation,
                                replaces,
                                drained: false,
                                killed,
                            },
                        );
                    }
                    self.policy.handle(self.now, answer);
                }
                Effect::Drain { id, .. } => {
                    if let Some(p) = self.processes.get_mut(&id) {
                        p.drained = true;
                    }
                }
                Effect::Kill { id, why } => {
                    if let Some(p) = self.processes.get_mut(&id) {
                        p.killed = Some(why);
                    }
                }
                Effect::OpenProgram(_)
                | Effect::ReleaseProgram(_)
                | Effect::Event(_)
                | Effect::StatusChanged
                | Effect::RolloutEnded(_)
                // The tests hand the upgrade over (or refuse it) themselves.
                | Effect::Upgrade { .. }
                | Effect::UpgradeEnded(_) => {}
            }
        }
    }
}

/// `exit 1` or `signal 9 (SIGKILL)` (the name is the reader's: the number is what counts), or
/// `killed by the OOM killer` (as the driver found out).
fn termination(status: &str) -> Termination {
    let number = |s: &str| s.parse().unwrap_or_else(|_| panic!("a status: {status:?}"));
    if status == "killed by the OOM killer" {
        return Termination::OomKilled;
    }
    match status.split_once(' ') {
        Some(("exit", code)) => Termination::Exit(number(code)),
        Some(("signal", rest)) => Termination::Signal(number(rest.split(' ').next().unwrap_or(""))),
        _ => panic!(
            "a status is `exit N`, `signal N (NAME)` or `killed by the OOM killer`: {status:?}"
        ),
    }
}
