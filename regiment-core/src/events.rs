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

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

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
        /// How: `exit 0`, `signal 9 (SIGKILL)`.
        status: String,
        /// What it left when it gave up its drain at its own deadline (it told the master
        /// before it exited, whatever status it then exited with); `None` when it drained
        /// fully, or did not say (a worker killed first, or no regiment server).
        #[serde(default)]
        abandoned_drain: Option<AbandonedDrain>,
    },
    /// A ready worker exited unasked; it is respawned in its slot after `respawn_in_ms`.
    Crashed {
        /// The slot respawned after `respawn_in_ms`.
        slot: usize,
        /// Process id of the crashed worker, reaped.
        pid: u32,
        /// The crashed worker's; the respawn runs the current one.
        generation: u64,
        /// How it exited: `exit 101`, `signal 11 (SIGSEGV)`, or `killed by SIGKILL from
        /// outside`.
        status: String,
        /// Backoff before the respawn (0 while stopping: no respawn).
        respawn_in_ms: u64,
        /// The signal that killed it (`SIGKILL`) when the master did not send it and it is no
        /// signal of a program's own fault (a crash: SIGSEGV, SIGABRT, ...): an operator's
        /// `kill -9`, the kernel's OOM killer. `None` for a crash of the program.
        #[serde(default)]
        killed_from_outside: Option<String>,
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

/// The state of one worker in a [`Status`].
///
/// ```
/// use regiment_core::events::WorkerState;
/// // Only `Ready` workers take new connections.
/// let serving = |s: WorkerState| s == WorkerState::Ready;
/// assert!(serving(WorkerState::Ready) && !serving(WorkerState::Draining));
/// assert_eq!(serde_json::to_string(&WorkerState::Starting).unwrap(), r#""starting""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkerState {
    /// Spawned, not ready yet.
    Starting,
    /// Serving.
    Ready,
    /// Told to drain; exits soon.
    Draining,
}

/// Which executable a worker runs: its path, and the file found there when the generation was
/// rolled out (device, inode and modification time), so that a deploy that replaced the file at
/// the same path shows as a different program.
///
/// ```
/// use regiment_core::Status;
/// // Workers of one generation run one file, even if the path now holds another.
/// fn programs(status: &Status) -> Vec<String> {
///     status.workers.iter().filter_map(|w| w.program.as_ref()).map(|p| p.to_string()).collect()
/// }
/// assert!(programs(&Status::default()).is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProgramId {
    /// The path it was opened at.
    pub path: String,
    /// `st_dev` of the file.
    pub device: u64,
    /// `st_ino` of the file.
    pub inode: u64,
    /// Modification time of the file, in milliseconds since the Unix epoch.
    pub modified_ms: u64,
}

/// For a person: the path and when the file was modified, in UTC
/// (`/srv/app/bin/hello (modified 2026-12-07T08:26:47Z)`). Device and inode are in the fields
/// (and the JSON), for scripts.
impl std::fmt::Display for ProgramId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let modified = std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.modified_ms);
        write!(
            f,
            "{} (modified {})",
            self.path,
            humantime::format_rfc3339_seconds(modified)
        )
    }
}

/// One worker in a [`Status`].
///
/// ```
/// use regiment_core::{Status, events::WorkerStatus};
/// // The worker to look at first when memory runs short.
/// fn heaviest(status: &Status) -> Option<&WorkerStatus> {
///     status.workers.iter().max_by_key(|w| w.rss)
/// }
/// assert!(heaviest(&Status::default()).is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkerStatus {
    /// `0..workers`: the place it fills, which its replacement takes over.
    pub slot: usize,
    /// Process id.
    pub pid: u32,
    /// 1 for the first workers, one more per rolling restart: which build it runs.
    pub generation: u64,
    /// Starting, ready (taking connections) or draining.
    pub state: WorkerState,
    /// Milliseconds since it was spawned.
    pub age_ms: u64,
    /// Resident memory from its last heartbeat, bytes.
    pub rss: u64,
    /// Requests from its last heartbeat.
    pub requests: u64,
    /// Requests in flight at its last heartbeat.
    pub in_flight: u64,
    /// Responses with a 5xx status, from its last heartbeat.
    pub responses_5xx: u64,
    /// Requests that ended without a complete response (the handler panicked, the service or
    /// the response body failed, the worker gave up its drain with them in flight), from its
    /// last heartbeat.
    pub failures: u64,
    /// Milliseconds since the master last heard from it (a heartbeat or another message), as of
    /// this snapshot; `None` until its first heartbeat (a worker that sends none is not judged
    /// by its silence). A ready worker silent for too long is not counted ready by `/readyz`.
    #[serde(default)]
    pub silent_ms: Option<u64>,
    /// The replacement it asked for, if any.
    pub replace_reason: Option<String>,
    /// The executable it runs (unknown until it is spawned).
    pub program: Option<ProgramId>,
}

/// One slot in a [`Status`].
///
/// ```
/// use regiment_core::{Builder, EnvOverrides};
/// let supervisor = Builder::new().workers(2).env_overrides(EnvOverrides::Ignore).build()?;
/// let slots = supervisor.handle().status().slots;
/// // Every slot exists from the start; restarts count from there.
/// assert_eq!(slots.len(), 2);
/// assert!(slots.iter().all(|s| s.restarts == 0 && s.last_restart_reason.is_none()));
/// # Ok::<(), regiment_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SlotStatus {
    /// `0..workers`, as in [`WorkerStatus::slot`].
    pub slot: usize,
    /// Workers replaced or respawned in this slot so far.
    pub restarts: u64,
    /// Why the last one was.
    pub last_restart_reason: Option<String>,
}

