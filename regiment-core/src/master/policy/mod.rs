//! The supervisor's policy: every lifecycle rule, as a plain state machine.
//!
//! [`Policy`] owns the books (slots, workers, the replacement queue, the rollouts, the stop) and
//! nothing else. It is told what happened, with the time it happened at ([`Policy::handle`],
//! [`Policy::handle_timeout`]), and commands are its methods, which answer what their caller
//! waits for ([`Policy::rolling_restart`]: the generation started). It answers with effects for
//! its driver to carry out ([`Policy::poll`]: spawn, drain, kill, open or release a program, an
//! event to observe, a new status), the time it next needs to be woken
//! ([`Policy::poll_timeout`]), its part of the status ([`Policy::status`]) and its counters for
//! the metrics ([`Policy::stats`]), as quinn-proto's `Connection` does. It reads no clock,
//! spawns nothing and signals nothing, so every rule is tested on simulated time, and a seeded
//! simulation checks the rules over random histories (`tests/`). The driver (`super::driver`)
//! owns the processes, channels, signals, program files and the clock.
//!
//! The rules:
//! 1. an old worker is told to drain only after its replacement reported ready (a stop, a
//!    scale-down, and a memory budget with no room for both aside: rule 9);
//! 2. a replacement that is not ready within the start timeout, or exits before ready, is
//!    killed; the old worker keeps serving; the retry backs off. A rollout whose new workers keep
//!    failing (or crash soon after ready) is aborted, and a later rollout can still run;
//! 3. at most `max_surge` replacements start at once; further requests queue, one per slot;
//! 4. a draining worker is killed at its deadline;
//! 5. a crashed worker is respawned in its slot with exponential backoff that starts over after
//!    a healthy period; so is a worker replaced that asked before it served anything;
//! 6. commands: rolling restart, graceful then forced stop, one worker more or fewer, replace a
//!    slot;
//! 7. a worker that stops sending heartbeats is replaced;
//! 8. the policy is done only once every worker it spawned has exited;
//! 9. under a memory budget, the largest worker is replaced when the regiment's memory heads
//!    over it, one at a time, and a replacement (a rollout's aside) starts beside its old
//!    worker only if the budget has room for one more; else the old one drains first
//!    (`memory`).
//!
//! ```ignore
//! // The driver's loop, in short (see `super::driver`).
//! let mut policy = Policy::new(config);
//! policy.start(Instant::now());
//! loop {
//!     while let Some(effect) = policy.poll() { carry_out(effect) }
//!     if policy.is_stopped() { break }
//!     let input = next_input_or(policy.poll_timeout()).await;
//!     policy.handle(Instant::now(), input);
//! }
//! ```

// Pure: no clock, environment, task, process or file call (regiment-core/clippy.toml lists
// them); CI fails on one.
#![deny(clippy::disallowed_methods)]

mod backoff;
mod commands;
mod exits;
mod handover;
mod ids;
mod inputs;
mod lifecycle;
mod memory;
mod replacement;
mod rollout;
mod slot;
mod stats;
mod status;
pub(super) mod termination;
pub(super) mod thinning;
mod timers;
mod unserved;
#[cfg_attr(not(test), allow(dead_code))]
mod upgrade;
mod wall_clock;
mod worker;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use backoff::Backoff;
pub(crate) use backoff::BackoffConfig;
pub(crate) use handover::PolicyState;
pub(crate) use ids::{Generation, WorkerId};
pub(crate) use memory::MemoryReading;
use rollout::Rollouts;
pub(crate) use rollout::{CanaryConfig, RolloutLog};
use slot::Slot;
pub(crate) use stats::{REPLACEMENT_LABELS, Stats};
// The metrics' tests count replacements as the policy does.
#[cfg(test)]
pub(crate) use slot::{Cause, Pending};
pub(crate) use termination::Termination;
pub(crate) use upgrade::UpgradeLog;
#[cfg(test)]
pub(crate) use upgrade::UpgradeOutcome;
use upgrade::Upgrades;
pub(crate) use wall_clock::WallClock;
use wall_clock::millis;
use worker::Worker;
pub(crate) use worker::{KillReason, Load};

use crate::events::{AbandonedDrain, Event, ProgramId};
use crate::protocol::CriterionKind;
use crate::readiness::Readiness;

/// The options the policy decides by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PolicyConfig {
    pub workers: usize,
    pub drain_timeout: Duration,
    pub start_timeout: Duration,
    /// `None`: a quarter of the workers, at least 1.
    pub max_surge: Option<usize>,
    pub backoff: BackoffConfig,
    pub rollout_failures: u32,
    pub heartbeat_timeout: Option<Duration>,
    /// A worker judged unresponsive is killed this long after its drain began (its drain
    /// deadline, when shorter than the drain timeout).
    pub unresponsive_grace: Duration,
    /// A rollout starts with a canary, judged before the other workers are replaced.
    pub canary: Option<CanaryConfig>,
    /// How long the last worker of a rollout must serve before the rollout completes.
    pub rollout_settle: Duration,
    /// How long a rollout may take before it is aborted; `None`: derived, see
    /// [`PolicyConfig::rollout_timeout`].
    pub rollout_timeout: Option<Duration>,
    /// When workers count as ready: what a start timeout tells its worker had to do.
    pub readiness: Readiness,
    /// The sum of private memory (PSS, bytes) the master and its workers are kept under, if
    /// any: see `memory`.
    pub memory_budget: Option<u64>,
}

