//! The signals a master obeys, turned into [`Control`] commands.

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::Control;

/// Installed handlers; each delivery becomes one command.
pub(crate) struct Signals {
    rx: mpsc::UnboundedReceiver<Control>,
}

impl Signals {
    /// Installs the handlers now (so a signal is never lost, nor takes its default action,
    /// after this returns): `restart` signals roll the workers, SIGTERM and SIGINT stop,
    /// SIGTTIN and SIGTTOU add and remove a worker.
    pub(super) fn install(restart: &[Signal]) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut table: Vec<(Signal, Control)> = restart
            .iter()
            .map(|s| (*s, Control::RollingRestart))
            .collect();
        table.extend([
            (Signal::SIGTERM, Control::Stop),
            (Signal::SIGINT, Control::Stop),
            (Signal::SIGTTIN, Control::ScaleUp),
            (Signal::SIGTTOU, Control::ScaleDown),
        ]);
        for (sig, control) in table {
            let mut stream = signal(SignalKind::from_raw(sig as i32))?;
            let tx = tx.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    tracing::info!(signal = %sig, "master received signal");
                    if tx.send(control.clone()).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Self { rx })
    }

    pub(super) async fn recv(&mut self) -> Option<Control> {
        self.rx.recv().await
    }
}
