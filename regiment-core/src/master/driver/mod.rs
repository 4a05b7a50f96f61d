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
use tokio::process::Child;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::metrics::Metrics;
use super::policy::{
    Control, Effect, Generation, Input, KillReason, Load, Policy, PolicyConfig, Termination,
    WallClock, WorkerId,
};
use crate::config::SpawnSettings;
use crate::error::{Error, Result};
use crate::events::{AbandonedDrain, Event, RolloutRecord, Status};
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
// The handover file of an upgrade in place, and the descriptors it names: raw fds (SAFETY
// comments there). Used by the exec of the upgrade, which comes next; tested on its own now.
#[allow(unsafe_code)]
#[allow(dead_code)]
pub(crate) mod handover;
mod log;
mod master_program;
mod notify;
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
#[allow(unsafe_code)]
mod worker_process;

/// What a [`crate::Handle`] asks of the driver.
#[derive(Debug)]
pub(crate) enum Command {
    Control(Control),
    /// A rolling restart, answered with its record once it ended (`None`: none was started,
    /// the master is stopping).
    RollingRestartAndWait(oneshot::Sender<Option<RolloutRecord>>),
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

/// A worker process the driver started, until reaped.
struct Process {
    pid: u32,
    child: Child,
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
}

impl Driver {
    pub(crate) fn new(
        policy: PolicyConfig,
        spawn: SpawnSettings,
        watch_program: crate::WatchProgram,
        listeners: Vec<Listener>,
        listener_names: String,
        events: broadcast::Sender<Event>,
        status: watch::Sender<Status>,
    ) -> Result<Self> {
        let program = Program::open(&spawn.program).map_err(|source| Error::Program {
            path: spawn.program.clone(),
            source,
        })?;
        let addrs: Vec<String> = listeners.iter().map(Listener::describe).collect();
        let (from_workers_tx, from_workers) = mpsc::channel(256);
        let wall = clock::read_wall_clock(Instant::now());
        Ok(Self {
            policy: Policy::new(policy),
            programs: Programs::new(spawn.program.clone(), program),
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
            notifier: notify::Notifier::from_env(),
            wall,
            metrics: Arc::default(),
            admin_addr: None,
            master_program: master_program::master_program(),
            started_at_ms: wall.unix_ms,
            orphans: reaper::Reaper::detect(),
            clock: clock::StallClock::new(Instant::now()),
            spawn,
            watch_program,
        })
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
        self.policy.start(self.clock.now());
        // The service manager's watchdog is fed from this loop: if it stalls, systemd sees it.
        let mut watchdog = self.notifier.watchdog_interval().map(tokio::time::interval);
        loop {
            self.metrics.loop_turned();
            self.carry_out();
            if self.policy.is_stopped() {
                return Ok(());
            }
            let now = Instant::now();
            let wake = self.policy.poll_timeout().map_or(now + REAP_TICK, |t| {
                self.clock.to_real(t).min(now + REAP_TICK)
            });
            let wake = self.orphans.next_due().map_or(wake, |due| due.min(wake));
            let wake = self.next_exit_due().map_or(wake, |due| due.min(wake));
            self.clock.expect_wake_by(wake);
            tokio::select! {
                _ = sigchld.recv() => self.reap(),
                Some(m) = self.from_workers.recv() => self.on_worker(m),
                Some(c) = commands.recv() => self.on_command(c),
                Some(c) = sigs.recv() => self.policy.control(self.clock.now(), c),
                Some(()) = reloads.recv() => {
                    self.policy.control(self.clock.now(), Control::RollingRestart);
                }
                _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                    self.notifier.watchdog();
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
                // Nothing begins an upgrade yet (issue 23: the exec is the driver's next
                // step); should one begin, it ends refused rather than hang.
                Effect::Upgrade { number } => {
                    let why = "this master cannot hand over to a new binary yet";
                    tracing::error!(target: "regiment", number, "upgrade refused: {why}");
                    self.policy
                        .upgrade_refused(self.clock.now(), number, why.into());
                }
                Effect::UpgradeEnded(log) => {
                    tracing::info!(
                        target: "regiment",
                        number = log.number,
                        outcome = ?log.outcome,
                        why = log.why.as_deref().unwrap_or(""),
                        "upgrade ended"
                    );
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
                },
            ) => Input::Heartbeat {
                id,
                load: Load {
                    rss,
                    requests,
                    in_flight,
                    responses_5xx,
                    failures,
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
            FromWorker::Invalid(id, why) => Input::InvalidMessage { id, why },
            FromWorker::Closed(id) => {
                self.channel_closed(id);
                return;
            }
        };
        self.policy.handle(now, input);
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

    fn kill(&self, id: WorkerId, why: KillReason) {
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