impl PolicyConfig {
    /// `max_surge`, or 25 % of `workers`, at least 1.
    pub(crate) fn surge(&self, workers: usize) -> usize {
        self.max_surge.unwrap_or((workers / 4).max(1))
    }

    /// The time a rollout over `workers` slots is given: the one configured, or enough for a
    /// healthy rollout whose every worker is as slow to start as the start timeout allows.
    /// Replacements go `surge` at a time, so there are `workers / surge` waves (rounded up; a
    /// canary's workers are a wave of their own, then the others), each waiting at most a start
    /// timeout; as many start timeouts again as the failure limit (failed starts that do not
    /// abort are retried); the longest backoff (a slot may still back off from an earlier
    /// failure); the canary's window; the settle time. With the defaults and 8 workers:
    /// (4 + 3) × 30 s + 30 s + 5 s = 4 min 5 s.
    pub(crate) fn time_allowed_for_rollout(&self, workers: usize) -> Duration {
        self.rollout_timeout.unwrap_or_else(|| {
            let surge = self.surge(workers).max(1);
            let waves = match self.canary {
                Some(c) if c.workers < workers => {
                    c.workers.div_ceil(surge) + (workers - c.workers).div_ceil(surge)
                }
                _ => workers.div_ceil(surge),
            };
            let starts = u32::try_from(waves)
                .unwrap_or(u32::MAX)
                .saturating_add(self.rollout_failures);
            let window = self.canary.map_or(Duration::ZERO, |c| c.window);
            self.start_timeout
                .saturating_mul(starts)
                .saturating_add(self.backoff.max)
                .saturating_add(window)
                .saturating_add(self.rollout_settle)
        })
    }
}

/// A command, from a signal or a [`crate::Handle`]: [`Policy::control`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Control {
    RollingRestart,
    /// Graceful; a second one while stopping gracefully forces the stop.
    Stop,
    /// Kills every worker at once. Signals and handles force a stop with a second `Stop`; the
    /// tests send this one directly.
    #[cfg_attr(not(test), allow(dead_code))]
    ForcedStop,
    ScaleUp,
    ScaleDown,
    /// Adds or removes slots until there are this many (at least one).
    ScaleTo(usize),
    Replace {
        slot: usize,
        reason: String,
    },
}

/// What the driver tells the policy happened ([`Policy::handle`]); commands are methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// The spawn asked for by [`Effect::Spawn`] started process `pid`, running `program`.
    Spawned {
        id: WorkerId,
        pid: u32,
        program: ProgramId,
    },
    /// The spawn asked for could not be made. `leftover` is the pid of a process that was
    /// started anyway and killed at once (its IPC channel could not be set up): it stays in
    /// the books until its exit is reported.
    SpawnFailed {
        id: WorkerId,
        why: String,
        leftover: Option<u32>,
    },
    Ready(WorkerId),
    Heartbeat {
        id: WorkerId,
        load: Load,
    },
    ReplaceMe {
        id: WorkerId,
        criterion: CriterionKind,
        reason: String,
    },
    /// The worker gave up its drain, leaving this much open.
    DrainAbandoned {
        id: WorkerId,
        left: AbandonedDrain,
    },
    InvalidMessage {
        id: WorkerId,
        why: String,
    },
    /// The process exited (reaped).
    Exited {
        id: WorkerId,
        status: Termination,
    },
    /// The driver read the private memory of the master and of the workers.
    Memory(MemoryReading),
}

/// What the policy asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Start a worker process; answer with [`Input::Spawned`] or [`Input::SpawnFailed`].
    Spawn {
        id: WorkerId,
        slot: usize,
        generation: Generation,
        /// The worker it is to replace, for a successor.
        replaces: Option<WorkerId>,
    },
    /// Send the worker its drain message; it is killed at `kill_at` (the drain timeout after
    /// the drain was decided), which the message tells as the time left when it is written.
    Drain { id: WorkerId, kill_at: Instant },
    /// SIGKILL the worker's process group.
    Kill { id: WorkerId, why: KillReason },
    /// Open the program the configured path holds now, as the one workers of `generation` run
    /// (its rollout starts); it comes before every spawn of that generation. A program that
    /// cannot be opened fails those spawns ([`Input::SpawnFailed`]), each trying again. (The
    /// first generation's is opened by the driver before the policy starts.)
    OpenProgram(Generation),
    /// No worker of `generation` spawns any more: close its program (its rollout ended other
    /// than done, or a later one completed).
    ReleaseProgram(Generation),
    /// An observation: log, broadcast, tell the service manager.
    Event(Event),
    /// The status snapshot changed: publish [`Policy::status`].
    StatusChanged,
    /// A rollout ended (right after its `RolloutDone` or `RolloutAborted` event): its record,
    /// for whoever waits for its outcome.
    RolloutEnded(RolloutLog),
    /// Hand upgrade `number` over to the new binary ([`Policy::begin_upgrade`]): check it,
    /// take [`Policy::snapshot`], execute it; or, if that cannot be done, tell
    /// [`Policy::upgrade_refused`].
    #[cfg_attr(not(test), allow(dead_code))] // nothing begins an upgrade yet
    Upgrade { number: u64 },
    /// An upgrade ended: its record, for whoever waits for its outcome.
    UpgradeEnded(UpgradeLog),
}

