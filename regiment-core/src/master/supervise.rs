//! The supervisor loop: one task owns the books and applies every lifecycle rule, so that no two
//! transitions ever race.
//!
//! The rules (DESIGN.md, "Lifecycle and policies"):
//! 1. an old worker is told to drain only after its replacement reported ready;
//! 2. a replacement that fails to start is killed, the old worker keeps serving, the retry backs
//!    off; a rollout whose new workers keep failing is aborted;
//! 3. at most `max_surge` replacements start at once, further requests queue, deduplicated;
//! 4. a draining worker is SIGKILLed at its deadline;
//! 5. a crashed worker is respawned in its slot with exponential backoff;
//! 6. signals: rolling restart, graceful then forced stop, one worker more or less;
//! 8. the master returns only once every worker it spawned is reaped.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{broadcast, mpsc, watch};

use super::Control;
use super::backoff::Backoff;
use super::books::{Pending, Rollout, Slot, Stopping, WorkerRec, describe_status};
use super::channel::{self, FromWorker};
use super::spawn::{self, SpawnRequest};
use crate::config::{Config, SpawnPlan};
use crate::error::{Error, Result};
use crate::events::{Event, SlotStatus, Status, WorkerState, WorkerStatus};
use crate::listen::Listener;
use crate::protocol::{MasterMessage, WorkerMessage, bounded_reason};

/// Invalid messages logged per worker before the log is thinned to one in a thousand.
const INVALID_LOGGED: u64 = 10;
/// How often the loop checks its children even without SIGCHLD.
const REAP_TICK: Duration = Duration::from_secs(1);

pub(crate) struct Master {
    config: Config,
    listeners: Vec<Listener>,
    listener_names: String,
    addrs: Vec<String>,
    workers: BTreeMap<u64, WorkerRec>,
    slots: Vec<Slot>,
    queue: VecDeque<usize>,
    next_id: u64,
    generation: u64,
    rollout: Option<Rollout>,
    stopping: Option<Stopping>,
    events: broadcast::Sender<Event>,
    status: watch::Sender<Status>,
    from_workers_tx: mpsc::Sender<FromWorker>,
    from_workers: mpsc::Receiver<FromWorker>,
}

impl Master {
    pub fn new(
        config: Config,
        listeners: Vec<Listener>,
        events: broadcast::Sender<Event>,
        status: watch::Sender<Status>,
    ) -> Self {
        let addrs: Vec<String> = listeners.iter().map(Listener::describe).collect();
        let listener_names = (0..listeners.len())
            .map(|i| format!("regiment{i}"))
            .collect::<Vec<_>>()
            .join(":");
        let (from_workers_tx, from_workers) = mpsc::channel(256);
        let backoff = Backoff::new(config.backoff_initial, config.backoff_max);
        let slots = (0..config.workers)
            .map(|_| Slot::new(backoff.clone()))
            .collect();
        Self {
            config,
            listeners,
            listener_names,
            addrs,
            workers: BTreeMap::new(),
            slots,
            queue: VecDeque::new(),
            next_id: 1,
            generation: 1,
            rollout: None,
            stopping: None,
            events,
            status,
            from_workers_tx,
            from_workers,
        }
    }

