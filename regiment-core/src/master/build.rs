//! Building a master from its checked options: [`Builder::build`] binds what
//! [`crate::config::ListenSettings`] names (or takes systemd's sockets), installs the signal
//! handlers, and hands the policy's settings and the spawn settings to the driver.

use tokio::sync::{broadcast, mpsc, watch};

use super::driver::preflight::check::Check;
use super::driver::upgrade::takeover::{Incoming, TakenOver};
use super::driver::{self, signals, socket_file};
use super::{Handle, Supervisor, admin, control};
use crate::config::{Builder, Config, ListenSettings};
use crate::error::{Error, Result};
use crate::events::Status;
use crate::listen::{self, Listener};

impl Builder {
    /// Checks the options, applies environment overrides, resolves the program, binds the
    /// listeners and installs the signal handlers (a SIGHUP or SIGTERM from now on waits for
    /// [`crate::Supervisor::run`] instead of killing the process). Nothing is spawned yet. Call
    /// `run` soon: until it runs, SIGTERM and SIGINT are only queued, so a `main` that blocks
    /// between the two (on a database, say) no longer ends on Ctrl+C; and the handlers stay
    /// once the supervisor is gone, so those signals no longer take their default action in
    /// that process.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides, Error};
    /// let supervisor = Builder::new()
    ///     .bind("127.0.0.1:0")
    ///     .env_overrides(EnvOverrides::Ignore)
    ///     .build()?;
    /// // Listening before any worker runs: early clients wait in the accept queue.
    /// assert!(supervisor.handle().status().workers.is_empty());
    /// // A busy address is an error now, not once workers are up.
    /// let busy = supervisor.listeners()[0].clone();
    /// let err = Builder::new()
    ///     .bind(busy)
    ///     .env_overrides(EnvOverrides::Ignore)
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, Error::Bind { .. }));
    /// # Ok::<(), regiment_core::Error>(())
    /// ```
    pub fn build(self) -> Result<Supervisor> {
        // Executed by an upgrade in place: the old master's listeners, workers and state are
        // taken over, nothing is bound (see `driver::upgrade`).
        if let Some(incoming) = Incoming::from_env() {
            return incoming.take_over(self);
        }
        Supervisor::new(self.into_config()?)
    }
}

/// What a master binds or takes at build, and holds for its whole life.
#[derive(Default)]
struct Held {
    listeners: Vec<Listener>,
    socket_files: Vec<socket_file::SocketFile>,
    admin: Option<admin::Admin>,
    control_socket: Option<control::ControlSocket>,
}

/// How the driver starts.
enum Start {
    /// A master started afresh (or a preflight's, if asked for).
    Fresh(Option<Check>),
    /// A master that took over from an old one.
    TakenOver(Box<driver::TakeOverStart>),
}

impl Supervisor {
    pub(crate) fn new(config: Config) -> Result<Self> {
        // A preflight builds as the real master does, but binds nothing: the old master holds
        // every address (see `driver::preflight`).
        let preflight = Check::requested()?;
        let held = match preflight {
            Some(_) => Held::default(),
            None => bind_all(&config)?,
        };
        // From here on, a SIGHUP or a SIGTERM is queued for `run` rather than killing the
        // process with its default action.
        let signals =
            signals::Signals::install(&config.triggers.restart_signals).map_err(|source| {
                Error::Io {
                    context: "installing signal handlers",
                    source,
                }
            })?;
        let names = listener_names(held.listeners.len());
        Self::assemble(config, held, names, signals, Start::Fresh(preflight))
    }

    /// The master that took over from an old one (see `driver::upgrade::takeover`): everything
    /// it holds was handed over, and nothing is left that can fail.
    pub(crate) fn taken_over(config: Config, signals: signals::Signals, taken: TakenOver) -> Self {
        let TakenOver {
            adopted,
            policy,
            rolled_back,
        } = taken;
        let held = Held {
            listeners: adopted.listeners,
            socket_files: (adopted.master.socket_files.iter())
                .map(socket_file::SocketFile::handed_over)
                .collect(),
            admin: (adopted.admin).map(|listener| admin::Admin::handed_over(listener, &config)),
            control_socket: adopted
                .control_socket
                .map(|(listener, file)| control::ControlSocket {
                    listener,
                    file: socket_file::SocketFile::handed_over(&file),
                }),
        };
        warn_on_new_addresses(&config, &held);
        let names = adopted.master.listener_names.clone();
        let start = Start::TakenOver(Box::new(driver::TakeOverStart {
            policy,
            workers: adopted.workers,
            programs: adopted.programs,
            master: adopted.master,
            rolled_back,
        }));
        match Self::assemble(config, held, names, signals, start) {
            Ok(supervisor) => supervisor,
            // `assemble` fails only where a fresh driver opens its program.
            Err(e) => unreachable!("a master that took over cannot fail to assemble: {e}"),
        }
    }