/// Whether and how the master is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopping {
    Graceful,
    Forced,
    /// Every worker has exited: nothing is left to do.
    Done,
}

/// The books of a master and every rule it applies. See the module docs.
#[derive(Debug)]
pub(crate) struct Policy {
    config: PolicyConfig,
    workers: BTreeMap<WorkerId, Worker>,
    slots: Vec<Slot>,
    /// Slots with a pending replacement, in the order asked; each slot at most once.
    queue: VecDeque<usize>,
    next_id: u64,
    /// The good generation, the rollout under way, the last one's record.
    rollouts: Rollouts,
    /// The upgrade under way, the last one's record.
    upgrades: Upgrades,
    stopping: Option<Stopping>,
    effects: VecDeque<Effect>,
    status_changed: bool,
    stats: Stats,
    /// The last reading of the regiment's memory, and the budget rule's books.
    memory: memory::MemoryBooks,
}

impl Policy {
    /// A policy with `config.workers` empty slots; [`Policy::start`] fills them.
    pub(crate) fn new(config: PolicyConfig) -> Self {
        let slots = (0..config.workers)
            .map(|_| Slot::new(Backoff::new(config.backoff)))
            .collect();
        Self {
            config,
            workers: BTreeMap::new(),
            slots,
            queue: VecDeque::new(),
            next_id: 1,
            rollouts: Rollouts::new(),
            upgrades: Upgrades::default(),
            stopping: None,
            effects: VecDeque::new(),
            status_changed: true,
            stats: Stats::default(),
            memory: memory::MemoryBooks::default(),
        }
    }

    /// Spawns the first generation, one worker per slot.
    pub(crate) fn start(&mut self, now: Instant) {
        self.settle(now);
    }

    /// Applies what happened at `now`, then every timer due by `now`.
    pub(crate) fn handle(&mut self, now: Instant, input: Input) {
        self.status_changed = true;
        match input {
            Input::Spawned { id, pid, program } => self.on_spawned(id, pid, program, now),
            Input::SpawnFailed { id, why, leftover } => {
                self.on_spawn_failed(id, why, leftover, now)
            }
            Input::Ready(id) => self.on_ready(id, now),
            Input::Heartbeat { id, load } => self.on_heartbeat(id, load, now),
            Input::ReplaceMe {
                id,
                criterion,
                reason,
            } => self.on_replace_me(id, criterion, reason, now),
            Input::DrainAbandoned { id, left } => self.on_drain_abandoned(id, left, now),
            Input::InvalidMessage { id, why } => self.on_invalid_message(id, why),
            Input::Exited { id, status } => self.on_exit(id, status, now),
            Input::Memory(reading) => self.on_memory(reading),
        }
        self.settle(now);
    }

    /// Applies every timer due by `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        // Ages and phases move with time: the snapshot is refreshed at every tick.
        self.status_changed = true;
        self.settle(now);
    }

    /// The next effect to carry out, in the order the policy decided them.
    pub(crate) fn poll(&mut self) -> Option<Effect> {
        if let Some(e) = self.effects.pop_front() {
            return Some(e);
        }
        if std::mem::take(&mut self.status_changed) {
            return Some(Effect::StatusChanged);
        }
        None
    }

    /// When [`Policy::handle_timeout`] must next be called, if ever (no timer is due now
    /// without having been handled).
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timers().map(|(at, _)| at).min()
    }

    /// What it counted so far, for the metrics.
    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    /// How long a new worker has to be ready: the bound of an upgrade's preflight too.
    pub(crate) fn start_timeout(&self) -> Duration {
        self.config.start_timeout
    }

    /// Stopped, and every worker it spawned has exited.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopping == Some(Stopping::Done)
    }

    /// Workers wanted: one per slot.
    pub(crate) fn slots_wanted(&self) -> usize {
        self.slots.len()
    }

    /// After every input: the timers due, what may start now, whether a rollout is done, and
    /// whether the stop is complete.
    fn settle(&mut self, now: Instant) {
        self.fire_timers(now);
        self.advance_canary(now);
        self.pump(now);
        self.check_rollout_done(now);
        // A rollout aborted at its deadline may have drained the first worker of an empty slot.
        self.pump(now);
        if matches!(self.stopping, Some(Stopping::Graceful | Stopping::Forced))
            && self.workers.is_empty()
        {
            self.stopping = Some(Stopping::Done);
            self.emit(Event::Stopped);
        }
    }

    fn emit(&mut self, e: Event) {
        self.effects.push_back(Effect::Event(e));
    }
}
