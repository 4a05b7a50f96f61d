//! [`Handle`]: what a program, the admin listener and the control socket observe and steer a
//! running supervisor through.

use tokio::sync::{broadcast, mpsc, watch};

use super::driver::Command;
use super::kill_reports::KillReports;
use super::metrics;
use super::policy::Control;
use crate::events::{Event, EventStream, KillReport, RolloutRecord, Status, UpgradeRecord};

/// Observes and steers a running [`crate::Supervisor`]; cheap to clone.
///
/// ```
/// use regiment_core::{Builder, EnvOverrides};
/// let supervisor = Builder::new().env_overrides(EnvOverrides::Ignore).build()?;
/// // Cheap to clone: one for the admin endpoint, one for the metrics exporter.
/// let (admin, metrics) = (supervisor.handle(), supervisor.handle().clone());
/// assert_eq!(admin.status(), metrics.status());
/// # Ok::<(), regiment_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Handle {
    control: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<Event>,
    status: watch::Receiver<Status>,
    pub(super) metrics: std::sync::Arc<metrics::Metrics>,
    kill_reports: std::sync::Arc<KillReports>,
}

impl Handle {
    /// The handle of a supervisor: its command queue, event stream, status and metrics.
    pub(super) fn new(
        control: mpsc::UnboundedSender<Command>,
        events: broadcast::Sender<Event>,
        status: watch::Receiver<Status>,
        metrics: std::sync::Arc<metrics::Metrics>,
        kill_reports: std::sync::Arc<KillReports>,
    ) -> Self {
        Self {
            control,
            events,
            status,
            metrics,
            kill_reports,
        }
    }

    /// The reports the master took of workers before it killed them, oldest first: the last
    /// [`KillReport::KEPT`] (see [`crate::Builder::kill_report_timeout`]).
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// let supervisor = Builder::new().env_overrides(EnvOverrides::Ignore).build()?;
    /// let handle = supervisor.handle();
    /// // No worker was killed yet.
    /// assert!(handle.kill_reports().is_empty());
    /// assert_eq!(handle.kill_report(1), None);
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn kill_reports(&self) -> Vec<KillReport> {
        self.kill_reports.list()
    }

    /// Kill report `id` ([`KillReport::id`]), if it is still kept.
    pub fn kill_report(&self, id: u64) -> Option<KillReport> {
        self.kill_reports.get(id)
    }

