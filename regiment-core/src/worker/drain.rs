//! This worker's drain: whether it began, and by when the worker must be gone. Shared by the
//! worker's calls, which wait for it, and its IPC thread, which begins it on the master's word,
//! on the master's death or on SIGTERM/SIGINT.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::log_guard;

pub(super) struct Drain {
    /// This worker's slot, for the log.
    slot: usize,
    /// The time a drain the worker begins itself (a signal, its master gone) has.
    timeout: Duration,
    began: CancellationToken,
    deadline: Mutex<Option<Instant>>,
}

impl Drain {
    pub(super) fn new(slot: usize, timeout: Duration) -> Self {
        Self {
            slot,
            timeout,
            began: CancellationToken::new(),
            deadline: Mutex::new(None),
        }
    }

    /// The time a drain the worker begins itself has: the master's drain timeout.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Cancelled once the drain began.
    pub(super) fn began(&self) -> &CancellationToken {
        &self.began
    }

    /// By when the worker must be gone, once the drain began.
    pub(super) fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Begins the drain once; later calls keep the first deadline. The drain begins before it
    /// is logged, and whatever the log does: a worker whose stderr is a closed pipe drains too.
    pub(super) fn begin(&self, why: &str, within: Duration) {
        {
            let mut d = self.deadline.lock().unwrap_or_else(|e| e.into_inner());
            if d.is_some() {
                return;
            }
            *d = Some(Instant::now() + within);
        }
        self.began.cancel();
        log_guard::survive(|| {
            tracing::info!(
                slot = self.slot,
                why,
                deadline = %humantime::format_duration(within),
                "worker draining"
            )
        });
    }
}
