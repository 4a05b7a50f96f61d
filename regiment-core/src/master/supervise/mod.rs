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

mod inputs;
mod replacement;
mod spawning;
mod transitions;

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

    fn emit(&self, e: Event) {
        super::log::log(&e);
        let _ = self.events.send(e);
    }

    pub(crate) fn publish_status(&self) {
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
}
