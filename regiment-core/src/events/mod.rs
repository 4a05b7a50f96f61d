//! Lifecycle events and status snapshots of a supervisor.
//!
//! Every event is logged as a `tracing` event (target `regiment`, with `slot`, `pid` and
//! `generation` fields) and broadcast to the streams returned by [`crate::Handle::events`].
//!
//! ```no_run
//! # async fn watch(handle: regiment_core::Handle) {
//! let mut events = handle.events();
//! while let Some(event) = events.recv().await {
//!     if let regiment_core::Event::RolloutAborted { generation, why } = &event {
//!         eprintln!("deploy of generation {generation} failed: {why}");
//!     }
//! }
//! # }
//! ```

mod kill_report;
mod rollout;
mod status;
mod upgrade;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub use kill_report::{KillReport, ReportedRequest, StackFrame, ThreadReport};
pub use rollout::{Answers, CanaryVerdict, RolloutOutcome, RolloutRecord};
pub use status::{
    BudgetSource, MemoryBudgetStatus, MemoryLimitStatus, MemoryStatus, ProcessMemory, ProgramId,
    SlotStatus, Status, WorkerState, WorkerStatus,
};
pub use upgrade::{UpgradeOutcome, UpgradeRecord};

/// One thing that happened to the cluster.
///
/// ```
/// use regiment_core::Event;
/// // Events serialize as one JSON object each, ready for a log pipeline.
/// let json = serde_json::to_string(&Event::Scaled { workers: 3 }).unwrap();
/// assert_eq!(json, r#"{"event":"scaled","workers":3}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Event {
    /// The master holds its listeners.
    Listening {
        /// Bound addresses, in fd order.
        addrs: Vec<String>,
    },
    /// A worker process was started.
    Spawned {
        /// The slot it fills, `0..workers` (`REGIMENT_WORKER_ID`); a replacement takes the slot
        /// of the worker it replaces.
        slot: usize,
        /// Process id of the new worker.
        pid: u32,
        /// The rolling restart it belongs to: 1 for the first workers, one more per rollout
        /// (`REGIMENT_GENERATION`).
        generation: u64,
        /// The pid it is to replace, for a replacement.
        replaces: Option<u32>,
        /// The executable it runs.
        program: ProgramId,
    },
    /// A worker reported ready and now takes traffic.
    Ready {
        /// The slot that now serves from it.
        slot: usize,
        /// Process id of the ready worker.
        pid: u32,
        /// A ready worker of the generation being rolled out advances the rollout.
        generation: u64,
    },
    /// A worker asked to be replaced (first request only).
    ReplaceRequested {
        /// The slot a successor will take over.
        slot: usize,
        /// Process id of the worker that asked.
        pid: u32,
        /// The asking worker's; its successor runs the current one.
        generation: u64,
        /// The reason it gave.
        reason: String,
    },
    /// A worker asked to be replaced before it served anything (before it was ready, or with no
    /// request counted by its heartbeats): its replacement waits out its slot's backoff, as
    /// after a failed start. Replaced at once, a worker that asks as soon as it starts (a
    /// `MemoryFootprint` threshold below what the app needs to start) would be replaced as fast
    /// as workers start: a crash loop by another name. It serves meanwhile.
    ReplacementDelayed {
        /// The slot whose replacement waits.
        slot: usize,
        /// Process id of the worker that asked; it keeps serving.
        pid: u32,
        /// The asking worker's.
        generation: u64,
        /// Why the replacement waits, for a person.
        why: String,
        /// Milliseconds before the replacement may start.
        wait_ms: u64,
    },
    /// A worker was told to drain. The event is emitted when the drain message is sent: the
    /// worker may read it a moment later, so a request it accepts in that moment is normal.
    Draining {
        /// The slot the draining worker leaves.
        slot: usize,
        /// Process id, killed with SIGKILL after `deadline_ms`.
        pid: u32,
        /// The draining worker's.
        generation: u64,
        /// Why: replaced, shutdown, scaled down.
        why: String,
        /// Milliseconds until it is killed.
        deadline_ms: u64,
    },
    /// The master killed a worker with SIGKILL.
    Killed {
        /// The slot the killed worker held.
        slot: usize,
        /// Process id, whose process group got SIGKILL.
        pid: u32,
        /// The killed worker's.
        generation: u64,
        /// `drain deadline`, `start timeout`, `forced stop`, ...
        why: String,
    },
    /// A worker exited when the master expected it (after a drain or a kill).
    Exited {
        /// The slot the worker held.
        slot: usize,
        /// Process id of the exited worker, reaped.
        pid: u32,
        /// The exited worker's.
        generation: u64,
        /// How: `exit 0`, `signal 9 (SIGKILL)`, `killed by the OOM killer`.
        status: String,
        /// What it left when it gave up its drain at its own deadline (it told the master
        /// before it exited, whatever status it then exited with); `None` when it drained
        /// fully, or did not say (a worker killed first, or no regiment server).
        #[serde(default)]
        abandoned_drain: Option<AbandonedDrain>,
        /// The kernel's OOM killer killed it (see [`Event::Crashed::oom_killed`]).
        #[serde(default)]
        oom_killed: bool,
    },
    /// A ready worker exited unasked; it is respawned in its slot after `respawn_in_ms`.
    Crashed {
        /// The slot respawned after `respawn_in_ms`.
        slot: usize,
        /// Process id of the crashed worker, reaped.
        pid: u32,
        /// The crashed worker's; the respawn runs the current one.
        generation: u64,
        /// How it exited: `exit 101`, `signal 11 (SIGSEGV)`, `killed by SIGKILL from
        /// outside`, or `killed by the OOM killer`.
        status: String,
        /// Backoff before the respawn (0 while stopping: no respawn).
        respawn_in_ms: u64,
        /// The signal that killed it (`SIGKILL`) when the master did not send it and it is no
        /// signal of a program's own fault (a crash: SIGSEGV, SIGABRT, ...): an operator's
        /// `kill -9`, the kernel's OOM killer. `None` for a crash of the program.
        #[serde(default)]
        killed_from_outside: Option<String>,
        /// The kernel's OOM killer killed it: a SIGKILL the master did not send, while the
        /// OOM kills counted in the master's memory cgroup (`oom_kill` of cgroup v2's
        /// `memory.events`, v1's `memory.oom_control`) went up. `false` where no such count is
        /// kept (no memory cgroup, a v1 kernel before 4.13): such a kill reads as one from
        /// outside.
        #[serde(default)]
        oom_killed: bool,
    },
    /// A new worker failed before it was ready (exited, timed out, or could not be spawned).
    StartFailed {
        /// The slot retried after `retry_in_ms`.
        slot: usize,
        /// Process id of the failed worker, 0 if it never ran.
        pid: u32,
        /// The generation whose start failed: failures of a rollout's generation abort it.
        generation: u64,
        /// What happened.
        why: String,
        /// Backoff before the next try.
        retry_in_ms: u64,
        /// The kernel's OOM killer killed it (see [`Event::Crashed::oom_killed`]).
        #[serde(default)]
        oom_killed: bool,
    },
    /// A worker sent something that is not a valid message; it was ignored.
    InvalidMessage {
        /// The sender's slot.
        slot: usize,
        /// Process id of the sender.
        pid: u32,
        /// The sender's.
        generation: u64,
        /// What was wrong.
        why: String,
    },
    /// A ready worker stopped sending heartbeats and is being replaced.
    Unresponsive {
        /// The slot whose silent worker is replaced.
        slot: usize,
        /// Process id of the silent worker.
        pid: u32,
        /// The silent worker's.
        generation: u64,
        /// Milliseconds since it was last heard.
        silent_ms: u64,
    },
    /// A rolling restart to `generation` began.
    RolloutStarted {
        /// The generation being rolled out.
        generation: u64,
    },
    /// The canary of `generation` served its window no worse than the old generation: the
    /// rollout goes on to every slot.
    CanaryPassed {
        /// The generation rolled out.
        generation: u64,
        /// Both generations' figures.
        why: String,
    },
    /// Every slot runs `generation`.
    RolloutDone {
        /// The generation rolled out.
        generation: u64,
    },
    /// The rollout to `generation` ended before every slot ran it: its new workers kept
    /// failing to start, or crashed soon after they were ready (the workers that were serving
    /// stay), or a newer rolling restart superseded it, or the master is stopping. `why` says
    /// which. Every [`Event::RolloutStarted`] ends in a `RolloutDone` or a `RolloutAborted`.
    RolloutAborted {
        /// The generation that was being rolled out.
        generation: u64,
        /// Which of those ended it, for a person.
        why: String,
    },
    /// The number of workers changed (SIGTTIN / SIGTTOU).
    Scaled {
        /// The new number of workers.
        workers: usize,
    },
    /// The master is stopping; `forced` means workers are killed instead of drained.
    Stopping {
        /// True for the second stop signal.
        forced: bool,
    },
    /// Every worker has exited; the master returns.
    Stopped,
}

