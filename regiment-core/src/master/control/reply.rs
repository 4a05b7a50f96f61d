//! The master's side of a session's answer: its frames, each written within a deadline, and a
//! stream of progress until an outcome.

use std::future::Future;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use crate::events::EventStream;
use crate::plumbing::control::{Answer, ErrorKind, Frame, VERSION, frame_bytes};

/// How long one frame of the answer may take to be written: a client reads its answer as it
/// comes, so a peer that does not read ends its own connection, never holds a session.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// Sends every event of `events` as [`Answer::Progress`] until `outcome` resolves, then those
/// queued before it did, each frame with `left()`; returns the outcome. `events` is subscribed
/// before `outcome` is first polled (which sends its command), so no event of it is missed.
pub(super) async fn follow<T>(
    stream: &mut UnixStream,
    mut events: EventStream,
    outcome: impl Future<Output = T>,
    left: impl Fn() -> Option<Duration>,
) -> std::io::Result<T> {
    tokio::pin!(outcome);
    let ended = loop {
        tokio::select! {
            biased;
            Some(event) = events.recv() => {
                send_frame(stream, Answer::Progress { event }, left()).await?;
            }
            ended = &mut outcome => break ended,
        }
    };
    // Events the driver sent before it answered are still queued: they come first.
    while let Ok(event) = events.rx.try_recv() {
        send_frame(stream, Answer::Progress { event }, left()).await?;
    }
    Ok(ended)
}

pub(super) fn error(error: ErrorKind, message: String) -> Answer {
    Answer::Error { error, message }
}

pub(super) fn done(message: String) -> Answer {
    Answer::Done { message }
}

/// Sends a complete answer.
pub(super) async fn send(stream: &mut UnixStream, answer: Answer) -> std::io::Result<()> {
    send_frame(stream, answer, None).await
}

/// Sends one frame, telling the client how long what it asked may still take; a client that
/// does not take it within [`WRITE_DEADLINE`] is `TimedOut`.
pub(super) async fn send_frame(
    stream: &mut UnixStream,
    answer: Answer,
    ends_within: Option<Duration>,
) -> std::io::Result<()> {
    let bytes = frame_bytes(&Frame {
        version: VERSION,
        answer,
        ends_within_ms: ends_within.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    })?;
    tokio::time::timeout(WRITE_DEADLINE, stream.write_all(&bytes))
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the client did not read its answer within {WRITE_DEADLINE:?}"),
            ))
        })
}
