//! The worker's end of the IPC channel, served by a thread of its own so that it works whatever
//! runtime (or none) the application uses. It is started with what it needs (the channel, what
//! the worker hands it, the drain it begins) as the worker attaches.
//!
//! This thread also hears the worker's SIGTERM and SIGINT, and exits the worker whose master is
//! gone once its drain outlived the deadline: it must never die. Its log calls go through
//! [`log_guard::survive`], after what they report was done.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};

use super::drain::Drain;
use crate::log_guard;
use crate::protocol::codec::{FrameDecoder, FrameEncoder};
use crate::protocol::{Incoming, MasterMessage, WorkerMessage};

/// What the worker's code hands the IPC thread, which writes it in that order.
#[derive(Debug)]
pub(super) enum Outgoing {
    /// A message for the master.
    Message(WorkerMessage),
    /// Answered once every message handed before it was written to the channel (or dropped:
    /// the master is gone), so that a worker about to exit knows its last words left.
    Flush(oneshot::Sender<()>),
}

pub(super) fn start(
    stream: std::os::unix::net::UnixStream,
    outbox: mpsc::UnboundedReceiver<Outgoing>,
    drain: Arc<Drain>,
) -> std::io::Result<()> {
    stream.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("regiment-ipc".into())
        .spawn(move || rt.block_on(run(stream, outbox, drain)))?;
    Ok(())
}

async fn run(
    stream: std::os::unix::net::UnixStream,
    mut outbox: mpsc::UnboundedReceiver<Outgoing>,
    drain: Arc<Drain>,
) {
    let stream = match tokio::net::UnixStream::from_std(stream) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "IPC channel unusable");
            return;
        }
    };
    let (r, w) = stream.into_split();
    let mut frames = FramedRead::new(r, FrameDecoder::<MasterMessage>::default());
    let mut sink = FramedWrite::new(w, FrameEncoder);
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    let mut master_alive = true;
    // Reports the master asked for, built on the blocking pool (they take a while: the stacks
    // are captured one thread at a time), written here.
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    loop {
        tokio::select! {
            Some(out) = outbox.recv() => match out {
                Outgoing::Message(msg) => {
                    if master_alive && let Err(e) = sink.send(msg).await {
                        log_guard::survive(|| {
                            tracing::warn!(error = %e, "could not write to the master")
                        });
                    }
                }
                // `send` returns once the frame is written: what came before is on its way.
                Outgoing::Flush(written) => {
                    let _ = written.send(());
                }
            },
            frame = frames.next(), if master_alive => match frame {
                Some(Ok(Incoming::Message(MasterMessage::Drain { deadline_ms }))) => {
                    drain.begin("the master asked", Duration::from_millis(deadline_ms));
                }
                Some(Ok(Incoming::Message(MasterMessage::Report { deadline_ms }))) => {
                    let deadline = Instant::now() + Duration::from_millis(deadline_ms);
                    let reports_tx = reports_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let _ = reports_tx.send(super::report::answer(deadline));
                    });
                }
                Some(Ok(Incoming::Invalid(why))) => {
                    log_guard::survive(|| {
                        tracing::warn!(%why, "ignored an unusable message from the master")
                    });
                }
                None | Some(Err(_)) => {
                    master_alive = false;
                    // Nobody is left to kill us at the deadline: do it ourselves, so that a
                    // worker never outlives its master for longer than a drain. Armed first,
                    // before anything is logged, on a thread of its own: a log write that
                    // blocks (a stderr pipe nobody reads) can hold this thread, not that one.
                    arm_orphan_exit(drain.timeout());
                    drain.begin("the master is gone", drain.timeout());
                }
            },
            Some(report) = reports.recv() => {
                if master_alive && let Err(e) = sink.send(WorkerMessage::Report(report)).await {
                    log_guard::survive(|| {
                        tracing::warn!(error = %e, "could not write a report to the master")
                    });
                }
            }
            Some(()) = recv(&mut term) => drain.begin("SIGTERM", drain.timeout()),
            Some(()) = recv(&mut int) => drain.begin("SIGINT", drain.timeout()),
        }
    }
}

/// Ends the process `deadline` from now: its master is gone, and nobody else will. By
/// `_exit`, without logging or flushing anything: either could block on an output nobody reads,
/// and an orphan must not outlive its drain. (The drain, logged as it began, says why.)
fn arm_orphan_exit(deadline: Duration) {
    let armed = std::thread::Builder::new()
        .name("regiment-orphan-exit".into())
        .spawn(move || {
            std::thread::sleep(deadline);
            signal_hook::low_level::exit(1);
        });
    if armed.is_err() {
        // No thread to spare: the drain's own end is the only way out left.
        log_guard::survive(|| tracing::error!("could not arm the exit of an orphaned worker"));
    }
}

async fn recv(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
