//! The master's books: every worker process it spawned (until reaped) and every slot.

use std::time::Instant;

use tokio::process::Child;
use tokio::sync::mpsc;

use super::backoff::Backoff;
use crate::events::WorkerState;
use crate::protocol::MasterMessage;

/// One worker process, from spawn until the master has reaped it.
pub(crate) struct WorkerRec {
    pub slot: usize,
    pub generation: u64,
    pub pid: u32,
    pub child: Child,
    pub state: WorkerState,
    pub spawned_at: Instant,
    pub ready_at: Option<Instant>,
    /// Start timeout while Starting, kill time while Draining.
    pub deadline: Option<Instant>,
    pub to_worker: mpsc::Sender<MasterMessage>,
    /// What this worker was spawned for, if it replaces another: restored if it fails.
    pub spawned_for: Option<Pending>,
    /// The replacement this worker asked for (first request only).
    pub replace_reason: Option<String>,
    /// Why the master sent SIGKILL, if it did: this exit is the master's intent, not a crash.
    pub killed: Option<&'static str>,
    pub last_heard: Instant,
    pub rss: u64,
    pub requests: u64,
    pub in_flight: u64,
    pub invalid_messages: u64,
    /// Only a worker that sends heartbeats can be judged by their absence.
    pub heartbeats_seen: bool,
}

impl WorkerRec {
    /// A worker just spawned: starting, no deadline yet, nothing heard.
    pub fn new(
        slot: usize,
        generation: u64,
        pid: u32,
        child: Child,
        to_worker: mpsc::Sender<MasterMessage>,
        now: Instant,
    ) -> Self {
        Self {
            slot,
            generation,
            pid,
            child,
            state: WorkerState::Starting,
            spawned_at: now,
            ready_at: None,
            deadline: None,
            to_worker,
            spawned_for: None,
            replace_reason: None,
            killed: None,
            last_heard: now,
            rss: 0,
            requests: 0,
            in_flight: 0,
            invalid_messages: 0,
            heartbeats_seen: false,
        }
    }
}

/// A replacement wanted in a slot but not started yet.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub reason: String,
    /// Made by a rolling restart (dropped if the rollout is aborted).
    pub rollout: bool,
}

/// A place for one worker; a replacement takes the slot of the worker it replaces.
pub(crate) struct Slot {
    /// The worker serving this slot (or starting to, when the slot was empty).
    pub current: Option<u64>,
    /// A replacement starting for `current`.
    pub successor: Option<u64>,
    pub pending: Option<Pending>,
    /// No spawn in this slot before then (backoff).
    pub not_before: Option<Instant>,
    pub backoff: Backoff,
    pub restarts: u64,
    pub last_reason: Option<String>,
}

impl Slot {
    pub fn new(backoff: Backoff) -> Self {
        Self {
            current: None,
            successor: None,
            pending: None,
            not_before: None,
            backoff,
            restarts: 0,
            last_reason: None,
        }
    }

    pub fn may_spawn(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| t <= now)
    }
}

/// A rolling restart under way.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rollout {
    pub target: u64,
    /// Consecutive failed starts of target-generation workers.
    pub failures: u32,
    /// Target-generation workers that crashed soon after they were ready (within the backoff's
    /// healthy period). Not reset by a later ready: a binary that dies a second after it is
    /// ready would otherwise replace every old worker with a crash loop.
    pub early_crashes: u32,
}

/// Whether and how the master is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopping {
    Graceful,
    Forced,
}

/// `exit 0`, `signal 9 (SIGKILL)`.
pub(crate) fn describe_status(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        format!("exit {code}")
    } else if let Some(sig) = status.signal() {
        match nix::sys::signal::Signal::try_from(sig) {
            Ok(s) => format!("signal {sig} ({s})"),
            Err(_) => format!("signal {sig}"),
        }
    } else {
        format!("{status}")
    }
}
