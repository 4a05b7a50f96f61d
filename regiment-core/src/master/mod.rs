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
mod handle;
mod kill_reports;
mod metrics;
pub(crate) mod policy;
pub use handle::Handle;
// The parts of an upgrade in place built so far, for `plumbing::upgrade`.
pub(crate) use driver::handover::HANDOVER_VERSION;
pub(crate) use driver::preflight::run::preflight_at_path;

use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use crate::error::{Error, Result};
use driver::handover::envelope::{ControlEntry, ListenerEntry};
use driver::{Command, signals, socket_file};
use policy::PolicyConfig;
use std::os::fd::AsRawFd;

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
    /// Built for the preflight of an upgrade: `run` concludes it and exits, running nothing.
    preflight: Option<driver::preflight::check::Check>,
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
            preflight,
        } = self;
        // The master's `serve`, reached: a preflight ends here (see `driver::preflight`).
        if let Some(check) = preflight {
            check.conclude();
        }
        let mut driver = driver;
        driver.set_held_beside(driver::upgrade::HeldBeside {
            control_socket: control_socket.as_ref().map(|c| ControlEntry {
                fd: c.listener.as_raw_fd(),
                file: c.file.entry(),
            }),
            admin: admin.as_ref().map(|a| ListenerEntry::of(&a.listener)),
            socket_files: socket_files
                .iter()
                .map(socket_file::SocketFile::entry)
                .collect(),
        });
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
