//! The master's end of one worker's IPC channel, served by a task of its own.
//!
//! The task forwards what the worker says to the supervisor loop through a bounded channel, so
//! a worker that floods its channel only slows its own task, never the loop or other workers.
//!
//! It also writes what the loop tells the worker. A drain carries the instant of the worker's
//! SIGKILL, and the task turns it into the time left as it writes the frame: the worker, whose
//! clock may not be ours to read, counts from when it reads that frame, so it can only err late
//! by the frame's transit (it stops waiting a margin before the deadline, see
//! `regiment_core::worker::drain_deadline`).

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::master::policy::WorkerId;
use crate::protocol::codec::{FrameDecoder, FrameEncoder};
use crate::protocol::{Incoming, MasterMessage, WorkerMessage};

/// What the supervisor loop tells a worker, through its channel task.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ToWorker {
    /// Drain; the master kills the worker at `kill_at`.
    Drain { kill_at: Instant },
}

impl ToWorker {
    /// The message as written now.
    fn message(self) -> MasterMessage {
        match self {
            ToWorker::Drain { kill_at } => {
                let left = kill_at.saturating_duration_since(Instant::now());
                MasterMessage::Drain {
                    deadline_ms: u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
                }
            }
        }
    }
}

/// What a channel task reports to the supervisor loop, tagged with the worker's id.
#[derive(Debug)]
pub(crate) enum FromWorker {
    Message(WorkerId, WorkerMessage),
    Invalid(WorkerId, String),
    Closed(WorkerId),
}

/// Starts the task; returns the sender for messages to the worker.
pub(crate) fn start(
    id: WorkerId,
    stream: std::os::unix::net::UnixStream,
    to_loop: mpsc::Sender<FromWorker>,
) -> std::io::Result<mpsc::Sender<ToWorker>> {
    stream.set_nonblocking(true)?;
    let stream = tokio::net::UnixStream::from_std(stream)?;
    let (tx, mut outbox) = mpsc::channel::<ToWorker>(4);
    tokio::spawn(async move {
        let (r, w) = stream.into_split();
        let mut frames = FramedRead::new(r, FrameDecoder::<WorkerMessage>::default());
        let mut sink = FramedWrite::new(w, FrameEncoder);
        let mut writable = true;
        let mut outbox_open = true;
        loop {
            tokio::select! {
                // The driver itself is gone (a panic, in a runtime that lives on). The worker
                // must not wait for a master that is no more: the channel closes now, and its
                // EOF tells it.
                () = to_loop.closed() => return,
                msg = outbox.recv(), if outbox_open => match msg {
                    Some(msg) => {
                        if writable && let Err(e) = sink.send(msg.message()).await {
                            tracing::debug!(%id, error = %e, "could not write to worker");
                            writable = false;
                        }
                    }
                    // The driver reaped this worker: what it wrote before it exited is still
                    // read, to the EOF its exit left, so that its exit is booked after its last
                    // words (see the driver's `exits`).
                    None => outbox_open = false,
                },
                frame = frames.next() => {
                    let report = match frame {
                        Some(Ok(Incoming::Message(m))) => FromWorker::Message(id, m),
                        Some(Ok(Incoming::Invalid(why))) => FromWorker::Invalid(id, why),
                        // A reset is how a killed worker's channel ends: not the worker's words.
                        Some(Err(e)) => {
                            tracing::debug!(%id, error = %e, "IPC channel read error");
                            FromWorker::Closed(id)
                        }
                        None => FromWorker::Closed(id),
                    };
                    let closed = matches!(report, FromWorker::Closed(_));
                    if to_loop.send(report).await.is_err() || closed {
                        break;
                    }
                }
            }
        }
        // Keep the write half open until the worker is gone: a drain may still be sent.
        while outbox_open && let Some(msg) = outbox.recv().await {
            if writable && sink.send(msg.message()).await.is_err() {
                writable = false;
            }
        }
    });
    Ok(tx)
}
