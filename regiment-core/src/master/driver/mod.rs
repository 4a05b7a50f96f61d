//! The driver: carries out what the policy decides, and tells it what happened.
//!
//! It owns everything the policy must not touch: the child processes (reaped here only, so a
//! pid is never reused while the books hold it), the IPC channels, the signals, the clock, the
//! event stream and the status snapshot. One task runs it, so no two inputs ever race.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::kill_reports::KillReports;
use super::metrics::Metrics;
use super::policy::{
    Control, Effect, Generation, Input, KillReason, Load, Policy, PolicyConfig, Termination,
    WallClock, WorkerId,
};
use crate::config::SpawnSettings;
use crate::error::{Error, Result};
use crate::events::{AbandonedDrain, Event, RolloutRecord, Status, UpgradeRecord};
use crate::listen::Listener;
use crate::protocol::WorkerMessage;
use channel::{FromWorker, ToWorker};
use program::Program;
use programs::Programs;

pub(super) mod channel;
mod clock;
// fork/exec without allocating in the child, raw fds (SAFETY comments there).
#[allow(unsafe_code)]
mod exec_plan;
mod exits;
mod kill_report;
// The handover file of an upgrade in place, and the descriptors it names: raw fds (SAFETY
// comments there).
#[allow(unsafe_code)]
pub(crate) mod handover;
mod log;
mod master_program;
mod memory_reader;
mod notify;
mod oom_kills;
// The preflight of an upgrade: the new program spawned through its descriptor (SAFETY comment
// there).
#[allow(unsafe_code)]
pub(crate) mod preflight;
// Opens the program with O_PATH and execs it by descriptor: raw fds (SAFETY comments there).
#[allow(unsafe_code)]
mod program;
mod program_watch;
mod programs;
mod reaper;
pub(super) mod signals;
pub(super) mod socket_file;
mod spawning;
mod status;
// fork/exec without allocating in the child, raw fds (SAFETY comments there).
mod worker_child;
#[allow(unsafe_code)]
mod worker_process;
// The exec of the new master and the way back: raw fds and execveat (SAFETY comments there).
#[allow(unsafe_code)]
pub(crate) mod upgrade;

/// What a [`crate::Handle`] asks of the driver.
#[derive(Debug)]
pub(crate) enum Command {
    Control(Control),
    /// A rolling restart, answered with its record once it ended (`None`: none was started,
    /// the master is stopping).
    RollingRestartAndWait(oneshot::Sender<Option<RolloutRecord>>),
    /// An upgrade in place, answered at once: its number, or why none began.
    Upgrade {
        answer: oneshot::Sender<std::result::Result<u64, String>>,
    },
    /// The end of upgrade `number`, answered once it ended (`None`: unknown here).
    UpgradeOutcome {
        number: u64,
        answer: oneshot::Sender<Option<UpgradeRecord>>,
    },
    /// A replacement of the worker of `slot`, answered at once: taken, or why not.
    Replace {
        slot: usize,
        reason: String,
        answer: oneshot::Sender<std::result::Result<(), String>>,
    },
}

/// How often the loop checks its children even without SIGCHLD.
const REAP_TICK: Duration = Duration::from_secs(1);

/// A worker reaped, its exit not booked yet (see `exits`).
#[derive(Debug)]
struct Reaped {
    status: Termination,
    /// When it is booked even without EOF.
    book_by: Instant,
}

/// A worker process the driver started (or was handed over), until reaped.
struct Process {
    pid: u32,
    child: worker_child::WorkerChild,
    to_worker: mpsc::Sender<ToWorker>,
    /// Its IPC channel reached EOF: every message it wrote has been handed to the policy.
    channel_closed: bool,
}

