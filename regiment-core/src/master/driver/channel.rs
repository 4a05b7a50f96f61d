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
    /// Say what you are doing, by `by`: the master is about to kill you.
    AskReport { by: Instant },
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

/// Milliseconds from now until `at`, as a frame written now carries them.
fn millis_until(at: Instant) -> u64 {
    let left = at.saturating_duration_since(Instant::now());
    u64::try_from(left.as_millis()).unwrap_or(u64::MAX)
}

/// The message as written now.
fn message(to_worker: &ToWorker) -> Option<MasterMessage> {
    match *to_worker {
        ToWorker::Drain { kill_at } => Some(MasterMessage::Drain {
            deadline_ms: millis_until(kill_at),
        }),
        ToWorker::AskReport { by } => Some(MasterMessage::Report {
            deadline_ms: millis_until(by),
        }),
        ToWorker::HandOver(_) => None,
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
                    Some(to_worker) => {
                        if writable
                            && let Some(msg) = message(&to_worker)
                            && let Err(e) = sink.send(msg).await
                        {
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
        while outbox_open && let Some(to_worker) = outbox.recv().await {
            // A closed channel is not handed over (the driver waits for its worker's exit
            // first): dropping the answer (in `to_worker`) says so.
            if writable
                && let Some(msg) = message(&to_worker)
                && sink.send(msg).await.is_err()
            {
                writable = false;
            }
        }
    });
    Ok(tx)
}