/// What a worker left when it gave up its drain at its own deadline ([`Event::Exited`]): its
/// last heartbeat counted the requests as failed.
///
/// ```
/// use regiment_core::Event;
/// // An alert on lost requests, from the event stream.
/// fn lost(event: &Event) -> u64 {
///     match event {
///         Event::Exited { abandoned_drain: Some(left), .. } => left.in_flight,
///         _ => 0,
///     }
/// }
/// assert_eq!(lost(&Event::Stopped), 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AbandonedDrain {
    /// Requests in flight, left unanswered.
    pub in_flight: u64,
    /// Connections still open, cut as it exited.
    pub connections: u64,
}

impl AbandonedDrain {
    /// What a worker said it left.
    pub(crate) fn new(in_flight: u64, connections: u64) -> Self {
        Self {
            in_flight,
            connections,
        }
    }
}

/// `gave up its drain with 1 request in flight (2 connections open)`: how logs and the
/// `regiment` command say it.
impl std::fmt::Display for AbandonedDrain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        write!(
            f,
            "gave up its drain with {} request{} in flight ({} connection{} open)",
            self.in_flight,
            plural(self.in_flight),
            self.connections,
            plural(self.connections)
        )
    }
}

/// A receiver of [`Event`]s. Each subscriber gets every event from the time it subscribed; a
/// subscriber that falls more than 1024 events behind skips the oldest ones (with a warning).
///
/// ```
/// use regiment_core::{Builder, EnvOverrides};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), regiment_core::Error> {
/// let supervisor = Builder::new().env_overrides(EnvOverrides::Ignore).build()?;
/// let mut events = supervisor.handle().events();
/// // A supervisor dropped without running sent nothing, and the stream ends with it.
/// drop(supervisor);
/// assert_eq!(events.recv().await, None);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct EventStream {
    pub(crate) rx: broadcast::Receiver<Event>,
}

