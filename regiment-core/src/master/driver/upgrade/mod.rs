//! An upgrade in place (issue 23), the driver's half; the policy's is `policy::upgrade`.
//!
//! The old master:
//! 1. [`Effect::Upgrade`] (from `regiment upgrade`, [`crate::Handle::upgrade`] or SIGUSR2):
//!    the program now at the master's path is opened and pinned, and run in check mode (its
//!    preflight, `driver::preflight`) by a task of its own, so that the loop serves on.
//! 2. Passed, the exec waits for a quiet moment: no worker whose exit waits for its channel's
//!    EOF, no channel closed of a worker not reaped yet (bounded by [`QUIET_WITHIN`]).
//! 3. `exec.rs`: every channel task gives its stream back (`channels.rs`), what they read is
//!    handed to the policy, the policy's state is taken, the handover file written, the
//!    survivors made inheritable, and the pinned program executed, same pid
//!    (`command_line.rs`, `execute.rs`). If anything fails, the channels are served again and
//!    the upgrade is refused: this master goes on.
//!
//! The new master (`takeover.rs`): `Builder::build` finds the handover before anything else,
//! adopts every descriptor, restores the policy and builds the driver around them; `run` then
//! rolls the workers to the new build. If it cannot take over, it executes the previous program
//! again with the same handover (`rollback.rs`), which reports the upgrade rolled back.

mod channels;
mod command_line;
mod exec;
mod execute;
mod resume;
pub(crate) mod rollback;
pub(crate) mod takeover;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_util::task::AbortOnDropHandle;

use super::Driver;
use super::handover::HANDOVER_VERSION;
use super::handover::envelope::{ControlEntry, ListenerEntry, SocketFileEntry};
use super::preflight::run::Preflight;
use super::program::Program;
use crate::events::{UpgradeOutcome, UpgradeRecord};
use exec::HandOverEnd;

/// How long a passed preflight waits for a quiet moment to exec in: a worker's exit waits at
/// most a second for its channel's EOF, so only a master that keeps losing workers is never
/// quiet this long.
const QUIET_WITHIN: Duration = Duration::from_secs(10);
/// How soon the loop looks again for a quiet moment.
const QUIET_RETRY: Duration = Duration::from_millis(20);

/// The descriptors the master holds beside the driver's (served by tasks of `Supervisor::run`),
/// as the handover names them.
#[derive(Debug, Default)]
pub(crate) struct HeldBeside {
    pub(crate) control_socket: Option<ControlEntry>,
    pub(crate) admin: Option<ListenerEntry>,
    pub(crate) socket_files: Vec<SocketFileEntry>,
}

/// The upgrade this driver carries out.
pub(super) struct UpgradeRun {
    number: u64,
    /// The new program, pinned: what the preflight ran is what the exec executes.
    program: Arc<Program>,
    stage: RunStage,
}

enum RunStage {
    /// The new program runs in check mode; the task reports to the loop.
    Preflight { _task: AbortOnDropHandle<()> },
    /// Passed: the exec waits for a quiet moment, until `give_up_at`.
    Quiet { give_up_at: Instant },
}

/// A preflight's end, reported to the loop.
#[derive(Debug)]
pub(super) struct PreflightDone {
    number: u64,
    result: Result<(), String>,
}

impl Driver {
    /// Begins an upgrade, as asked by a command or SIGUSR2: its number, or why none began.
    pub(super) fn begin_upgrade(&mut self) -> Result<u64, String> {
        self.policy.begin_upgrade(self.clock.now())
    }

    /// Answers `answer` with the end of upgrade `number`: now if it ended, when it ends if it
    /// is under way, `None` if this master knows no such upgrade.
    pub(super) fn upgrade_outcome(
        &mut self,
        number: u64,
        answer: oneshot::Sender<Option<UpgradeRecord>>,
    ) {
        let wall = self.wall_clock();
        match self.policy.last_upgrade().filter(|u| u.number == number) {
            Some(log) if log.outcome != UpgradeOutcome::InProgress => {
                let _ = answer.send(Some(log.record(wall)));
            }
            Some(_) => self.upgrade_waiters.entry(number).or_default().push(answer),
            None => {
                let _ = answer.send(None);
            }
        }
    }

    /// Answers whoever waits for upgrade `record.number`.
    pub(super) fn upgrade_ended(&mut self, record: &UpgradeRecord) {
        if self
            .upgrade
            .as_ref()
            .is_some_and(|run| run.number == record.number)
        {
            // Ended by the policy (a stop) while the driver was at it: the preflight's task is
            // aborted as it drops.
            self.upgrade = None;
        }
        for waiter in self
            .upgrade_waiters
            .remove(&record.number)
            .unwrap_or_default()
        {
            let _ = waiter.send(Some(record.clone()));
        }
        self.notifier.upgrade_ended(record);
    }

