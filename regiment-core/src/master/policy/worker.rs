//! One worker process in the books: where it is in its life, and what it said.

use std::borrow::Cow;
use std::fmt;
use std::time::Instant;

use super::ids::Generation;
use super::slot::Pending;
use crate::events::{AbandonedDrain, ProcessMemory, ProgramId, WorkerState};
use crate::protocol::CriterionKind;
use crate::readiness::Readiness;

/// A worker process, from the spawn the policy asked for until its exit was reported.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) slot: usize,
    pub(crate) generation: Generation,
    /// 0 while spawning.
    pub(crate) pid: u32,
    /// The executable it runs, once spawned.
    pub(crate) program: Option<ProgramId>,
    pub(crate) phase: Phase,
    pub(crate) spawned_at: Instant,
    /// What this worker was spawned for, if it replaces another: restored if it fails.
    pub(crate) spawned_for: Option<Pending>,
    /// The replacement this worker asked for (first request only), or the one the heartbeat
    /// timeout asked for it.
    pub(crate) replace_reason: Option<String>,
    /// The criterion this worker named when it asked (unspecified until it does).
    pub(crate) replace_criterion: CriterionKind,
    pub(crate) last_heard: Instant,
    pub(crate) heartbeats: Heartbeats,
    pub(crate) load: Load,
    pub(crate) invalid_messages: u64,
    /// What it said it left when it gave up its drain (first message only).
    pub(crate) abandoned_drain: Option<AbandonedDrain>,
    /// Its private memory at the last reading, once read.
    pub(crate) memory: Option<ProcessMemory>,
    /// Its size as a new worker was taken (its first reading once ready), or it is no new
    /// worker (it was handed over by an upgrade).
    pub(crate) sized: bool,
}

/// Where a worker is in its life. Each phase carries its own deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Asked of the driver, not answered yet: no process, no timer. A spawn that is no longer
    /// wanted before it is answered (an aborted rollout, a stop) is withdrawn, never started.
    Spawning,
    /// Spawned; killed at `deadline` unless ready by then.
    Starting { deadline: Instant },
    /// Serving since `since`.
    Ready { since: Instant },
    /// Told to drain at `since`; killed at `deadline` unless it exits first.
    Draining { since: Instant, deadline: Instant },
    /// SIGKILL sent at `at`; its exit is the master's intent, not a crash.
    Killed { why: KillReason, at: Instant },
}

impl Phase {
    /// The state shown in a status: a killed worker is on its way out.
    pub(crate) fn state(self) -> WorkerState {
        match self {
            Phase::Spawning | Phase::Starting { .. } => WorkerState::Starting,
            Phase::Ready { .. } => WorkerState::Ready,
            Phase::Draining { .. } | Phase::Killed { .. } => WorkerState::Draining,
        }
    }
}

/// Why the master sent SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum KillReason {
    /// Not ready within the start timeout.
    StartTimeout,
    /// Still running at the end of its drain.
    DrainDeadline,
    /// Judged unresponsive (its heartbeats overdue), and still running at the end of the
    /// grace it was given once its replacement served.
    Unresponsive,
    /// The second stop signal.
    ForcedStop,
    /// Spawned, but its IPC channel could not be set up: killed at once by the driver.
    IpcSetupFailed,
}

impl KillReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            KillReason::StartTimeout => "start timeout",
            KillReason::DrainDeadline => "drain deadline",
            KillReason::Unresponsive => "unresponsive",
            KillReason::ForcedStop => "forced stop",
            KillReason::IpcSetupFailed => "IPC channel setup failed",
        }
    }
}

impl KillReason {
    /// What the events say of this kill of a worker under `readiness`. A start timeout under
    /// `manual` also says what the worker had to do: an app that never calls
    /// [`crate::worker::ready`] has every worker killed at the end of its start timeout,
    /// however well it serves, and nothing else would tell its operator why.
    pub(crate) fn explained(self, readiness: Readiness) -> Cow<'static, str> {
        match (self, readiness) {
            (KillReason::StartTimeout, Readiness::Manual) => Cow::Borrowed(
                "start timeout (readiness manual: the worker did not call `worker::ready()`)",
            ),
            _ => Cow::Borrowed(self.as_str()),
        }
    }
}

impl fmt::Display for KillReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the heartbeat timeout judges this worker: only one that sends heartbeats can be
/// judged by their absence, and it is judged once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heartbeats {
    NoneYet,
    Seen,
    /// Judged unresponsive; its replacement was asked for.
    Silent,
}

/// The figures of the last heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Load {
    pub(crate) rss: u64,
    pub(crate) requests: u64,
    pub(crate) in_flight: u64,
    pub(crate) responses_5xx: u64,
    pub(crate) failures: u64,
    /// The p50 and p99 of the requests that finished in the heartbeat's interval; `None` if
    /// none did, or the worker does not say (an earlier build).
    pub(crate) latency: Option<crate::latency::Quantiles>,
}

impl Worker {
    /// A worker whose spawn is asked for at `now`.
    pub(crate) fn new(
        slot: usize,
        generation: Generation,
        spawned_for: Option<Pending>,
        now: Instant,
    ) -> Self {
        Self {
            slot,
            generation,
            pid: 0,
            program: None,
            phase: Phase::Spawning,
            spawned_at: now,
            spawned_for,
            replace_reason: None,
            replace_criterion: CriterionKind::Unspecified,
            last_heard: now,
            heartbeats: Heartbeats::NoneYet,
            load: Load::default(),
            invalid_messages: 0,
            abandoned_drain: None,
            memory: None,
            sized: false,
        }
    }

    pub(crate) fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready { .. })
    }

    /// How long it has not been heard from, once it sends heartbeats (before, its silence
    /// means nothing).
    pub(crate) fn silent_for(&self, now: Instant) -> Option<std::time::Duration> {
        (self.heartbeats != Heartbeats::NoneYet)
            .then(|| now.saturating_duration_since(self.last_heard))
    }

    /// When it became ready, if it is serving.
    pub(crate) fn ready_since(&self) -> Option<Instant> {
        match self.phase {
            Phase::Ready { since } => Some(since),
            _ => None,
        }
    }
}