pub(crate) struct Driver {
    policy: Policy,
    /// What every spawn takes.
    spawn: SpawnSettings,
    /// Whether a change of the program file starts a rolling restart.
    watch_program: crate::WatchProgram,
    /// The files workers execute, by generation.
    programs: Programs,
    /// Who waits for the outcome of a rollout, by the generation it started.
    waiters: BTreeMap<Generation, Vec<oneshot::Sender<Option<RolloutRecord>>>>,
    listeners: Vec<Listener>,
    listener_names: String,
    addrs: Vec<String>,
    processes: BTreeMap<WorkerId, Process>,
    /// Workers reaped before their IPC channel reached EOF; see `exits`.
    reaped: BTreeMap<WorkerId, Reaped>,
    events: broadcast::Sender<Event>,
    status: watch::Sender<Status>,
    from_workers_tx: mpsc::Sender<FromWorker>,
    from_workers: mpsc::Receiver<FromWorker>,
    notifier: notify::Notifier,
    /// The wall clock the status's times are read against: one anchor, so an instant reads as
    /// the same millisecond in every status and record.
    wall: WallClock,
    /// The policy's counters, and the loop's liveness.
    metrics: Arc<Metrics>,
    /// The admin listener's address, for the status.
    admin_addr: Option<String>,
    /// The file this master runs, read once at build (see `master_program`).
    master_program: Option<crate::events::ProgramId>,
    /// When this master was built, in Unix milliseconds: the start the status shows.
    started_at_ms: u64,
    /// Re-parented processes, reaped when the master is PID 1 or a subreaper.
    orphans: reaper::Reaper,
    /// The time the policy reads: real time less the master's own stalls.
    clock: clock::StallClock,
    /// The path the master was started from, where an upgrade finds its new program; or why
    /// it cannot be known.
    master_path: std::result::Result<std::path::PathBuf, String>,
    /// The upgrade being carried out, until the exec (or its refusal).
    upgrade: Option<upgrade::UpgradeRun>,
    /// Who waits for the end of an upgrade, by its number.
    upgrade_waiters: BTreeMap<u64, Vec<oneshot::Sender<Option<UpgradeRecord>>>>,
    /// How long an upgrade's preflight may take: the start timeout, as for a worker.
    upgrade_preflight_bound: Duration,
    preflights_tx: mpsc::UnboundedSender<upgrade::PreflightDone>,
    preflights: mpsc::UnboundedReceiver<upgrade::PreflightDone>,
    /// What the master holds beside the driver, for a handover.
    held_beside: upgrade::HeldBeside,
    /// Set when this driver took over from an old master: what `run` starts from (the
    /// channels' tasks need the runtime `run` has).
    resume: Option<Resume>,
    /// The memory budget and limit, for the status.
    memory: crate::config::MemorySettings,
    /// Reads the regiment's memory for the policy.
    memory_reader: memory_reader::MemoryReader,
    /// The OOM kills of the master's memory cgroup, read when this driver was made: which
    /// exits are the OOM killer's (see `oom_kills`).
    oom_kills: oom_kills::OomKills,
    /// The reports being taken before a kill (see `kill_report`).
    kill_reporter: kill_report::KillReporter,
    /// The reports taken, for every handle.
    kill_reports: Arc<KillReports>,
}

/// What a driver that took over resumes in `run`.
struct Resume {
    workers: Vec<(
        handover::envelope::WorkerEntry,
        std::os::unix::net::UnixStream,
    )>,
    rolled_back: Option<String>,
}

/// What every driver is built from.
pub(crate) struct DriverParts {
    pub(crate) spawn: SpawnSettings,
    pub(crate) watch_program: crate::WatchProgram,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) listener_names: String,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) status: watch::Sender<Status>,
    pub(crate) memory: crate::config::MemorySettings,
    /// How long a report before a kill may take; zero: none is taken.
    pub(crate) kill_report_timeout: Duration,
}

/// What a driver that took over from an old master starts from.
pub(crate) struct TakeOverStart {
    pub(crate) policy: Policy,
    pub(crate) workers: Vec<(
        handover::envelope::WorkerEntry,
        std::os::unix::net::UnixStream,
    )>,
    pub(crate) programs: Vec<(
        handover::envelope::ProgramEntry,
        Option<std::os::fd::OwnedFd>,
    )>,
    pub(crate) master: handover::envelope::MasterEntry,
    /// Set when this master is the previous program executed again: why the new one could
    /// not take over.
    pub(crate) rolled_back: Option<String>,
}

impl Driver {
    /// A driver started afresh: its first generation's program opened now.
    pub(crate) fn new(policy: PolicyConfig, parts: DriverParts) -> Result<Self> {
        let program = Program::open(&parts.spawn.program).map_err(|source| Error::Program {
            path: parts.spawn.program.clone(),
            source,
        })?;
        let programs = Programs::new(parts.spawn.program.clone(), program);
        Ok(Self::with(
            Policy::new(policy),
            programs,
            notify::Notifier::from_env(),
            None,
            parts,
        ))
    }

    /// A driver that takes over from an old master: its policy restored, its programs, workers
    /// and channels handed over.
    pub(crate) fn taken_over(parts: DriverParts, start: TakeOverStart) -> Self {
        let TakeOverStart {
            policy,
            workers,
            programs,
            master,
            rolled_back,
        } = start;
        let programs = Programs::adopted(parts.spawn.program.clone(), programs);
        let notifier = notify::Notifier::after_upgrade(master.notified_ready);
        let resume = Resume {
            workers,
            rolled_back,
        };
        let mut driver = Self::with(policy, programs, notifier, Some(resume), parts);
        driver.started_at_ms = master.started_at_ms;
        driver
    }