    /// Subscribes to lifecycle events from now on.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), regiment_core::Error> {
    /// let supervisor = Builder::new().env_overrides(EnvOverrides::Ignore).build()?;
    /// // Subscribe before `run` to see every event, `Listening` included.
    /// let mut events = supervisor.handle().events();
    /// drop(supervisor); // here it never runs: the stream just ends
    /// assert!(events.recv().await.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub fn events(&self) -> EventStream {
        EventStream {
            rx: self.events.subscribe(),
        }
    }

    /// A snapshot of workers, slots and generations.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// let supervisor = Builder::new().workers(2).env_overrides(EnvOverrides::Ignore).build()?;
    /// // Cheap (a clone of the last snapshot): fine for every request of a status page.
    /// let status = supervisor.handle().status();
    /// assert_eq!(status.workers_wanted, 2);
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// The metrics of the running supervisor, in the Prometheus text exposition format 0.0.4
    /// (`Content-Type: text/plain; version=0.0.4; charset=utf-8`), as the admin listener serves
    /// them at `/metrics` ([`crate::Builder::admin_bind`]). Families, prefixed `regiment_`, in
    /// base units, counters ending in `_total`: `workers{state}`, `workers_wanted`,
    /// `generation`, `good_generation`, `rollouts_total{outcome}`, `upgrades_total{outcome}`
    /// (`done`, `aborted`, `refused`, `rolled_back`: upgrades of the master in place, see
    /// [`Handle::upgrade`]), `replacements_total{reason}` (`rollout`, `rollout_aborted`,
    /// `unresponsive`, `operator`; for a worker's own request, the criterion it named:
    /// regiment-tower's `request_count`, `memory`, `max_age`, `custom` for any criterion of the
    /// application's, whatever its name, and `worker` when it named none),
    /// `crashes_total`, `start_failures_total`, `kills_total{reason}` (the master's kills:
    /// `drain_deadline`, `start_timeout`, `forced_stop`, `ipc_setup_failed`; and the kernel's OOM
    /// killer's, `oom`, in whatever phase the worker was),
    /// `log_lines_lost_total` (lines the master could not write through [`crate::LogWriter`]);
    /// per slot, from its worker's last heartbeat: `worker_resident_memory_bytes{slot}`,
    /// `worker_requests_total{slot}`, `worker_in_flight_requests{slot}`,
    /// `worker_responses_5xx_total{slot}`, `worker_age_seconds{slot}`. Every label takes its
    /// values from a fixed set (slots: those of the current workers), never from free text.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// let supervisor = Builder::new().workers(2).env_overrides(EnvOverrides::Ignore).build()?;
    /// // Served by an endpoint of the program's own, or printed by a command.
    /// let text = supervisor.handle().metrics();
    /// assert!(text.contains("# TYPE regiment_workers_wanted gauge\nregiment_workers_wanted 2\n"));
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn metrics(&self) -> String {
        self.metrics.encode(self.status())
    }

    /// Starts a rolling restart, as SIGHUP does.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// let supervisor = Builder::new().env_overrides(EnvOverrides::Ignore).build()?;
    /// let handle = supervisor.handle(); // sent before `run`, a command waits for it
    /// // A deploy tool that cannot send signals asks through an admin endpoint instead.
    /// handle.rolling_restart();
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn rolling_restart(&self) {
        let _ = self.control.send(Command::Control(Control::RollingRestart));
    }

    /// Starts a rolling restart, as SIGHUP does, and waits for its outcome: done (the new
    /// generation serves in every slot and is now the good one), aborted (its workers kept
    /// failing: the previous workers stay) or superseded (a newer rolling restart took over).
    /// `None` when no rollout was started: the master is stopping, or gone.
    ///
    /// ```no_run
    /// # async fn deploy(handle: regiment_core::Handle) -> Result<(), String> {
    /// use regiment_core::events::RolloutOutcome;
    /// // The last step of a deploy: the new binary is at the program path.
    /// let record = handle.rolling_restart_and_wait().await.ok_or("master stopping")?;
    /// if record.outcome != RolloutOutcome::Done {
    ///     return Err(format!("generation {} refused: {:?}", record.generation, record.why));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn rolling_restart_and_wait(&self) -> Option<RolloutRecord> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.control.send(Command::RollingRestartAndWait(tx)).ok()?;
        rx.await.ok().flatten()
    }

    /// Upgrades the master in place, as SIGUSR2 does: the program now at the master's path is
    /// checked (its preflight), then executed by this very process (same pid), which keeps its
    /// listeners, control socket, admin listener and every worker, and then rolls the workers
    /// to the new build with every gate of a rolling restart. `Ok` with the upgrade's number
    /// once it began; `Err` says why none began (one is under way, the master is stopping).
    ///
    /// How it ends is the status's [`Status::last_upgrade`]: the process that called this is
    /// replaced by the new program if the upgrade goes through, so a deploy script asks the
    /// new master (`regiment upgrade --wait` does).
    ///
    /// ```no_run
    /// # async fn deploy(handle: regiment_core::Handle) {
    /// match handle.upgrade().await {
    ///     Ok(number) => println!("upgrade {number} begun"),
    ///     Err(why) => eprintln!("no upgrade: {why}"),
    /// }
    /// # }
    /// ```
    pub async fn upgrade(&self) -> std::result::Result<u64, String> {
        let (answer, begun) = tokio::sync::oneshot::channel();
        let gone = || "the master is stopping".to_string();
        self.control
            .send(Command::Upgrade { answer })
            .map_err(|_| gone())?;
        begun.await.map_err(|_| gone())?
    }

    /// Waits for upgrade `number` to end in this master: its record once it ended (at once if
    /// it has). `None` if this master knows no such upgrade, or stops (or hands over to its
    /// new program) first. For the control socket's `upgrade --wait`, which asks again the
    /// master that runs after the exec.
    pub(crate) async fn upgrade_outcome(&self, number: u64) -> Option<UpgradeRecord> {
        let (answer, ended) = tokio::sync::oneshot::channel();
        self.control
            .send(Command::UpgradeOutcome { number, answer })
            .ok()?;
        ended.await.ok().flatten()
    }

    /// Stops gracefully, as SIGTERM does; a second call kills the workers.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// let supervisor = Builder::new().env_overrides(EnvOverrides::Ignore).build()?;
    /// let handle = supervisor.handle();
    /// // Graceful, as SIGTERM: workers finish what they serve, then `run` returns.
    /// handle.stop();
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn stop(&self) {
        let _ = self.control.send(Command::Control(Control::Stop));
    }

    /// Replaces the worker of `slot` (new one first, as for a worker's own request). Refused,
    /// with a warning, when the slot has no worker (none such, or its worker exited and the
    /// next one is not there yet) or the master is stopping.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// let supervisor = Builder::new().env_overrides(EnvOverrides::Ignore).build()?;
    /// let handle = supervisor.handle();
    /// // An operator replaces a worker that misbehaves, without losing its slot's capacity.
    /// handle.replace(0, "leaking file descriptors");
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn replace(&self, slot: usize, reason: impl Into<String>) {
        let _ = self.control.send(Command::Control(Control::Replace {
            slot,
            reason: reason.into(),
        }));
    }

    /// [`Handle::replace`], answered: `Err` says why the master refused it (no such slot, no
    /// worker in it now, stopping). For the control socket's `replace`.
    pub(crate) async fn replace_answered(
        &self,
        slot: usize,
        reason: impl Into<String>,
    ) -> std::result::Result<(), String> {
        let (answer, taken) = tokio::sync::oneshot::channel();
        let command = Command::Replace {
            slot,
            reason: reason.into(),
            answer,
        };
        let gone = || "the master is stopping".to_string();
        self.control.send(command).map_err(|_| gone())?;
        taken.await.map_err(|_| gone())?
    }

    /// One worker more, as SIGTTIN does; refused, with a warning, past [`crate::MAX_WORKERS`].
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// let supervisor = Builder::new().env_overrides(EnvOverrides::Ignore).build()?;
    /// let handle = supervisor.handle();
    /// // More traffic: one worker more, in a new slot.
    /// handle.scale_up();
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn scale_up(&self) {
        let _ = self.control.send(Command::Control(Control::ScaleUp));
    }

    /// One worker fewer (never below one), as SIGTTOU does.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// let supervisor = Builder::new().env_overrides(EnvOverrides::Ignore).build()?;
    /// let handle = supervisor.handle();
    /// // Less traffic: the last slot's worker is drained.
    /// handle.scale_down();
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn scale_down(&self) {
        let _ = self.control.send(Command::Control(Control::ScaleDown));
    }

    /// Scales to `workers` (never below one): new slots are filled, the last slots' workers
    /// drained, as `regiment scale N` does. More than [`crate::MAX_WORKERS`] is refused, with a
    /// warning.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// let supervisor = Builder::new().workers(2).env_overrides(EnvOverrides::Ignore).build()?;
    /// // The evening's traffic fits in one worker.
    /// supervisor.handle().scale_to(1);
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn scale_to(&self, workers: usize) {
        let _ = self
            .control
            .send(Command::Control(Control::ScaleTo(workers)));
    }

    /// Resolves once the supervisor has returned (or was dropped without running).
    pub(crate) async fn finished(&self) {
        let mut status = self.status.clone();
        while status.changed().await.is_ok() {}
    }
}
