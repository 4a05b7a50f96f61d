//! The service manager's view (sd_notify), when `NOTIFY_SOCKET` is set: `READY=1` once the first
//! generation serves in every slot; `RELOADING=1` with `MONOTONIC_USEC` when a rolling restart
//! starts (so `Type=notify-reload` works, systemd 253 and later) and `READY=1` when it ends,
//! done or aborted (with why in the summary);
//! `STOPPING=1` on stop; `STATUS=` a one-line summary whenever it changes; `WATCHDOG=1` at half
//! of `WATCHDOG_USEC` for as long as the supervisor loop runs.
//!
//! An upgrade in place is a reload too: `RELOADING=1` as it begins, `STATUS=` lines on the way,
//! `EXTEND_TIMEOUT_USEC` and a last `WATCHDOG=1` just before the exec (the new master pings
//! again as soon as it runs), and `READY=1` when it ended, whichever way. The new master is told
//! by the handover whether `READY=1` was sent already, and does not send it again at start.

use std::time::Duration;

use sd_notify::NotifyState;

use crate::events::{Event, RolloutOutcome, Status, WorkerState};

/// What has been told to the service manager, so that each state is told once.
pub(crate) struct Notifier {
    enabled: bool,
    ready_sent: bool,
    /// An upgrade is under way: it is the reload, and the rollout of its build is part of it
    /// (no `RELOADING=1` or `READY=1` of its own).
    upgrading: bool,
    last_status: String,
}

impl Notifier {
    pub(crate) fn from_env() -> Self {
        Self {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some_and(|v| !v.is_empty()),
            ready_sent: false,
            upgrading: false,
            last_status: String::new(),
        }
    }

    /// The notifier of a master that took over from an earlier one, which had told `READY=1`
    /// already if `ready_sent`, in the middle of the upgrade.
    pub(crate) fn after_upgrade(ready_sent: bool) -> Self {
        Self {
            ready_sent,
            upgrading: true,
            ..Self::from_env()
        }
    }

    /// Whether `READY=1` was told, for the master that takes over.
    pub(crate) fn ready_sent(&self) -> bool {
        self.ready_sent
    }

    /// Upgrade `number` begins: the service reloads.
    pub(crate) fn upgrade_began(&mut self, number: u64) {
        if !self.enabled {
            return;
        }
        self.upgrading = true;
        let line = format!("upgrading the master (upgrade {number}): preflight of the new program");
        match NotifyState::monotonic_usec_now() {
            Ok(now) if self.ready_sent => {
                self.send(&[NotifyState::Reloading, now, NotifyState::Status(&line)]);
            }
            Ok(_) => self.send(&[NotifyState::Status(&line)]),
            Err(e) => tracing::warn!(error = %e, "cannot read the monotonic clock"),
        }
        self.last_status = line;
    }

    /// The new program is about to be executed: the time it takes to take over is covered.
    pub(crate) fn upgrade_executing(&mut self, number: u64) {
        if !self.enabled {
            return;
        }
        let line = format!("upgrading the master (upgrade {number}): executing the new program");
        self.send(&[
            NotifyState::Status(&line),
            NotifyState::ExtendTimeoutUsec(EXEC_TIMEOUT_EXTENSION_USEC),
            NotifyState::Watchdog,
        ]);
        self.last_status = line;
    }

    /// An upgrade ended (done, aborted, refused or rolled back): the reload is over.
    pub(crate) fn upgrade_ended(&mut self, record: &crate::events::UpgradeRecord) {
        if !self.enabled {
            return;
        }
        self.upgrading = false;
        let line = format!(
            "upgrade {} {}{}",
            record.number,
            record.outcome.label(),
            record
                .why
                .as_deref()
                .map(|w| format!(": {}", cut(w)))
                .unwrap_or_default()
        );
        if self.ready_sent {
            self.send(&[NotifyState::Ready, NotifyState::Status(&line)]);
        } else {
            self.send(&[NotifyState::Status(&line)]);
        }
        self.last_status = line;
    }

    /// How often to tell the service manager the loop is alive: half its watchdog timeout.
    pub(crate) fn watchdog_interval(&self) -> Option<Duration> {
        if !self.enabled {
            return None;
        }
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .is_none_or(|pid| pid == std::process::id());
        (for_us && usec > 0).then(|| Duration::from_micros(usec / 2))
    }

    pub(crate) fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    pub(crate) fn on_event(&mut self, e: &Event) {
        if !self.enabled {
            return;
        }
        match e {
            Event::RolloutStarted { .. } if self.ready_sent && !self.upgrading => {
                match NotifyState::monotonic_usec_now() {
                    Ok(now) => self.send(&[NotifyState::Reloading, now]),
                    Err(e) => tracing::warn!(error = %e, "cannot read the monotonic clock"),
                }
            }
            Event::RolloutDone { .. } | Event::RolloutAborted { .. }
                if self.ready_sent && !self.upgrading =>
            {
                self.send(&[NotifyState::Ready]);
            }
            Event::Stopping { forced: false } => self.send(&[NotifyState::Stopping]),
            _ => {}
        }
    }

    /// After every status change: the first time every slot serves, `READY=1`; the summary
    /// line whenever it reads differently.
    pub(crate) fn on_status(&mut self, status: &Status) {
        if !self.enabled {
            return;
        }
        let ready = status
            .workers
            .iter()
            .filter(|w| w.state == WorkerState::Ready)
            .count();
        if !self.ready_sent && !status.stopping && ready >= status.workers_wanted {
            self.ready_sent = true;
            self.send(&[NotifyState::Ready]);
        }
        let line = summary(status, ready);
        if line != self.last_status {
            self.send(&[NotifyState::Status(&line)]);
            self.last_status = line;
        }
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::debug!(error = %e, "sd_notify failed");
        }
    }
}

/// The longest reason a summary carries: a `STATUS=` line is read in `systemctl status`.
const WHY_IN_SUMMARY: usize = 160;

/// How much longer the service manager waits while the new master takes over after the exec:
/// it builds as the preflight did, which passed within the start timeout.
const EXEC_TIMEOUT_EXTENSION_USEC: u32 = 60_000_000;

/// `why` cut to [`WHY_IN_SUMMARY`] characters.
fn cut(why: &str) -> String {
    match why.char_indices().nth(WHY_IN_SUMMARY) {
        Some((at, _)) => format!("{}...", &why[..at]),
        None => why.to_owned(),
    }
}

/// `2/2 workers ready, generation 3 (good 3); last rollout 3 done`; an aborted rollout says
/// why (`; last rollout 4 aborted: not done within its rollout_timeout of 3m 35s ...`).
fn summary(status: &Status, ready: usize) -> String {
    let mut line = format!(
        "{ready}/{} workers ready, generation {} (good {})",
        status.workers_wanted, status.generation, status.good_generation
    );
    if let Some(r) = &status.last_rollout {
        let outcome = serde_json::to_value(r.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        line.push_str(&format!("; last rollout {} {outcome}", r.generation));
        if let (RolloutOutcome::Aborted, Some(why)) = (r.outcome, &r.why) {
            line.push_str(": ");
            line.push_str(&cut(why));
        }
    }
    if status.stopping {
        line.push_str("; stopping");
    }
    line
}