    /// [`super::super::policy::Effect::Upgrade`]: pins the program at the master's path and
    /// starts its preflight.
    pub(super) fn start_upgrade(&mut self, number: u64) {
        self.notifier.upgrade_began(number);
        let path = match &self.master_path {
            Ok(path) => path.clone(),
            Err(why) => {
                let why = format!("the master's own program cannot be found: {why}");
                return self.refuse_upgrade(number, why);
            }
        };
        let program = match Program::open(&path) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                return self.refuse_upgrade(number, format!("cannot open the new program: {e}"));
            }
        };
        tracing::info!(target: "regiment", number, program = %path.display(), "upgrade: preflight of the new program");
        let (argv0, args) = command_line::arguments();
        let bound = self.upgrade_preflight_bound;
        let report = self.preflights_tx.clone();
        let pinned = program.clone();
        let task = tokio::spawn(async move {
            let preflight = Preflight {
                program: &pinned,
                argv0: &argv0,
                args: &args,
                extra_env: &[],
                version: HANDOVER_VERSION,
                bound,
            };
            let result = preflight.run().await.map_err(|refusal| refusal.to_string());
            let _ = report.send(PreflightDone { number, result });
        });
        self.upgrade = Some(UpgradeRun {
            number,
            program,
            stage: RunStage::Preflight {
                _task: AbortOnDropHandle::new(task),
            },
        });
    }

    /// The preflight of upgrade `done.number` ended: refused, or on to the exec.
    pub(super) fn preflight_done(&mut self, done: PreflightDone) {
        let Some(run) = self.upgrade.as_mut().filter(|r| r.number == done.number) else {
            return;
        };
        match done.result {
            Ok(()) => {
                tracing::info!(target: "regiment", number = done.number, "upgrade: preflight passed");
                run.stage = RunStage::Quiet {
                    give_up_at: Instant::now() + QUIET_WITHIN,
                };
            }
            Err(why) => self.refuse_upgrade(done.number, why),
        }
    }

    /// When the loop must look again for a quiet moment to exec in.
    pub(super) fn upgrade_due(&self) -> Option<Instant> {
        match self.upgrade.as_ref()?.stage {
            RunStage::Quiet { .. } => Some(Instant::now() + QUIET_RETRY),
            RunStage::Preflight { .. } => None,
        }
    }

    /// Executes the new program if the upgrade passed its preflight and the master is quiet;
    /// returns only if it did not (not quiet yet, or refused).
    pub(super) async fn exec_if_quiet(&mut self) {
        let Some(UpgradeRun {
            number,
            program,
            stage: RunStage::Quiet { give_up_at },
        }) = &self.upgrade
        else {
            return;
        };
        let (number, program, give_up_at) = (*number, program.clone(), *give_up_at);
        let not_quiet = match self.unquiet() {
            Some(why) => why,
            None => match self.hand_over(number, &program).await {
                HandOverEnd::NotQuiet(why) => why,
                HandOverEnd::Failed(why) => return self.refuse_upgrade(number, why),
            },
        };
        if Instant::now() >= give_up_at {
            let why = format!(
                "the master was not quiet enough to hand over within {}: {not_quiet}",
                humantime::format_duration(QUIET_WITHIN)
            );
            self.refuse_upgrade(number, why);
        }
    }

    /// Why the master is not quiet enough to hand over now, if it is not: a worker's exit
    /// waits for its channel, or a channel closed before its worker was reaped.
    fn unquiet(&self) -> Option<String> {
        if self.kill_reporter.is_taking() {
            // Its kill waits for it: this master sends it.
            return Some("a report before a kill is being taken".into());
        }
        if let Some(id) = self.reaped.keys().next() {
            return Some(format!(
                "the exit of worker {id} waits for its channel's end"
            ));
        }
        if let Some((id, p)) = self.processes.iter().find(|(_, p)| p.channel_closed) {
            return Some(format!(
                "worker {id} (pid {}) closed its channel and is not reaped yet",
                p.pid
            ));
        }
        None
    }

    fn refuse_upgrade(&mut self, number: u64, why: String) {
        tracing::error!(target: "regiment", number, "upgrade refused: {why}");
        self.upgrade = None;
        self.policy.upgrade_refused(self.clock.now(), number, why);
    }
}