/// A rolling restart: what it deployed, when, and how it ended.
///
/// ```no_run
/// # async fn deploy(handle: regiment_core::Handle) {
/// use regiment_core::events::RolloutOutcome;
/// // The last line of a deploy script: start the rollout and wait for its outcome.
/// match handle.rolling_restart_and_wait().await {
///     Some(r) if r.outcome == RolloutOutcome::Done => println!("generation {} is live", r.generation),
///     Some(r) => eprintln!("deploy refused ({:?}): {}", r.outcome, r.why.unwrap_or_default()),
///     None => eprintln!("the master is stopping: no rollout"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RolloutRecord {
    /// The generation rolled out.
    pub generation: u64,
    /// Under way, or how it ended.
    pub outcome: RolloutOutcome,
    /// Why it was aborted or superseded.
    pub why: Option<String>,
    /// Workers of this generation that took a slot.
    pub replaced: u64,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// When it ended, in milliseconds since the Unix epoch.
    pub ended_at_ms: Option<u64>,
    /// How its canary was judged, once it was (see [`crate::Canary`]).
    #[serde(default)]
    pub canary: Option<CanaryVerdict>,
}

/// How a canary was judged: what its workers answered over the window, beside what the good
/// generation's answered over the same window.
///
/// ```
/// use regiment_core::events::{Answers, CanaryVerdict};
/// // A build whose handlers panic answers nothing: its requests failed without a 5xx.
/// let refused = CanaryVerdict {
///     canary: Answers { requests: 1000, responses_5xx: 0, failures: 961 },
///     good: Answers { requests: 2000, responses_5xx: 2, failures: 0 },
///     passed: false,
/// };
/// assert_eq!(refused.canary.failed(), 961);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryVerdict {
    /// The canary's workers.
    pub canary: Answers,
    /// The good generation's workers.
    pub good: Answers,
    /// Whether the rollout went on.
    pub passed: bool,
}

/// Requests answered over a window, and those that failed: answered with a 5xx status, or not
/// answered at all (the handler panicked, the service or the response body failed, the worker
/// gave up its drain with them in flight).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answers {
    /// Requests received.
    pub requests: u64,
    /// Answered with a 5xx status.
    pub responses_5xx: u64,
    /// Ended without a complete response.
    pub failures: u64,
}

impl Answers {
    /// Requests that failed, either way (never more than the requests).
    pub fn failed(&self) -> u64 {
        self.responses_5xx
            .saturating_add(self.failures)
            .min(self.requests)
    }
}

/// How a rolling restart ended, or that it has not.
///
/// ```
/// use regiment_core::events::RolloutOutcome;
/// // Only `Done` means the new generation serves in every slot.
/// assert_eq!(serde_json::to_string(&RolloutOutcome::Superseded).unwrap(), r#""superseded""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RolloutOutcome {
    /// Still replacing workers.
    InProgress,
    /// Every slot ran the new generation to ready and settled: its program is now the good
    /// one.
    Done,
    /// Its workers kept failing, its canary was refused, its `rollout_timeout` passed, or the
    /// master is stopping: the workers not yet replaced stay, and new workers run the good
    /// generation's program.
    Aborted,
    /// A newer rolling restart took over.
    Superseded,
}

/// A snapshot of the cluster.
///
/// ```
/// use regiment_core::{Builder, EnvOverrides};
/// let supervisor = Builder::new().workers(2).env_overrides(EnvOverrides::Ignore).build()?;
/// let status = supervisor.handle().status();
/// // Known before `run`: this process is the master, of generation 1, with 2 slots to fill.
/// assert_eq!(status.master_pid, std::process::id());
/// assert_eq!((status.generation, status.good_generation, status.workers_wanted), (1, 1, 2));
/// assert!(status.workers.is_empty() && status.rollout.is_none() && status.last_rollout.is_none());
/// # Ok::<(), regiment_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Status {
    /// The master's pid.
    pub master_pid: u32,
    /// The generation new workers get: the one being rolled out, else the good one.
    pub generation: u64,
    /// The last generation whose rollout completed (1 until one does): after an aborted
    /// rollout, every new worker runs this generation's program.
    pub good_generation: u64,
    /// The number of slots.
    pub workers_wanted: usize,
    /// The generation being rolled out, if a rolling restart is under way.
    pub rollout: Option<u64>,
    /// The last rolling restart, under way or ended, and how it ended.
    pub last_rollout: Option<RolloutRecord>,
    /// True once a stop signal was received.
    pub stopping: bool,
    /// Listening addresses.
    pub listeners: Vec<String>,
    /// The admin listener's address, the port actually bound (`127.0.0.1:9100`,
    /// `unix:/run/app-admin.sock`), if [`crate::Builder::admin_bind`] configured one.
    pub admin: Option<String>,
    /// Every live worker process, in slot order.
    pub workers: Vec<WorkerStatus>,
    /// Every slot.
    pub slots: Vec<SlotStatus>,
}

#[cfg(test)]
mod tests {
    use super::ProgramId;

    /// A person reads a file name and a date; scripts read the numbers from the JSON.
    #[test]
    fn a_program_reads_as_its_path_and_when_it_was_modified() {
        let program = ProgramId {
            path: "/srv/app/bin/hello".into(),
            device: 65024,
            inode: 5474756,
            modified_ms: 1_796_632_007_081,
        };
        assert_eq!(
            program.to_string(),
            "/srv/app/bin/hello (modified 2026-12-07T08:26:47Z)"
        );
        let json = serde_json::to_value(&program).unwrap();
        assert_eq!(
            (&json["device"], &json["inode"], &json["modified_ms"]),
            (&65024.into(), &5474756.into(), &1_796_632_007_081u64.into())
        );
    }
}
