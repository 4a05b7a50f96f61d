//! The master: binds the listeners once, spawns and supervises the workers.
//!
//! ```no_run
//! # async fn run() -> Result<(), regiment_core::Error> {
//! let supervisor = regiment_core::Builder::new().workers(2).bind("127.0.0.1:3000").build()?;
//! let handle = supervisor.handle();
//! tokio::spawn(async move {
//!     let mut events = handle.events();
//!     while let Some(e) = events.recv().await {
//!         println!("{e:?}");
//!     }
//! });
//! supervisor.run().await // returns once SIGTERM/SIGINT stopped every worker
//! # }
//! ```

// The two halves (quinn's shape): `policy` decides, pure, on the time and the input it is
// given; `driver` does what the policy decided and is the only part that touches the OS. The
// faces (`admin`, `control`, `metrics`) show them to operators.
mod admin;
mod build;
mod control;
mod driver;
mod metrics;
pub(crate) mod policy;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::task::AbortOnDropHandle;

use crate::error::{Error, Result};
use crate::events::{Event, EventStream, RolloutRecord, Status};
use driver::{Command, signals, socket_file};
use policy::{Control, PolicyConfig};

/// A master ready to run: options checked, program resolved, listeners bound.
///
/// ```
/// use regiment_core::{Builder, EnvOverrides};
/// let supervisor = Builder::new()
///     .bind("127.0.0.1:0")
///     .env_overrides(EnvOverrides::Ignore)
///     .build()?;
/// // Bound, not running: the address can be published (or a test client set up) first.
/// assert_eq!(supervisor.listeners().len(), 1);
/// # Ok::<(), regiment_core::Error>(())
/// ```
pub struct Supervisor {
    driver: driver::Driver,
    /// Unix socket files this master created, removed when it returns or is dropped (not
    /// those systemd handed over: their files belong to the socket unit).
    socket_files: Vec<socket_file::SocketFile>,
    control_socket: Option<control::ControlSocket>,
    control: mpsc::UnboundedReceiver<Command>,
    handle: Handle,
    /// The admin listener, served while `run` runs.
    admin: Option<admin::Admin>,
    /// The signal handlers, installed at build: a signal before `run` waits for it.
    signals: signals::Signals,
    /// What the policy decides by, for the control socket's answers (how long a rollout or a
    /// stop may take).
    policy: PolicyConfig,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("listeners", &self.handle.status().listeners)
            .finish()
    }
}

impl Supervisor {
    /// The addresses listened on, in fd order (`127.0.0.1:3000`, `unix:/run/app.sock`); empty
    /// when no address was configured (workers that serve no socket, such as queue consumers).
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// let supervisor = Builder::new()
    ///     .bind("127.0.0.1:0")
    ///     .env_overrides(EnvOverrides::Ignore)
    ///     .build()?;
    /// println!("listening on {}", supervisor.listeners()[0]);
    /// // No address, no listener: workers that consume a queue serve no socket.
    /// let consumers = Builder::new().env_overrides(EnvOverrides::Ignore).build()?;
    /// assert!(consumers.listeners().is_empty());
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn listeners(&self) -> Vec<String> {
        self.handle.status().listeners
    }

    /// A handle to observe and steer the running supervisor.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// let supervisor = Builder::new().env_overrides(EnvOverrides::Ignore).build()?;
    /// // Taken before `run` consumes the supervisor, for an admin endpoint or a test.
    /// let handle = supervisor.handle();
    /// assert_eq!(handle.status().generation, 1);
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Spawns the workers and supervises them until a stop signal (or [`Handle::stop`]) and
    /// every worker has exited. The signal handlers were installed when the supervisor was
    /// built: a signal that came since (a SIGHUP, a SIGTERM) is acted on now.
    ///
    /// ```no_run
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), regiment_core::Error> {
    /// let supervisor = regiment_core::Builder::new().workers(4).bind("127.0.0.1:3000").build()?;
    /// // Returns once SIGTERM or SIGINT stopped every worker: the end of the master's `main`.
    /// supervisor.run().await
    /// # }
    /// ```
    pub async fn run(self) -> Result<()> {
        let Self {
            driver,
            socket_files,
            control_socket,
            control,
            handle,
            admin,
            signals,
            policy,
        } = self;
        // The admin listener and the control socket are served beside the driver, as tasks
        // that end when it returns: their open connections close then, which is how `regiment
        // stop --wait` learns that the master is done. They end too if the driver panics (the
        // handles abort them as they drop): a `/readyz` must not answer for a dead supervisor.
        // The control socket's file is removed when `_control_file` drops, at the end.
        let mut _control_file = None;
        let result = async {
            let mut beside = Vec::new();
            if let Some(control::ControlSocket { listener, file }) = control_socket {
                let listener =
                    tokio::net::UnixListener::from_std(listener).map_err(|source| Error::Io {
                        context: "serving the control socket",
                        source,
                    })?;
                beside.push(AbortOnDropHandle::new(tokio::spawn(control::serve(
                    listener,
                    handle.clone(),
                    policy,
                ))));
                _control_file = Some(file);
            }
            if let Some(admin) = admin {
                beside.push(AbortOnDropHandle::new(tokio::spawn(admin::serve(
                    admin,
                    handle.clone(),
                ))));
            }
            let result = driver.run(control, signals).await;
            for task in beside {
                task.abort();
                let _ = task.await;
            }
            result
        }
        .await;
        // Every worker is gone and our listeners with them: the files would only be stale.
        drop(socket_files);
        result
    }
}

/// Observes and steers a running [`Supervisor`]; cheap to clone.
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
    metrics: std::sync::Arc<metrics::Metrics>,
}

impl Handle {
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
    /// `generation`, `good_generation`, `rollouts_total{outcome}`,
    /// `replacements_total{reason}` (`rollout`, `rollout_aborted`, `unresponsive`, `operator`,
    /// `worker`, and for regiment-tower's criteria `request_count`, `memory`, `max_age`),
    /// `crashes_total`, `start_failures_total`, `kills_total{reason}` (`drain_deadline`, ...),
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

#[cfg(test)]
mod tests {
    use crate::{Builder, EnvOverrides, Error};

    #[test]
    fn a_busy_address_given_to_the_builder_is_an_error_naming_it() {
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = busy.local_addr().unwrap().to_string();
        let err = Builder::new()
            .workers(1)
            .bind("127.0.0.1:0")
            .bind(addr.clone())
            .env_overrides(EnvOverrides::Ignore)
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, Error::Bind { option: "bind", addr: a, .. } if *a == addr),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("`bind`") && text.contains(&addr) && text.contains("in use"),
            "{text}"
        );
    }
}
