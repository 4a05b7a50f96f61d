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
//!
//! For an upgrade in place, the task gives its stream back ([`ToWorker::HandOver`]) between two
//! frames: with it the bytes read from the socket and not decoded yet (the start of a frame),
//! which the new master's task decodes first. Every frame decoded before was handed to the loop
//! already: none is torn, none lost.

use std::time::Instant;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::master::policy::WorkerId;
use crate::protocol::codec::{FrameDecoder, FrameEncoder};
use crate::protocol::{Incoming, MasterMessage, WorkerMessage};

/// What the supervisor loop tells a worker, through its channel task.
#[derive(Debug)]
pub(crate) enum ToWorker {
    /// Drain; the master kills the worker at `kill_at`.
    Drain { kill_at: Instant },
    /// Stop serving the channel and give its stream back, for an upgrade in place (what was
    /// sent before this is written first).
    HandOver(oneshot::Sender<HandedOver>),
}

/// A channel given back by its task: the stream, and the bytes read but not yet decoded.
#[derive(Debug)]
pub(crate) struct HandedOver {
    pub(crate) stream: std::os::unix::net::UnixStream,
    pub(crate) pending: BytesMut,
}

/// The drain message as written now, for a worker killed at `kill_at`.
fn drain_message(kill_at: Instant) -> MasterMessage {
    let left = kill_at.saturating_duration_since(Instant::now());
    MasterMessage::Drain {
        deadline_ms: u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
    }
}

/// What a channel task reports to the supervisor loop, tagged with the worker's id.
#[derive(Debug)]
pub(crate) enum FromWorker {
    Message(WorkerId, WorkerMessage),
    Invalid(WorkerId, String),
    Closed(WorkerId),
}

/// Starts the task; returns the sender for messages to the worker. `pending` is what a task
/// before it read and did not decode (empty for a new worker).
pub(crate) fn start(
    id: WorkerId,
    stream: std::os::unix::net::UnixStream,
    pending: BytesMut,
    to_loop: mpsc::Sender<FromWorker>,
) -> std::io::Result<mpsc::Sender<ToWorker>> {
    stream.set_nonblocking(true)?;
    let stream = tokio::net::UnixStream::from_std(stream)?;
    let (tx, mut outbox) = mpsc::channel::<ToWorker>(4);
    tokio::spawn(async move {
        let (r, w) = stream.into_split();
        let mut frames = FramedRead::new(r, FrameDecoder::<WorkerMessage>::default());
        // Decoded first, before anything read from now on.
        frames.read_buffer_mut().extend_from_slice(&pending);
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
                    Some(ToWorker::Drain { kill_at }) => {
                        if writable && let Err(e) = sink.send(drain_message(kill_at)).await {
                            tracing::debug!(%id, error = %e, "could not write to worker");
                            writable = false;
                        }
                    }
                    Some(ToWorker::HandOver(answer)) => {
                        let pending = std::mem::take(frames.read_buffer_mut());
                        let r = frames.into_inner();
                        let stream = r.reunite(sink.into_inner()).expect("the halves of one stream");
                        match stream.into_std() {
                            Ok(stream) => {
                                let _ = answer.send(HandedOver { stream, pending });
                            }
                            Err(e) => tracing::error!(%id, error = %e, "cannot hand the IPC channel over"),
                        }
                        return;
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
            // A closed channel is not handed over (the driver waits for its worker's exit
            // first): dropping the answer says so.
            if let ToWorker::Drain { kill_at } = msg
                && writable
                && sink.send(drain_message(kill_at)).await.is_err()
            {
                writable = false;
            }
        }
    });
    Ok(tx)
}
