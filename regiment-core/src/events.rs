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

use serde::Serialize;
use tokio::sync::broadcast;

/// One thing that happened to the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
        /// Its slot.
        slot: usize,
        /// Its pid.
        pid: u32,
        /// Its generation.
        generation: u64,
        /// The pid it is to replace, for a replacement.
        replaces: Option<u32>,
    },
    /// A worker reported ready and now takes traffic.
    Ready {
        /// Its slot.
        slot: usize,
        /// Its pid.
        pid: u32,
        /// Its generation.
        generation: u64,
    },
    /// A worker asked to be replaced (first request only).
    ReplaceRequested {
        /// Its slot.
        slot: usize,
        /// Its pid.
        pid: u32,
        /// Its generation.
        generation: u64,
        /// The reason it gave.
        reason: String,
    },
    /// A worker was told to drain. The event is emitted when the drain message is sent: the
    /// worker may read it a moment later, so a request it accepts in that moment is normal.
    Draining {
        /// Its slot.
        slot: usize,
        /// Its pid.
        pid: u32,
        /// Its generation.
        generation: u64,
        /// Why: replaced, shutdown, scaled down.
        why: String,
        /// Milliseconds until it is killed.
        deadline_ms: u64,
    },
    /// The master killed a worker with SIGKILL.
    Killed {
        /// Its slot.
        slot: usize,
        /// Its pid.
        pid: u32,
        /// Its generation.
        generation: u64,
        /// `drain deadline`, `start timeout`, `forced stop`, ...
        why: String,
    },
    /// A worker exited when the master expected it (after a drain or a kill).
    Exited {
        /// Its slot.
        slot: usize,
        /// Its pid.
        pid: u32,
        /// Its generation.
        generation: u64,
        /// How: `exit 0`, `signal 9 (SIGKILL)`.
        status: String,
    },
    /// A ready worker exited unasked; it is respawned in its slot after `respawn_in_ms`.
    Crashed {
        /// Its slot.
        slot: usize,
        /// Its pid.
        pid: u32,
        /// Its generation.
        generation: u64,
        /// How it exited.
        status: String,
        /// Backoff before the respawn (0 while stopping: no respawn).
        respawn_in_ms: u64,
    },
    /// A new worker failed before it was ready (exited, timed out, or could not be spawned).
    StartFailed {
        /// Its slot.
        slot: usize,
        /// Its pid, 0 if it never ran.
        pid: u32,
        /// Its generation.
        generation: u64,
        /// What happened.
        why: String,
        /// Backoff before the next try.
        retry_in_ms: u64,
    },
    /// A worker sent something that is not a valid message; it was ignored.
    InvalidMessage {
        /// Its slot.
        slot: usize,
        /// Its pid.
        pid: u32,
        /// Its generation.
        generation: u64,
        /// What was wrong.
        why: String,
    },
    /// A ready worker stopped sending heartbeats and is being replaced.
    Unresponsive {
        /// Its slot.
        slot: usize,
        /// Its pid.
        pid: u32,
        /// Its generation.
        generation: u64,
        /// Milliseconds since it was last heard.
        silent_ms: u64,
    },
    /// A rolling restart to `generation` began.
    RolloutStarted {
        /// The generation being rolled out.
        generation: u64,
    },
    /// Every slot runs `generation`.
    RolloutDone {
        /// The generation rolled out.
        generation: u64,
    },
    /// The new generation kept failing; the workers that were serving stay.
    RolloutAborted {
        /// The generation that failed.
        generation: u64,
        /// Why.
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

/// A receiver of [`Event`]s. Each subscriber gets every event from the time it subscribed; a
/// subscriber that falls more than 1024 events behind skips the oldest ones (with a warning).
#[derive(Debug)]
pub struct EventStream {
    pub(crate) rx: broadcast::Receiver<Event>,
}

impl EventStream {
    /// The next event, or `None` once the supervisor is gone.
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

/// The state of one worker in a [`Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkerState {
    /// Spawned, not ready yet.
    Starting,
    /// Serving.
    Ready,
    /// Told to drain; exits soon.
    Draining,
}

/// One worker in a [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerStatus {
    /// Its slot.
    pub slot: usize,
    /// Its pid.
    pub pid: u32,
    /// Its generation.
    pub generation: u64,
    /// Its state.
    pub state: WorkerState,
    /// Milliseconds since it was spawned.
    pub age_ms: u64,
    /// Resident memory from its last heartbeat, bytes.
    pub rss: u64,
    /// Requests from its last heartbeat.
    pub requests: u64,
    /// Requests in flight at its last heartbeat.
    pub in_flight: u64,
    /// The replacement it asked for, if any.
    pub replace_reason: Option<String>,
}

/// One slot in a [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotStatus {
    /// The slot number.
    pub slot: usize,
    /// Workers replaced or respawned in this slot so far.
    pub restarts: u64,
    /// Why the last one was.
    pub last_restart_reason: Option<String>,
}

/// A snapshot of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The master's pid.
    pub master_pid: u32,
    /// The generation new workers get.
    pub generation: u64,
    /// The number of slots.
    pub workers_wanted: usize,
    /// The generation being rolled out, if a rolling restart is under way.
    pub rollout: Option<u64>,
    /// True once a stop signal was received.
    pub stopping: bool,
    /// Listening addresses.
    pub listeners: Vec<String>,
    /// Every live worker process, in slot order.
    pub workers: Vec<WorkerStatus>,
    /// Every slot.
    pub slots: Vec<SlotStatus>,
}