    fn with(
        policy: Policy,
        programs: Programs,
        notifier: notify::Notifier,
        resume: Option<Resume>,
        parts: DriverParts,
    ) -> Self {
        let DriverParts {
            spawn,
            watch_program,
            listeners,
            listener_names,
            events,
            status,
            memory,
            kill_report_timeout,
        } = parts;
        let addrs: Vec<String> = listeners.iter().map(Listener::describe).collect();
        let (from_workers_tx, from_workers) = mpsc::channel(256);
        let (preflights_tx, preflights) = mpsc::unbounded_channel();
        let wall = clock::read_wall_clock(Instant::now());
        Self {
            upgrade_preflight_bound: policy.start_timeout(),
            policy,
            programs,
            waiters: BTreeMap::new(),
            listeners,
            listener_names,
            addrs,
            processes: BTreeMap::new(),
            reaped: BTreeMap::new(),
            events,
            status,
            from_workers_tx,
            from_workers,
            notifier,
            wall,
            metrics: Arc::default(),
            admin_addr: None,
            master_program: master_program::master_program(),
            started_at_ms: wall.unix_ms,
            orphans: reaper::Reaper::detect(),
            clock: clock::StallClock::new(Instant::now()),
            master_path: crate::config::master_path().map_err(|e| e.to_string()),
            upgrade: None,
            upgrade_waiters: BTreeMap::new(),
            preflights_tx,
            preflights,
            held_beside: upgrade::HeldBeside::default(),
            resume,
            spawn,
            watch_program,
            memory,
            memory_reader: memory_reader::MemoryReader::new(Instant::now()),
            oom_kills: oom_kills::OomKills::of_this_cgroup(),
            kill_reporter: kill_report::KillReporter::new(kill_report_timeout),
            kill_reports: Arc::default(),
        }
    }

    /// Starts a reading of the regiment's memory, if one is due.
    fn read_memory_if_due(&mut self) {
        let processes = &self.processes;
        self.memory_reader.start_if_due(Instant::now(), || {
            processes.iter().map(|(id, p)| (*id, p.pid)).collect()
        });
    }

    /// What the master holds beside the driver, named in a handover.
    pub(crate) fn set_held_beside(&mut self, held: upgrade::HeldBeside) {
        self.held_beside = held;
    }

