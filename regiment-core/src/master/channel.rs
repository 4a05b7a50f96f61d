//! The master's end of one worker's IPC channel, served by a task of its own.
//!
//! The task forwards what the worker says to the supervisor loop through a bounded channel, so
//! a worker that floods its channel only slows its own task, never the loop or other workers.

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

use super::policy::WorkerId;
use crate::protocol::codec::{FrameDecoder, FrameEncoder};
use crate::protocol::{Incoming, MasterMessage, WorkerMessage};

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
) -> std::io::Result<mpsc::Sender<MasterMessage>> {
    stream.set_nonblocking(true)?;
    let stream = tokio::net::UnixStream::from_std(stream)?;
    let (tx, mut outbox) = mpsc::channel::<MasterMessage>(4);
    tokio::spawn(async move {
        let (r, w) = stream.into_split();
        let mut frames = FramedRead::new(r, FrameDecoder::<WorkerMessage>::default());
        let mut sink = FramedWrite::new(w, FrameEncoder);
        let mut writable = true;
        loop {
            tokio::select! {
                Some(msg) = outbox.recv(), if writable => {
                    if let Err(e) = sink.send(msg).await {
                        tracing::debug!(%id, error = %e, "could not write to worker");
                        writable = false;
                    }
                }
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
        while let Some(msg) = outbox.recv().await {
            if writable && sink.send(msg).await.is_err() {
                writable = false;
            }
        }
    });
    Ok(tx)
}