    pub async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) -> Result<()> {
        // Every handler is in place before the first spawn: a signal that arrives while workers
        // start is never lost, nor does it kill the master with its default action.
        let io = |source| Error::Io {
            context: "installing signal handlers",
            source,
        };
        let mut sigchld = signal(SignalKind::child()).map_err(io)?;
        let mut sigs =
            super::signals::Signals::install(&self.config.restart_signals).map_err(io)?;

        self.emit(Event::Listening {
            addrs: self.addrs.clone(),
        });
        let now = Instant::now();
        for slot in 0..self.slots.len() {
            self.spawn_into(slot, false, now);
        }
        loop {
            self.publish_status();
            if self.stopping.is_some() && self.workers.is_empty() {
                self.emit(Event::Stopped);
                self.publish_status();
                return Ok(());
            }
            let wake = self.next_wake(Instant::now());
            tokio::select! {
                _ = sigchld.recv() => self.reap(),
                Some(m) = self.from_workers.recv() => self.on_worker(m),
                Some(c) = control.recv() => self.on_control(c),
                Some(c) = sigs.recv() => self.on_control(c),
                _ = tokio::time::sleep_until(wake.into()) => self.reap(),
            }
            let now = Instant::now();
            self.on_timers(now);
            self.pump(now);
        }
    }

    // ----- events and status ---------------------------------------------------------------

    fn emit(&self, e: Event) {
        super::log::log(&e);
        let _ = self.events.send(e);
    }

    fn publish_status(&self) {
        let now = Instant::now();
        let workers = self
            .workers
            .values()
            .map(|w| WorkerStatus {
                slot: w.slot,
                pid: w.pid,
                generation: w.generation,
                state: w.state,
                age_ms: now.duration_since(w.spawned_at).as_millis() as u64,
                rss: w.rss,
                requests: w.requests,
                in_flight: w.in_flight,
                replace_reason: w.replace_reason.clone(),
            })
            .collect::<Vec<_>>();
        let mut workers = workers;
        workers.sort_by_key(|w| (w.slot, w.pid));
        let status = Status {
            master_pid: std::process::id(),
            generation: self.generation,
            workers_wanted: self.slots.len(),
            rollout: self.rollout.map(|r| r.target),
            stopping: self.stopping.is_some(),
            listeners: self.addrs.clone(),
            workers,
            slots: self
                .slots
                .iter()
                .enumerate()
                .map(|(i, s)| SlotStatus {
                    slot: i,
                    restarts: s.restarts,
                    last_restart_reason: s.last_reason.clone(),
                })
                .collect(),
        };
        self.status.send_replace(status);
    }

    // ----- spawning -------------------------------------------------------------------------

    /// Spawns a worker for `slot`: a successor of the slot's current worker, or a primary for
    /// an empty slot. A failure to spawn counts as a failed start.
    fn spawn_into(&mut self, slot: usize, successor: bool, now: Instant) {
        let generation = self.generation;
        let spawned_for = if successor {
            self.slots[slot].pending.take()
        } else {
            None
        };
        match self.try_spawn(slot, generation) {
            Ok((pid, child, to_worker)) => {
                let id = self.next_id;
                self.next_id += 1;
                let replaces = if successor {
                    self.slots[slot]
                        .current
                        .and_then(|c| self.workers.get(&c))
                        .map(|w| w.pid)
                } else {
                    None
                };
                self.workers.insert(
                    id,
                    WorkerRec {
                        slot,
                        generation,
                        pid,
                        child,
                        state: WorkerState::Starting,
                        spawned_at: now,
                        ready_at: None,
                        deadline: Some(now + self.config.start_timeout),
                        to_worker,
                        spawned_for,
                        replace_reason: None,
                        killed: None,
                        last_heard: now,
                        rss: 0,
                        requests: 0,
                        in_flight: 0,
                        invalid_messages: 0,
                        heartbeats_seen: false,
                    },
                );
                if successor {
                    self.slots[slot].successor = Some(id);
                } else {
                    self.slots[slot].current = Some(id);
                }
                self.emit(Event::Spawned {
                    slot,
                    pid,
                    generation,
                    replaces,
                });
            }
            Err(why) => {
                if let Some(p) = spawned_for {
                    self.restore_pending(slot, p);
                }
                self.start_failed(slot, generation, 0, why, now);
            }
        }
    }

    fn try_spawn(
        &mut self,
        slot: usize,
        generation: u64,
    ) -> std::result::Result<(u32, tokio::process::Child, mpsc::Sender<MasterMessage>), String>
    {
        let mut plan = SpawnPlan {
            slot,
            generation,
            env: self.config.env.clone(),
            current_dir: None,
        };
        if let Some(hook) = &self.config.before_spawn {
            let hook = hook.clone();
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&mut plan))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(format!("before_spawn hook failed: {e}")),
                Err(_) => return Err("before_spawn hook panicked".into()),
            }
        }
        let spawned = spawn::spawn(SpawnRequest {
            program: &self.config.program,
            argv0: format!(
                "{} worker {slot} gen {generation}",
                self.config.process_name
            ),
            args: &self.config.args,
            listeners: &self.listeners,
            listener_names: &self.listener_names,
            slot,
            generation,
            readiness: self.config.readiness,
            drain_timeout_ms: self.config.drain_timeout.as_millis() as u64,
            heartbeat_ms: self.config.heartbeat.as_millis() as u64,
            env: &plan.env,
            current_dir: plan.current_dir,
        })
        .map_err(|e| format!("spawn of {} failed: {e}", self.config.program.display()))?;
        let id = self.next_id;
        match channel::start(id, spawned.ipc, self.from_workers_tx.clone()) {
            Ok(tx) => Ok((spawned.pid, spawned.child, tx)),
            Err(e) => {
                let mut child = spawned.child;
                let _ = child.start_kill();
                // Reaped by tokio's orphan queue; it never ran as a worker.
                Err(format!("IPC channel setup failed: {e}"))
            }
        }
    }

    /// A worker of `slot` failed before it was ready (or could not be spawned).
    fn start_failed(&mut self, slot: usize, generation: u64, pid: u32, why: String, now: Instant) {
        let Some(s) = self.slots.get_mut(slot) else {
            self.emit(Event::StartFailed {
                slot,
                pid,
                generation,
                why,
                retry_in_ms: 0,
            });
            return;
        };
        let delay = s.backoff.next_delay();
        s.not_before = Some(now + delay);
        let retry_in_ms = if self.stopping.is_some() {
            0
        } else {
            delay.as_millis() as u64
        };
        self.emit(Event::StartFailed {
            slot,
            pid,
            generation,
            why,
            retry_in_ms,
        });
        if let Some(r) = &mut self.rollout
            && generation >= r.target
        {
            r.failures += 1;
            let (target, failures) = (r.target, r.failures);
            if failures >= self.config.rollout_failures {
                self.abort_rollout(
                    target,
                    format!(
                        "{failures} consecutive workers of generation {target} failed to start"
                    ),
                );
            }
        }
    }

    fn abort_rollout(&mut self, generation: u64, why: String) {
        self.rollout = None;
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.pending.as_ref().is_some_and(|p| p.rollout) {
                s.pending = None;
                self.queue.retain(|q| *q != i);
            }
        }
        self.emit(Event::RolloutAborted { generation, why });
    }

    fn restore_pending(&mut self, slot: usize, p: Pending) {
        if p.rollout && self.rollout.is_none() {
            return;
        }
        if let Some(s) = self.slots.get_mut(slot)
            && s.pending.is_none()
        {
            s.pending = Some(p);
            self.queue.push_back(slot);
        }
    }

    /// Queues a replacement of `slot`'s current worker, unless one is queued or starting.
    fn want_replacement(&mut self, slot: usize, reason: String, rollout: bool) {
        if self.stopping.is_some() {
            return;
        }
        let Some(s) = self.slots.get_mut(slot) else {
            return;
        };
        if s.successor.is_some() || s.pending.is_some() {
            tracing::debug!(slot, %reason, "replacement already under way");
            return;
        }
        s.pending = Some(Pending { reason, rollout });
        self.queue.push_back(slot);
    }

    /// Starts what may start now: workers for empty slots, then queued replacements within the
    /// surge budget.
    fn pump(&mut self, now: Instant) {
        if self.stopping.is_some() {
            return;
        }
        for slot in 0..self.slots.len() {
            let s = &mut self.slots[slot];
            if s.current.is_none() && s.successor.is_none() && s.may_spawn(now) {
                // A fresh worker is the replacement a queued request asked for.
                if s.pending.take().is_some() {
                    self.queue.retain(|q| *q != slot);
                }
                self.spawn_into(slot, false, now);
            }
        }
        let budget = self.config.surge(self.slots.len());
        let mut i = 0;
        while i < self.queue.len() {
            let starting = self.slots.iter().filter(|s| s.successor.is_some()).count();
            if starting >= budget {
                break;
            }
            let slot = self.queue[i];
            let Some(s) = self.slots.get(slot) else {
                self.queue.remove(i);
                continue;
            };
            let current_ready = s
                .current
                .and_then(|c| self.workers.get(&c))
                .is_some_and(|w| w.state == WorkerState::Ready);
            if s.pending.is_none() || s.successor.is_some() {
                self.queue.remove(i);
            } else if current_ready && s.may_spawn(now) {
                self.queue.remove(i);
                self.spawn_into(slot, true, now);
            } else {
                i += 1;
            }
        }
        self.check_rollout_done();
    }

    fn check_rollout_done(&mut self) {
        let Some(r) = self.rollout else { return };
        let done = self.slots.iter().all(|s| {
            s.pending.is_none()
                && s.successor.is_none()
                && s.current
                    .and_then(|c| self.workers.get(&c))
                    .is_some_and(|w| w.state == WorkerState::Ready && w.generation >= r.target)
        });
        if done {
            self.rollout = None;
            self.emit(Event::RolloutDone {
                generation: r.target,
            });
        }
    }

    // ----- transitions ----------------------------------------------------------------------

    fn drain(&mut self, id: u64, why: String, now: Instant) {
        let deadline = self.config.drain_timeout;
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        if w.state == WorkerState::Draining {
            return;
        }
        w.state = WorkerState::Draining;
        w.deadline = Some(now + deadline);
        let deadline_ms = deadline.as_millis() as u64;
        if w.to_worker
            .try_send(MasterMessage::Drain { deadline_ms })
            .is_err()
        {
            tracing::warn!(
                slot = w.slot,
                pid = w.pid,
                "drain message not delivered; the deadline still applies"
            );
        }
        let (slot, pid, generation) = (w.slot, w.pid, w.generation);
        self.emit(Event::Draining {
            slot,
            pid,
            generation,
            why,
            deadline_ms,
        });
    }

    fn kill(&mut self, id: u64, why: &'static str) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        if w.killed.is_some() {
            return;
        }
        w.killed = Some(why);
        // The worker leads its own process group; the group goes with it. The pid cannot have
        // been reused: only this loop reaps, and it has not reaped this child yet.
        let pid = Pid::from_raw(w.pid as i32);
        if killpg(pid, Signal::SIGKILL).is_err() {
            let _ = kill(pid, Signal::SIGKILL);
        }
        let (slot, pid, generation) = (w.slot, w.pid, w.generation);
        self.emit(Event::Killed {
            slot,
            pid,
            generation,
            why: why.into(),
        });
    }

    fn on_ready(&mut self, id: u64, now: Instant) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        if w.state != WorkerState::Starting {
            // Counted once per worker, whatever it sends (several listeners, repeats).
            return;
        }
        w.state = WorkerState::Ready;
        w.ready_at = Some(now);
        w.deadline = None;
        let (slot, pid, generation) = (w.slot, w.pid, w.generation);
        let spawned_for = w.spawned_for.take();
        let asked = w.replace_reason.clone();
        self.emit(Event::Ready {
            slot,
            pid,
            generation,
        });

        if self.stopping.is_some() {
            self.drain(id, "stopping".into(), now);
            return;
        }
        let Some(s) = self.slots.get_mut(slot) else {
            self.drain(id, "slot removed".into(), now);
            return;
        };
        if s.successor == Some(id) {
            s.successor = None;
            let old = s.current.replace(id);
            s.restarts += 1;
            s.last_reason = spawned_for.map(|p| p.reason);
            if let Some(old) = old {
                self.drain(old, format!("replaced by pid {pid}"), now);
            }
        } else if s.current != Some(id) {
            self.drain(id, "not needed".into(), now);
            return;
        }
        if let Some(r) = &mut self.rollout {
            if generation >= r.target {
                r.failures = 0;
            } else {
                let reason = format!("rolling restart to generation {}", r.target);
                self.want_replacement(slot, reason, true);
            }
        }
        if let Some(reason) = asked {
            self.want_replacement(slot, reason, false);
        }
    }

    fn on_exit(&mut self, id: u64, status: std::process::ExitStatus, now: Instant) {
        let Some(w) = self.workers.remove(&id) else {
            return;
        };
        let status = describe_status(&status);
        let (slot, pid, generation) = (w.slot, w.pid, w.generation);
        let role = self
            .slots
            .get(slot)
            .map(|s| (s.current == Some(id), s.successor == Some(id)));
        match role {
            Some((_, true)) => {
                self.slots[slot].successor = None;
                if let Some(p) = w.spawned_for {
                    self.restore_pending(slot, p);
                }
                let why = match w.killed {
                    Some(k) => format!("{k}: {status}"),
                    None => format!("exited before ready: {status}"),
                };
                self.start_failed(slot, generation, pid, why, now);
            }
            Some((true, false)) if w.state == WorkerState::Starting => {
                self.slots[slot].current = None;
                let why = match w.killed {
                    Some(k) => format!("{k}: {status}"),
                    None => format!("exited before ready: {status}"),
                };
                self.start_failed(slot, generation, pid, why, now);
            }
            Some((true, false)) => {
                let stopping = self.stopping.is_some();
                let reset = self.config.backoff_reset;
                let s = &mut self.slots[slot];
                s.current = None;
                if w.ready_at.is_some_and(|t| now.duration_since(t) >= reset) {
                    s.backoff.reset();
                }
                s.restarts += 1;
                s.last_reason = Some(format!("crashed: {status}"));
                // A replacement already starting takes the slot when ready: nothing to respawn.
                let respawn_in_ms = if stopping || s.successor.is_some() {
                    0
                } else {
                    let delay = s.backoff.next_delay();
                    s.not_before = Some(now + delay);
                    delay.as_millis() as u64
                };
                self.emit(Event::Crashed {
                    slot,
                    pid,
                    generation,
                    status,
                    respawn_in_ms,
                });
            }
            _ => self.emit(Event::Exited {
                slot,
                pid,
                generation,
                status,
            }),
        }
    }

    fn reap(&mut self) {
        let now = Instant::now();
        let mut exited = Vec::new();
        for (id, w) in &mut self.workers {
            match w.child.try_wait() {
                Ok(Some(status)) => exited.push((*id, status)),
                Ok(None) => {}
                Err(e) => tracing::warn!(pid = w.pid, error = %e, "waitpid failed"),
            }
        }
        for (id, status) in exited {
            self.on_exit(id, status, now);
        }
    }

    fn on_timers(&mut self, now: Instant) {
        let mut to_kill = Vec::new();
        let mut silent = Vec::new();
        for (id, w) in &self.workers {
            if w.killed.is_none() && w.deadline.is_some_and(|d| d <= now) {
                to_kill.push((
                    *id,
                    if w.state == WorkerState::Starting {
                        "start timeout"
                    } else {
                        "drain deadline"
                    },
                ));
            }
            if let Some(t) = self.config.heartbeat_timeout
                && w.state == WorkerState::Ready
                && w.heartbeats_seen
                && w.replace_reason.is_none()
                && now.duration_since(w.last_heard) > t
            {
                silent.push(*id);
            }
        }
        for (id, why) in to_kill {
            self.kill(id, why);
        }
        for id in silent {
            let Some(w) = self.workers.get_mut(&id) else {
                continue;
            };
            let silent_ms = now.duration_since(w.last_heard).as_millis() as u64;
            let reason = format!("unresponsive: no heartbeat for {silent_ms} ms");
            w.replace_reason = Some(reason.clone());
            let (slot, pid, generation) = (w.slot, w.pid, w.generation);
            self.emit(Event::Unresponsive {
                slot,
                pid,
                generation,
                silent_ms,
            });
            if self.slots.get(slot).is_some_and(|s| s.current == Some(id)) {
                self.want_replacement(slot, reason, false);
            }
        }
    }

    fn next_wake(&self, now: Instant) -> Instant {
        let mut wake = now + REAP_TICK;
        for w in self.workers.values() {
            if w.killed.is_none()
                && let Some(d) = w.deadline
            {
                wake = wake.min(d);
            }
        }
        if self.stopping.is_none() {
            for s in &self.slots {
                if let Some(t) = s.not_before
                    && (s.current.is_none() || s.pending.is_some())
                {
                    wake = wake.min(t);
                }
            }
        }
        wake.max(now)
    }

    // ----- inputs ---------------------------------------------------------------------------

    fn on_worker(&mut self, m: FromWorker) {
        let now = Instant::now();
        match m {
            FromWorker::Message(id, msg) => {
                let Some(w) = self.workers.get_mut(&id) else {
                    return;
                };
                w.last_heard = now;
                match msg {
                    WorkerMessage::Ready => self.on_ready(id, now),
                    WorkerMessage::Heartbeat {
                        rss,
                        requests,
                        in_flight,
                    } => {
                        w.heartbeats_seen = true;
                        w.rss = rss;
                        w.requests = requests;
                        w.in_flight = in_flight;
                    }
                    WorkerMessage::ReplaceMe { reason } => {
                        if w.replace_reason.is_some() {
                            return; // idempotent: one replacement per worker
                        }
                        let reason = bounded_reason(reason);
                        w.replace_reason = Some(reason.clone());
                        let (slot, pid, generation, state) = (w.slot, w.pid, w.generation, w.state);
                        self.emit(Event::ReplaceRequested {
                            slot,
                            pid,
                            generation,
                            reason: reason.clone(),
                        });
                        let current = self.slots.get(slot).is_some_and(|s| s.current == Some(id));
                        match state {
                            WorkerState::Ready if current => {
                                self.want_replacement(slot, reason, false)
                            }
                            // Acted on when it becomes ready.
                            WorkerState::Starting => {}
                            _ => tracing::debug!(
                                slot,
                                pid,
                                "replacement request from a worker on its way out; ignored"
                            ),
                        }
                    }
                }
            }
            FromWorker::Invalid(id, why) => {
                let Some(w) = self.workers.get_mut(&id) else {
                    return;
                };
                w.invalid_messages += 1;
                let n = w.invalid_messages;
                if n <= INVALID_LOGGED || n.is_multiple_of(1000) {
                    let (slot, pid, generation) = (w.slot, w.pid, w.generation);
                    let why = if n > 1 {
                        format!("{why} (invalid message #{n})")
                    } else {
                        why
                    };
                    self.emit(Event::InvalidMessage {
                        slot,
                        pid,
                        generation,
                        why,
                    });
                }
            }
            FromWorker::Closed(id) => {
                if let Some(w) = self.workers.get(&id) {
                    tracing::debug!(slot = w.slot, pid = w.pid, "worker closed its IPC channel");
                }
            }
        }
    }

    fn on_control(&mut self, c: Control) {
        let now = Instant::now();
        match c {
            Control::RollingRestart => self.rolling_restart(),
            Control::Stop => self.stop(now),
            Control::ScaleUp => {
                if self.stopping.is_none() {
                    self.slots.push(Slot::new(Backoff::new(
                        self.config.backoff_initial,
                        self.config.backoff_max,
                    )));
                    self.emit(Event::Scaled {
                        workers: self.slots.len(),
                    });
                }
            }
            Control::ScaleDown => {
                if self.stopping.is_none() && self.slots.len() > 1 {
                    let slot = self.slots.len() - 1;
                    let s = self.slots.pop().expect("more than one slot");
                    self.queue.retain(|q| *q != slot);
                    self.emit(Event::Scaled {
                        workers: self.slots.len(),
                    });
                    for id in [s.current, s.successor].into_iter().flatten() {
                        self.drain(id, "scaled down".into(), now);
                    }
                }
            }
            Control::Replace { slot, reason } => {
                if self.slots.get(slot).and_then(|s| s.current).is_some() {
                    self.want_replacement(slot, bounded_reason(reason), false);
                }
            }
        }
    }

    fn rolling_restart(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        self.generation += 1;
        let target = self.generation;
        self.rollout = Some(Rollout {
            target,
            failures: 0,
        });
        self.emit(Event::RolloutStarted { generation: target });
        for slot in 0..self.slots.len() {
            let old = self.slots[slot]
                .current
                .and_then(|c| self.workers.get(&c))
                .is_some_and(|w| w.generation < target);
            if old {
                self.want_replacement(
                    slot,
                    format!("rolling restart to generation {target}"),
                    true,
                );
            }
        }
    }

    fn stop(&mut self, now: Instant) {
        match self.stopping {
            None => {
                self.stopping = Some(Stopping::Graceful);
                self.rollout = None;
                self.queue.clear();
                for s in &mut self.slots {
                    s.pending = None;
                    s.current = None;
                    s.successor = None;
                }
                self.emit(Event::Stopping { forced: false });
                let ids: Vec<u64> = self.workers.keys().copied().collect();
                for id in ids {
                    self.drain(id, "stopping".into(), now);
                }
            }
            Some(Stopping::Graceful) => {
                self.stopping = Some(Stopping::Forced);
                self.emit(Event::Stopping { forced: true });
                let ids: Vec<u64> = self.workers.keys().copied().collect();
                for id in ids {
                    self.kill(id, "forced stop");
                }
            }
            Some(Stopping::Forced) => {}
        }
    }
}
