//! The signals a master obeys, turned into what they ask ([`Asked`]).
//!
//! The handlers are installed when the supervisor is built, not when it runs: a SIGHUP or a
//! SIGTERM that arrives between `build()` and `run()` (while the program sets up the rest of its
//! `main`) must neither kill the master with its default action nor be lost. Building needs no
//! runtime, and tokio's handlers need one, so each signal's handler writes a byte to a
//! socketpair of its own (signal-hook's self-pipe, on the registry tokio's handlers use too);
//! the bytes wait there until the running master reads them, one command per delivery.

use std::os::unix::net::UnixStream;

use nix::sys::signal::Signal;
use signal_hook::SigId;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::master::policy::Control;

/// What a signal asks of the master.
#[derive(Debug, Clone)]
pub(crate) enum Asked {
    /// A command of the policy's.
    Control(Control),
    /// An upgrade in place ([`crate::defaults::UPGRADE_SIGNAL`]).
    Upgrade,
}

/// Handlers installed, their deliveries queued until [`Signals::listen`].
pub(crate) struct Signals {
    /// Each signal, what it asks, and the end of its socketpair its handler writes to.
    queued: Vec<(Signal, Asked, UnixStream)>,
    /// The handlers, removed when the supervisor goes (their write ends close with them).
    ids: Vec<SigId>,
}

impl Signals {
    /// Installs the handlers now (so a signal is never lost, nor takes its default action,
    /// after this returns): `restart` signals roll the workers, SIGUSR2 upgrades the master,
    /// SIGTERM and SIGINT stop, SIGTTIN and SIGTTOU add and remove a worker. Needs no runtime.
    pub(crate) fn install(restart: &[Signal]) -> std::io::Result<Self> {
        let mut table: Vec<(Signal, Asked)> = restart
            .iter()
            .map(|s| (*s, Asked::Control(Control::RollingRestart)))
            .collect();
        table.extend([
            (crate::defaults::UPGRADE_SIGNAL, Asked::Upgrade),
            (Signal::SIGTERM, Asked::Control(Control::Stop)),
            (Signal::SIGINT, Asked::Control(Control::Stop)),
            (Signal::SIGTTIN, Asked::Control(Control::ScaleUp)),
            (Signal::SIGTTOU, Asked::Control(Control::ScaleDown)),
        ]);
        let mut signals = Self {
            queued: Vec::with_capacity(table.len()),
            ids: Vec::with_capacity(table.len()),
        };
        for (sig, asked) in table {
            // Close-on-exec, both ends: no worker inherits them.
            let (read, write) = UnixStream::pair()?;
            read.set_nonblocking(true)?;
            // Dropped on an error, `signals` removes the handlers installed so far.
            signals
                .ids
                .push(signal_hook::low_level::pipe::register(sig as i32, write)?);
            signals.queued.push((sig, asked, read));
        }
        Ok(signals)
    }

    /// Starts reading the deliveries, those queued since [`Signals::install`] first, from the
    /// calling runtime: each becomes one command.
    pub(super) fn listen(mut self) -> std::io::Result<Listening> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut readers = Vec::with_capacity(self.queued.len());
        for (sig, asked, read) in self.queued.drain(..) {
            let mut read = tokio::net::UnixStream::from_std(read)?;
            let tx = tx.clone();
            readers.push(tokio::spawn(async move {
                let mut deliveries = [0u8; 64];
                // Ends when the handler is removed (its write end closes) or the driver is gone.
                while let Ok(n @ 1..) = read.read(&mut deliveries).await {
                    for _ in 0..n {
                        // Forwarded before it is logged: a log that panics (a closed stderr)
                        // must not end this task, or the master would be deaf to the signal.
                        if tx.send(asked.clone()).is_err() {
                            return;
                        }
                        crate::log_guard::survive(
                            || tracing::info!(signal = %sig, "master received signal"),
                        );
                    }
                }
            }));
        }
        Ok(Listening {
            rx,
            readers,
            _handlers: self,
        })
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// The deliveries of a running master, as commands.
pub(super) struct Listening {
    rx: mpsc::UnboundedReceiver<Asked>,
    readers: Vec<JoinHandle<()>>,
    /// Kept installed while the master runs.
    _handlers: Signals,
}

impl Listening {
    pub(super) async fn recv(&mut self) -> Option<Asked> {
        self.rx.recv().await
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }
}