    /// Runs the master until it stopped. `signals` were installed when it was built: what
    /// arrived since is acted on now, before the first spawn.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        signals: signals::Signals,
    ) -> Result<()> {
        let io = |source| Error::Io {
            context: "installing signal handlers",
            source,
        };
        let mut sigchld = signal(SignalKind::child()).map_err(io)?;
        let mut sigs = signals.listen().map_err(io)?;
        let watched = match self.watch_program {
            crate::WatchProgram::Reload => Some(self.spawn.program.as_path()),
            crate::WatchProgram::Off => None,
        };
        let mut reloads = program_watch::start(watched).map_err(|source| Error::Io {
            context: "watching the program (watch_program)",
            source,
        })?;

        self.emit(Event::Listening {
            addrs: self.addrs.clone(),
        });
        if let Some(identity) = &self.spawn.identity {
            tracing::info!(target: "regiment", "workers run as {identity}");
        }
        match self.resume.take() {
            None => self.policy.start(self.clock.now()),
            Some(resume) => self.resume(resume),
        }
        // The service manager's watchdog is fed from this loop: if it stalls, systemd sees it.
        let mut watchdog = self.notifier.watchdog_interval().map(tokio::time::interval);
        loop {
            self.metrics.loop_turned();
            self.carry_out();
            if self.policy.is_stopped() {
                return Ok(());
            }
            // Returns only if this program goes on (not quiet yet, or the upgrade refused).
            self.exec_if_quiet().await;
            self.carry_out();
            self.read_memory_if_due();
            let now = Instant::now();
            let wake = self.policy.poll_timeout().map_or(now + REAP_TICK, |t| {
                self.clock.to_real(t).min(now + REAP_TICK)
            });
            let wake = self.orphans.next_due().map_or(wake, |due| due.min(wake));
            let wake = self.next_exit_due().map_or(wake, |due| due.min(wake));
            let wake = self.upgrade_due().map_or(wake, |due| due.min(wake));
            let wake = self.memory_reader.due().map_or(wake, |due| due.min(wake));
            self.clock.expect_wake_by(wake);
            let reading_memory = self.memory_reader.is_reading();
            tokio::select! {
                _ = sigchld.recv() => self.reap(),
                Some(m) = self.from_workers.recv() => self.on_worker(m),
                Some(c) = commands.recv() => self.on_command(c),
                Some(asked) = sigs.recv() => self.on_signal(asked),
                Some(done) = self.preflights.recv() => self.preflight_done(done),
                Some(()) = reloads.recv() => {
                    self.policy.control(self.clock.now(), Control::RollingRestart);
                }
                _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                    self.notifier.watchdog();
                }
                taken = self.kill_reporter.finished() => self.kill_report_taken(taken),
                Some(reading) = self.memory_reader.finished(), if reading_memory => {
                    self.policy.handle(self.clock.now(), Input::Memory(reading));
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    self.reap();
                    self.book_overdue_exits(Instant::now());
                    self.policy.handle_timeout(self.clock.now());
                }
            }
        }
    }

    pub(crate) fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    pub(crate) fn kill_reports(&self) -> Arc<KillReports> {
        self.kill_reports.clone()
    }

    pub(crate) fn set_admin_addr(&mut self, addr: Option<String>) {
        self.admin_addr = addr;
    }

    /// The addresses the status shows, for a preflight's master, which binds none.
    pub(crate) fn set_addrs(&mut self, addrs: Vec<String>) {
        self.addrs = addrs;
    }

    /// Carries out every effect the policy queued (spawns answer at once, and may queue more).
    fn carry_out(&mut self) {
        loop {
            // The counts first: whoever an event wakes reads metrics that count it.
            self.metrics.record(self.policy.stats());
            let Some(effect) = self.policy.poll() else {
                break;
            };
            match effect {
                Effect::Spawn {
                    id,
                    slot,
                    generation,
                    ..
                } => {
                    let input = self.spawn(id, slot, generation);
                    self.policy.handle(self.clock.now(), input);
                }
                Effect::Drain { id, kill_at } => self.send_drain(id, self.clock.to_real(kill_at)),
                Effect::Kill { id, why } => self.kill(id, why),
                Effect::OpenProgram(generation) => self.programs.open(generation),
                Effect::ReleaseProgram(generation) => self.programs.release(generation),
                Effect::Event(e) => {
                    self.notifier.on_event(&e);
                    self.emit(e);
                }
                Effect::StatusChanged => self.publish_status(),
                Effect::RolloutEnded(log) => {
                    // The status first: whoever the answer wakes reads the good generation the
                    // outcome made, not the one before it.
                    // One reading of the clocks for both, so the record answered is the one
                    // the status shows.
                    let wall = self.wall_clock();
                    self.publish_status_at(wall);
                    let record = log.record(wall);
                    for waiter in self.waiters.remove(&log.generation).unwrap_or_default() {
                        let _ = waiter.send(Some(record.clone()));
                    }
                }
                Effect::Upgrade { number } => self.start_upgrade(number),
                Effect::UpgradeEnded(log) => {
                    tracing::info!(
                        target: "regiment",
                        number = log.number,
                        outcome = log.outcome.label(),
                        why = log.why.as_deref().unwrap_or(""),
                        "upgrade ended"
                    );
                    let wall = self.wall_clock();
                    self.publish_status_at(wall);
                    self.upgrade_ended(&log.record(wall));
                }
            }
        }
    }

    fn emit(&self, e: Event) {
        log::log(&e);
        let _ = self.events.send(e);
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Control(c) => self.policy.control(self.clock.now(), c),
            Command::RollingRestartAndWait(waiter) => {
                match self.policy.rolling_restart(self.clock.now()) {
                    // Answered when `Effect::RolloutEnded` reports this generation's end.
                    Some(generation) => self.waiters.entry(generation).or_default().push(waiter),
                    // The master is stopping: no rollout starts.
                    None => {
                        let _ = waiter.send(None);
                    }
                }
            }
            Command::Upgrade { answer } => {
                let _ = answer.send(self.begin_upgrade());
            }
            Command::UpgradeOutcome { number, answer } => self.upgrade_outcome(number, answer),
            Command::Replace {
                slot,
                reason,
                answer,
            } => {
                // Asked and taken in one turn of this loop: nothing happens in between.
                let taken = self.policy.replace(self.clock.now(), slot, reason);
                let _ = answer.send(taken);
            }
        }
    }

    fn on_signal(&mut self, asked: signals::Asked) {
        match asked {
            signals::Asked::Control(c) => self.policy.control(self.clock.now(), c),
            signals::Asked::Upgrade => {
                if let Err(why) = self.begin_upgrade() {
                    tracing::warn!(target: "regiment", "upgrade refused: {why}");
                }
            }
        }
    }

    fn on_worker(&mut self, m: FromWorker) {
        let now = self.clock.now();
        let input = match m {
            FromWorker::Message(id, WorkerMessage::Ready) => Input::Ready(id),
            FromWorker::Message(
                id,
                WorkerMessage::Heartbeat {
                    rss,
                    requests,
                    in_flight,
                    responses_5xx,
                    failures,
                    latency,
                },
            ) => Input::Heartbeat {
                id,
                load: Load {
                    rss,
                    requests,
                    in_flight,
                    responses_5xx,
                    failures,
                    latency: latency.and_then(|counts| self.latency_of(id, &counts)),
                },
            },
            FromWorker::Message(id, WorkerMessage::ReplaceMe { criterion, reason }) => {
                Input::ReplaceMe {
                    id,
                    criterion,
                    reason,
                }
            }
            FromWorker::Message(
                id,
                WorkerMessage::DrainAbandoned {
                    in_flight,
                    connections,
                },
            ) => Input::DrainAbandoned {
                id,
                left: AbandonedDrain::new(in_flight, connections),
            },
            FromWorker::Message(id, WorkerMessage::Report(answer)) => {
                self.kill_reporter.answered(id, answer);
                return;
            }
            FromWorker::Invalid(id, why) => Input::InvalidMessage { id, why },
            FromWorker::Closed(id) => {
                self.channel_closed(id);
                return;
            }
        };
        self.policy.handle(now, input);
    }

    /// The p50 and p99 of a heartbeat's latency counts; counts this build cannot read (a
    /// worker of a build with other buckets) are logged and left unknown, the heartbeat taken.
    fn latency_of(&self, id: WorkerId, counts: &[u64]) -> Option<crate::latency::Quantiles> {
        crate::latency::quantiles(counts).unwrap_or_else(|why| {
            tracing::warn!(target: "regiment", worker = ?id, "latency of a heartbeat ignored: {why}");
            None
        })
    }

    fn send_drain(&self, id: WorkerId, kill_at: Instant) {
        let Some(p) = self.processes.get(&id) else {
            return;
        };
        // The channel task writes the time left until `kill_at`, as it writes the frame.
        if p.to_worker.try_send(ToWorker::Drain { kill_at }).is_err() {
            tracing::warn!(
                pid = p.pid,
                "drain message not delivered; the deadline still applies"
            );
        }
    }

    /// Kills worker `id`; first, if the kill is one a report is taken for, takes it (the kill
    /// follows in `kill_report_taken`).
    fn kill(&mut self, id: WorkerId, why: KillReason) {
        let Some(p) = self.processes.get(&id) else {
            return;
        };
        if self.kill_reporter.wanted(why)
            && let Some((slot, generation)) = self.policy.slot_and_generation(id)
        {
            let subject = kill_report::Subject {
                id,
                slot,
                pid: p.pid,
                generation,
                why,
            };
            let to_worker = p.to_worker.clone();
            let at_ms = self.wall_clock().unix_ms(self.clock.now());
            self.kill_reporter.start(subject, at_ms, to_worker);
            return;
        }
        self.sigkill(id, why);
    }

    /// A report before a kill was taken: it is kept, logged and counted, and the kill goes ahead.
    fn kill_report_taken(&mut self, taken: kill_report::Taken) {
        let kill_report::Taken { subject, report } = taken;
        let report = self.kill_reports.keep(report);
        self.metrics.kill_report_taken();
        tracing::warn!(
            target: "regiment",
            slot = subject.slot,
            pid = subject.pid,
            generation = subject.generation,
            report = report.id,
            "kill report #{}: worker slot {} pid {} gen {}, {}: {}",
            report.id,
            subject.slot,
            subject.pid,
            subject.generation,
            subject.why,
            report.summary()
        );
        self.sigkill(subject.id, subject.why);
    }

    /// Sends SIGKILL to worker `id`'s process group, if it is not reaped yet.
    fn sigkill(&self, id: WorkerId, why: KillReason) {
        let Some(p) = self.processes.get(&id) else {
            return;
        };
        // The worker leads its own process group; the group goes with it. The pid cannot have
        // been reused: only this driver reaps, and it has not reaped this child yet.
        let pid = Pid::from_raw(p.pid as i32);
        if killpg(pid, Signal::SIGKILL).is_err() {
            let _ = kill(pid, Signal::SIGKILL);
        }
        tracing::debug!(pid = p.pid, %why, "SIGKILL sent");
    }
}
