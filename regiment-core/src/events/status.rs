//! Status snapshots: the cluster, its workers and slots, and the program each worker runs.

use serde::{Deserialize, Serialize};

use super::rollout::RolloutRecord;

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
    /// The median time of the requests it finished in the interval of its last heartbeat
    /// (`heartbeat_interval`), in microseconds, from the request's arrival to the end of its
    /// response body. An estimate: workers count requests in buckets that double from 128 µs
    /// to 16.8 s, and the figure is interpolated within its bucket. `None` when no request
    /// finished in that interval, or the worker (of an earlier build) does not say.
    #[serde(default)]
    pub latency_p50_us: Option<u64>,
    /// The 99th percentile, as [`WorkerStatus::latency_p50_us`]. A request slower than the last
    /// bucket (16.8 s) counts as 16.8 s.
    #[serde(default)]
    pub latency_p99_us: Option<u64>,
    /// Milliseconds since the master last heard from it (a heartbeat or another message), as of
    /// this snapshot; `None` until its first heartbeat (a worker that sends none is not judged
    /// by its silence). A ready worker silent for too long is not counted ready by `/readyz`.
    #[serde(default)]
    pub silent_ms: Option<u64>,
    /// The replacement it asked for, if any.
    pub replace_reason: Option<String>,
    /// The executable it runs (unknown until it is spawned).
    pub program: Option<ProgramId>,
    /// Its private memory at the master's last reading; `None` until it was read (or where
    /// `/proc/PID/smaps_rollup` cannot be read).
    #[serde(default)]
    pub memory: Option<ProcessMemory>,
}

/// The memory one process of the regiment holds, as the master reads it from
/// `/proc/PID/smaps_rollup`, in bytes.
///
/// ```
/// use regiment_core::Status;
/// // The worker a memory budget replaces first: the one with the most private memory.
/// fn largest(status: &Status) -> Option<usize> {
///     let private = |w: &&regiment_core::events::WorkerStatus| w.memory.map_or(0, |m| m.uss);
///     status.workers.iter().max_by_key(private).map(|w| w.slot)
/// }
/// assert_eq!(largest(&Status::default()), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProcessMemory {
    /// Proportional set size: its resident pages, each shared page divided among the processes
    /// that map it. The sum over the regiment counts each page once: what the budget sums.
    pub pss: u64,
    /// Unique set size: the pages no other process maps, which its exit gives back. What the
    /// budget ranks workers by, and sizes a new worker by.
    pub uss: u64,
}

/// The regiment's memory in a [`Status`]: the budget, the limit it is taken from, and the sum
/// in use.
///
/// ```
/// use regiment_core::Status;
/// // How much of its budget the regiment uses, if it has one.
/// fn used(status: &Status) -> Option<f64> {
///     let m = &status.memory;
///     m.budget.map(|b| m.total as f64 / b.bytes as f64)
/// }
/// assert_eq!(used(&Status::default()), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MemoryStatus {
    /// The budget the regiment is kept under, if one is configured
    /// ([`crate::Builder::memory_budget`]).
    #[serde(default)]
    pub budget: Option<MemoryBudgetStatus>,
    /// The memory limit that applies to the master: its cgroup's, else the machine's.
    #[serde(default)]
    pub limit: Option<MemoryLimitStatus>,
    /// The sum of the master's and every worker's PSS at the last reading, bytes; 0 before the
    /// first.
    #[serde(default)]
    pub total: u64,
    /// The master's own memory at the last reading.
    #[serde(default)]
    pub master: Option<ProcessMemory>,
}

/// A budget in a [`MemoryStatus`]: its size, and how it was given.
///
/// ```
/// use regiment_core::events::BudgetSource;
/// assert_eq!(serde_json::to_string(&BudgetSource::Fixed).unwrap(), r#"{"kind":"fixed"}"#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MemoryBudgetStatus {
    /// The budget, bytes.
    pub bytes: u64,
    /// A number given, or a share of the limit.
    pub source: BudgetSource,
}

/// How a memory budget was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum BudgetSource {
    /// A number of bytes (`MemoryBudget::mb(1500)`, `REGIMENT_MEMORY_BUDGET=1500MB`).
    Fixed,
    /// This share of the limit (`MemoryBudget::percent_of_limit(80)`,
    /// `REGIMENT_MEMORY_BUDGET=80%`).
    PercentOfLimit {
        /// 1 to 100.
        percent: u8,
    },
}

/// The memory limit in a [`MemoryStatus`], read once when the master was built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MemoryLimitStatus {
    /// The limit, bytes.
    pub bytes: u64,
    /// Where it was read, the cgroup named by its path as the master sees it:
    /// `memory.max of /sys/fs/cgroup/kubepods.slice` (cgroup v2; `memory.high of ...` when that
    /// is lower), `the cgroup v1 memory limit of /sys/fs/cgroup/memory`, `the machine's memory`
    /// (no cgroup limits it below that).
    pub source: String,
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

/// A snapshot of the cluster.
///
/// ```
/// use regiment_core::{Builder, EnvOverrides};
/// let supervisor = Builder::new().workers(2).env_overrides(EnvOverrides::Ignore).build()?;
/// let status = supervisor.handle().status();
/// // Known before `run`: this process is the master, of generation 1, with 2 slots to fill.
/// assert_eq!(status.master_pid, std::process::id());
/// // The file it runs, and when it was built.
/// let exe = std::env::current_exe().unwrap().display().to_string();
/// assert_eq!(status.master_program.map(|p| p.path), Some(exe));
/// assert!(status.master_started_at_ms > 0);
/// assert_eq!((status.generation, status.good_generation, status.workers_wanted), (1, 1, 2));
/// assert!(status.workers.is_empty() && status.rollout.is_none() && status.last_rollout.is_none());
/// # Ok::<(), regiment_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Status {
    /// The master's pid.
    pub master_pid: u32,
    /// The file the master runs: the image the kernel executes (its device, inode and
    /// modification time even after a deploy replaced the file at its path), and the path it was
    /// started from. Read once when the master was built; `None` where it cannot be read.
    #[serde(default)]
    pub master_program: Option<ProgramId>,
    /// When the master was built (before `run`), in milliseconds since the Unix epoch; 0 from a
    /// master of an earlier build, which did not say.
    #[serde(default)]
    pub master_started_at_ms: u64,
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
    /// The last upgrade of the master in place (`regiment upgrade`), under way or ended, and
    /// how it went; `None` until one begins. Carried from master to master, as is
    /// `master_started_at_ms`: the start of the service, not of the program running now.
    #[serde(default)]
    pub last_upgrade: Option<super::UpgradeRecord>,
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
    /// The memory budget, the limit and the sum in use.
    #[serde(default)]
    pub memory: MemoryStatus,
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
