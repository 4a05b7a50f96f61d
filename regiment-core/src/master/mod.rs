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
mod control;
mod driver;
mod handle;
mod metrics;
mod policy;
pub use handle::Handle;
pub(crate) use policy::CanaryConfig;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::task::AbortOnDropHandle;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::events::Status;
use crate::listen::{self, Listener};
use driver::{Command, signals, socket_file};

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
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("listeners", &self.handle.status().listeners)
            .finish()
    }
}

impl Supervisor {
    pub(crate) fn new(config: Config) -> Result<Self> {
        // Each socket file is held from its bind on: an error below (the control socket is a
        // live master's) removes those bound before it.
        let (listeners, mut socket_files) = take_or_bind(&config)?;
        let admin = admin::bind(&config)?;
        if let Some(admin) = &config.admin_bind
            && let listen::ListenAddr::Unix(path) = &admin.addr
        {
            socket_files.push(bound_file(path, admin.option)?);
        }
        let control_socket = config
            .control_socket
            .as_ref()
            .map(|(path, option)| {
                control::ControlSocket::bind(path).map_err(|source| Error::Bind {
                    option,
                    addr: path.display().to_string(),
                    source,
                })
            })
            .transpose()?;
        // From here on, a SIGHUP or a SIGTERM is queued for `run` rather than killing the
        // process with its default action.
        let signals =
            signals::Signals::install(&config.restart_signals).map_err(|source| Error::Io {
                context: "installing signal handlers",
                source,
            })?;
        crate::worker::SUPERVISING.store(true, std::sync::atomic::Ordering::Relaxed);
        let (events, _) = broadcast::channel(1024);
        let (status_tx, status_rx) = watch::channel(Status::default());
        let (control_tx, control) = mpsc::unbounded_channel();
        let names = listener_names(listeners.len());
        let mut driver = driver::Driver::new(config, listeners, names, events.clone(), status_tx)?;
        driver.set_admin_addr(admin.as_ref().map(|a| a.listener.describe()));
        // Listeners and pid are known now: a program can read them before `run`.
        driver.publish_status();
        let handle = Handle::new(control_tx, events, status_rx, driver.metrics());
        Ok(Self {
            driver,
            socket_files,
            control_socket,
            control,
            handle,
            admin,
            signals,
        })
    }

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
                let policy = driver.policy_config();
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

/// The names workers get in `LISTEN_FDNAMES`: those systemd gave the master's sockets (socket
/// activation, one name per socket), else `regiment0:regiment1:...`.
fn listener_names(count: usize) -> String {
    let activated = listen::activation_env().is_some_and(|env| env.count == count);
    std::env::var("LISTEN_FDNAMES")
        .ok()
        .filter(|names| activated && names.split(':').count() == count)
        .unwrap_or_else(|| {
            (0..count)
                .map(|i| format!("regiment{i}"))
                .collect::<Vec<_>>()
                .join(":")
        })
}

/// Takes the listeners from systemd socket activation, if this master was started that way,
/// else binds the configured addresses. Any failure is an error before a worker is started.
/// Also returns the Unix socket files it created, removed when dropped: an address that cannot
/// be bound leaves no file of those bound before it.
fn take_or_bind(config: &Config) -> Result<(Vec<Listener>, Vec<socket_file::SocketFile>)> {
    let inherited = listen::take_inherited().map_err(|source| Error::Io {
        context: "taking listeners from LISTEN_FDS",
        source,
    })?;
    if !inherited.is_empty() {
        return Ok((inherited, Vec::new()));
    }
    let mut listeners = Vec::with_capacity(config.binds.len());
    let mut files = Vec::new();
    for addr in &config.binds {
        let listener = listen::bind(addr).map_err(|source| Error::Bind {
            option: config.bind_option,
            addr: addr.to_string(),
            source,
        })?;
        if let listen::ListenAddr::Unix(path) = addr {
            files.push(bound_file(path, config.bind_option)?);
        }
        listeners.push(listener);
    }
    Ok((listeners, files))
}

/// The file of a Unix socket just bound at `path` (given by `option`).
fn bound_file(path: &std::path::Path, option: &'static str) -> Result<socket_file::SocketFile> {
    socket_file::SocketFile::bound_at(path).map_err(|source| Error::Bind {
        option,
        addr: format!("unix:{}", path.display()),
        source,
    })
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
