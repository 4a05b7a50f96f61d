//! The new master's side of an upgrade in place: `Builder::build` in a process that an old
//! master executed finds the handover before anything else ([`Incoming::from_env`]) and takes
//! over ([`Incoming::take_over`]).
//!
//! Everything that can fail is done before a descriptor is taken: the file read, the options
//! checked, the signal handlers installed, the policy's state restored. Then every descriptor
//! is checked and taken, all or none (`handover::adopt`), and what is built around them cannot
//! fail. Any failure before that, a panic included, is the way back ([`super::rollback`]): the
//! previous program is executed again with the same handover, and reports the upgrade rolled
//! back. Only a master that is itself such a way back, or has no previous program to go back
//! to, returns the error.

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::super::handover::adopt::{self, Adopted};
use super::super::handover::envelope::Envelope;
use super::super::handover::{check_open, file};
use super::super::signals::Signals;
use super::exec::monotonic_ns;
use super::execute::unblock_signals;
use super::rollback;
use crate::config::{Builder, Config};
use crate::error::{Error, Result};
use crate::master::Supervisor;
use crate::master::policy::{Policy, PolicyState};
use crate::worker_vars;

/// A handover this process was given by the master it replaces.
pub(crate) struct Incoming {
    /// The descriptor number, as the variable gave it.
    value: String,
    /// The handover file, kept open until this master took over: the way back hands it on.
    file: Option<File>,
    /// The program this process ran before the exec, for the way back.
    previous: Option<OwnedFd>,
    /// Set when this process is the way back: the reason the new program could not take over.
    rolled_back: Option<String>,
}

/// What a master that took over starts from, beside its options: built in `takeover`, used by
/// the driver.
pub(crate) struct TakenOver {
    pub(crate) adopted: Adopted,
    pub(crate) policy: Policy,
    /// How the upgrade goes on: rolled out (`None`), or ended as rolled back, for this reason.
    pub(crate) rolled_back: Option<String>,
}

impl Incoming {
    /// The handover this process was given, if [`worker_vars::UPGRADE_HANDOVER_FD`] is set and
    /// it was not taken already (a second `build` in the process is a master started afresh).
    pub(crate) fn from_env() -> Option<Self> {
        static TAKEN: AtomicBool = AtomicBool::new(false);
        let value = std::env::var_os(worker_vars::UPGRADE_HANDOVER_FD)?;
        if TAKEN.swap(true, Ordering::SeqCst) {
            return None;
        }
        let previous = std::env::var(worker_vars::UPGRADE_PREVIOUS_FD)
            .ok()
            .and_then(|v| v.trim().parse::<RawFd>().ok())
            .filter(|fd| *fd > 2 && check_open(*fd, "the previous program").is_ok())
            // SAFETY: a descriptor the old master left open for this process under this
            // variable, checked to be open, and taken once (`TAKEN`): nothing else owns it.
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
        Some(Self {
            value: value.to_string_lossy().into_owned(),
            file: None,
            previous,
            rolled_back: std::env::var(worker_vars::UPGRADE_ROLLED_BACK).ok(),
        })
    }

    /// Takes over from the old master with `builder`'s options; if it cannot, goes back to the
    /// previous program (and does not return), or returns why when there is no way back.
    pub(crate) fn take_over(mut self, builder: Builder) -> Result<Supervisor> {
        let attempt =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.try_take_over(builder)));
        let why = match attempt {
            Ok(Ok(supervisor)) => return Ok(supervisor),
            Ok(Err(why)) => why,
            Err(panic) => format!("it panicked: {}", panic_message(&panic)),
        };
        tracing::error!(target: "regiment", "the new master cannot take over: {why}");
        if let Some(first) = &self.rolled_back {
            return Err(Error::TakeOver {
                why: format!(
                    "{why} (and this is already the previous program, executed again because \
                     the new one could not take over: {first})"
                ),
            });
        }
        let Some(previous) = self.previous.take() else {
            return Err(Error::TakeOver {
                why: format!("{why} (and there is no previous program to go back to)"),
            });
        };
        let refusal = rollback::go_back(previous, &self.value, self.file.take(), &why);
        Err(Error::TakeOver {
            why: format!("{why}; and the way back failed: {refusal}"),
        })
    }

    fn try_take_over(&mut self, builder: Builder) -> std::result::Result<Supervisor, String> {
        let file = file::open_named(&self.value).map_err(|e| e.to_string())?;
        let envelope = file::read(&file).map_err(|e| e.to_string());
        self.file = Some(file);
        let envelope = envelope?;
        let config = builder
            .into_config()
            .map_err(|e| format!("its options are refused: {e}"))?;
        let signals = Signals::install(&config.triggers.restart_signals)
            .map_err(|e| format!("cannot install its signal handlers: {e}"))?;
        let policy = restore(&config, &envelope)?;
        let adopted = adopt::adopt(envelope).map_err(|e| e.to_string())?;
        // Taken: from here on nothing fails, and the way back is no longer needed.
        let taken = TakenOver {
            adopted,
            policy,
            rolled_back: self.rolled_back.clone(),
        };
        let supervisor = Supervisor::taken_over(config, signals, taken);
        // Handlers installed: the signals blocked across the exec are delivered now.
        unblock_signals();
        self.file = None;
        self.previous = None;
        Ok(supervisor)
    }
}

/// The policy of the old master, restored under `config`, its deadlines short of the time the
/// exec took.
fn restore(config: &Config, envelope: &Envelope) -> std::result::Result<Policy, String> {
    let bytes = serde_json::to_vec(&envelope.policy).map_err(|e| e.to_string())?;
    let state = PolicyState::from_json(&bytes).map_err(|e| format!("its policy state: {e}"))?;
    let took =
        Duration::from_nanos(monotonic_ns().saturating_sub(envelope.master.snapshot_monotonic_ns));
    let now = Instant::now();
    let snapshot_at = now.checked_sub(took).unwrap_or(now);
    Policy::restore(config.policy, state, snapshot_at).map_err(|e| format!("its policy state: {e}"))
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| String::from("(no message)"))
}