impl EventStream {
    /// The next event, or `None` once the supervisor is gone.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), regiment_core::Error> {
    /// let supervisor = Builder::new().env_overrides(EnvOverrides::Ignore).build()?;
    /// let mut events = supervisor.handle().events();
    /// drop(supervisor);
    /// // `None` ends a `while let` loop once the supervisor is gone.
    /// while let Some(event) = events.recv().await {
    ///     println!("{event:?}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            match self.rx.recv().await {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Closed) => return None,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "event subscriber fell behind");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events of a master built before a field was added still read, the field at its
    /// default: a program that supervises the supervisor may read either's.
    #[test]
    fn an_event_without_the_fields_added_since_reads_with_their_defaults() {
        let crashed: Event = serde_json::from_str(
            r#"{"event":"crashed","slot":1,"pid":42,"generation":2,
                "status":"killed by SIGKILL from outside","respawn_in_ms":100}"#,
        )
        .unwrap();
        assert!(matches!(
            crashed,
            Event::Crashed {
                killed_from_outside: None,
                oom_killed: false,
                ..
            }
        ));
        let exited: Event = serde_json::from_str(
            r#"{"event":"exited","slot":0,"pid":43,"generation":1,"status":"exit 0"}"#,
        )
        .unwrap();
        assert!(matches!(
            exited,
            Event::Exited {
                abandoned_drain: None,
                oom_killed: false,
                ..
            }
        ));
        let failed: Event = serde_json::from_str(
            r#"{"event":"start-failed","slot":0,"pid":44,"generation":1,
                "why":"exited before ready: exit 1","retry_in_ms":100}"#,
        )
        .unwrap();
        assert!(matches!(
            failed,
            Event::StartFailed {
                oom_killed: false,
                ..
            }
        ));
    }
}