    /// The supervisor around what it holds, its driver started as `start` says.
    fn assemble(
        config: Config,
        held: Held,
        names: String,
        signals: signals::Signals,
        start: Start,
    ) -> Result<Self> {
        let Held {
            listeners,
            socket_files,
            admin,
            control_socket,
        } = held;
        crate::role::mark_supervising();
        let (events, _) = broadcast::channel(1024);
        let (status_tx, status_rx) = watch::channel(Status::default());
        let (control_tx, control) = mpsc::unbounded_channel();
        let config_addrs = configured_addrs(&config);
        let Config {
            policy,
            spawn,
            triggers,
            memory,
            kill_report_timeout,
            ..
        } = config;
        let parts = driver::DriverParts {
            memory,
            spawn,
            watch_program: triggers.watch_program,
            listeners,
            listener_names: names,
            events: events.clone(),
            status: status_tx,
            kill_report_timeout,
        };
        let (mut driver, preflight) = match start {
            Start::Fresh(preflight) => (driver::Driver::new(policy, parts)?, preflight),
            Start::TakenOver(taken) => (driver::Driver::taken_over(parts, *taken), None),
        };
        driver.set_admin_addr(admin.as_ref().map(|a| a.listener.describe()));
        if preflight.is_some() {
            // What the program reads between build and run (`listeners()`) is what the real
            // master would listen on: the addresses configured, not bound.
            driver.set_addrs(config_addrs);
        }
        // Listeners and pid are known now: a program can read them before `run`.
        driver.publish_status();
        let handle = Handle::new(
            control_tx,
            events,
            status_rx,
            driver.metrics(),
            driver.kill_reports(),
        );
        Ok(Self {
            driver,
            socket_files,
            control_socket,
            control,
            handle,
            admin,
            signals,
            policy,
            preflight,
        })
    }
}

/// The addresses the options name, as the status writes them (`127.0.0.1:3000`,
/// `unix:/run/app.sock`).
fn configured_addrs(config: &Config) -> Vec<String> {
    config
        .listen
        .binds
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Says so when the new options name other addresses than those handed over: a master that
/// took over keeps listening where the old one did (its workers accept there), until it is
/// started afresh.
fn warn_on_new_addresses(config: &Config, held: &Held) {
    let configured = configured_addrs(config);
    let held_addrs: Vec<String> = held.listeners.iter().map(Listener::describe).collect();
    if !configured.is_empty() && configured != held_addrs {
        tracing::warn!(
            target: "regiment",
            configured = %configured.join(","),
            listening = %held_addrs.join(","),
            "the new options bind other addresses; the master keeps listening where it did \
             until it is started afresh"
        );
    }
}

/// Binds (or takes from systemd) everything the master listens on. Each socket file is held
/// from its bind on: an error (the control socket is a live master's) removes those bound
/// before it.
fn bind_all(config: &Config) -> Result<Held> {
    let (listeners, mut socket_files) = take_or_bind(&config.listen)?;
    let admin = admin::bind(config)?;
    if let Some(admin) = &config.listen.admin
        && let listen::ListenAddr::Unix(path) = &admin.addr
    {
        socket_files.push(bound_file(path, admin.option)?);
    }
    let control_socket = config
        .listen
        .control_socket
        .as_ref()
        .map(|socket| {
            control::ControlSocket::bind(&socket.path).map_err(|source| Error::Bind {
                option: socket.option,
                addr: socket.path.display().to_string(),
                source,
            })
        })
        .transpose()?;
    Ok(Held {
        listeners,
        socket_files,
        admin,
        control_socket,
    })
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
fn take_or_bind(config: &ListenSettings) -> Result<(Vec<Listener>, Vec<socket_file::SocketFile>)> {
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
