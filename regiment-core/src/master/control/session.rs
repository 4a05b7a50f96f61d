//! One connection of the control socket: who the peer is, its one request, the answer.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::Handle;
use crate::config::MAX_WORKERS;
use crate::plumbing::control::{
    Answer, Command, ErrorKind, Frame, MAX_REQUEST, VERSION, frame_bytes, frame_len,
};

/// How long a peer has to send its request: a client sends it at once, so a peer that does
/// not is stuck or hostile.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

pub(super) async fn serve(mut stream: UnixStream, handle: Handle) {
    if let Err(refusal) = check_peer(&stream) {
        tracing::warn!(%refusal, "control socket: peer refused");
        let _ = send(&mut stream, error(ErrorKind::PermissionDenied, refusal)).await;
        return;
    }
    let command = match tokio::time::timeout(REQUEST_DEADLINE, read_request(&mut stream)).await {
        Ok(Ok(command)) => command,
        Ok(Err((kind, why))) => {
            tracing::warn!(%why, "control socket: request refused");
            let _ = send(&mut stream, error(kind, why)).await;
            return;
        }
        Err(_) => {
            let why = format!("no request within {REQUEST_DEADLINE:?}");
            tracing::warn!(%why, "control socket: request refused");
            let _ = send(&mut stream, error(ErrorKind::BadRequest, why)).await;
            return;
        }
    };
    tracing::info!(?command, "control socket: request");
    // A write error means the client went away; what it started goes on without it.
    let _ = answer(&mut stream, command, &handle).await;
}

/// Serves the master's own user and root; anyone else reached the socket only because its
/// mode was widened by hand.
fn check_peer(stream: &UnixStream) -> Result<(), String> {
    let cred = stream
        .peer_cred()
        .map_err(|e| format!("cannot read the peer's credentials: {e}"))?;
    let master = nix::unistd::geteuid().as_raw();
    if cred.uid() == master || cred.uid() == 0 {
        return Ok(());
    }
    Err(format!(
        "uid {} is neither the master's user (uid {master}) nor root",
        cred.uid()
    ))
}

async fn read_request(stream: &mut UnixStream) -> Result<Command, (ErrorKind, String)> {
    let bad = |why: String| (ErrorKind::BadRequest, why);
    let mut prefix = [0; 4];
    stream
        .read_exact(&mut prefix)
        .await
        .map_err(|e| bad(format!("no request: {e}")))?;
    let len = frame_len(prefix, MAX_REQUEST).map_err(|e| bad(e.to_string()))?;
    let mut body = vec![0; len];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| bad(format!("the request was cut short: {e}")))?;
    // The version first, so that a client of another version is told so rather than that its
    // command is unknown.
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("the request is not JSON: {e}")))?;
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return Err((
                ErrorKind::Version,
                format!(
                    "the client speaks version {v} of the control protocol, this master {VERSION}"
                ),
            ));
        }
        None => return Err(bad("the request has no version".into())),
    }
    let command = value
        .get("command")
        .ok_or_else(|| bad("the request has no command".into()))?;
    serde_json::from_value(command.clone()).map_err(|e| bad(format!("unknown command: {e}")))
}

async fn answer(stream: &mut UnixStream, command: Command, handle: &Handle) -> std::io::Result<()> {
    match command {
        Command::Status => {
            let status = Box::new(handle.status());
            send(stream, Answer::Status { status }).await
        }
        Command::Metrics => {
            let text = handle.metrics();
            send(stream, Answer::Metrics { text }).await
        }
        Command::Reload => reload(stream, handle).await,
        Command::Scale { workers } => {
            let answer = if !(1..=MAX_WORKERS).contains(&workers) {
                error(
                    ErrorKind::Refused,
                    format!("{workers} workers: from 1 to {MAX_WORKERS} are accepted"),
                )
            } else if handle.status().stopping {
                error(ErrorKind::Refused, "the master is stopping".into())
            } else {
                let before = handle.status().workers_wanted;
                handle.scale_to(workers);
                done(format!("scaling from {before} to {workers} workers"))
            };
            send(stream, answer).await
        }
        Command::Replace { slot } => {
            // The master's books decide, not a status snapshot: a slot whose worker just
            // crashed has none to replace.
            let answer = match handle
                .replace_answered(slot, "asked on the control socket")
                .await
            {
                Ok(()) => done(format!("replacing the worker of slot {slot}")),
                Err(why) => error(ErrorKind::Refused, why),
            };
            send(stream, answer).await
        }
        Command::Stop => {
            handle.stop();
            send(stream, done("stopping".into())).await?;
            // The connection closes when the master has stopped: a client that waits reads
            // the end of the stream then.
            handle.finished().await;
            Ok(())
        }
    }
}

/// Streams every event until the rollout's outcome, then the outcome. The rollout is the
/// master's, not the connection's: a client that goes away does not cancel it.
async fn reload(stream: &mut UnixStream, handle: &Handle) -> std::io::Result<()> {
    let mut events = handle.events();
    let outcome = handle.rolling_restart_and_wait();
    tokio::pin!(outcome);
    let record = loop {
        tokio::select! {
            biased;
            Some(event) = events.recv() => send(stream, Answer::Progress { event }).await?,
            record = &mut outcome => break record,
        }
    };
    // Events the driver sent before it answered are still queued: they come first.
    while let Ok(event) = events.rx.try_recv() {
        send(stream, Answer::Progress { event }).await?;
    }
    send(stream, Answer::Rollout { record }).await
}

fn error(error: ErrorKind, message: String) -> Answer {
    Answer::Error { error, message }
}

fn done(message: String) -> Answer {
    Answer::Done { message }
}

async fn send(stream: &mut UnixStream, answer: Answer) -> std::io::Result<()> {
    let bytes = frame_bytes(&Frame {
        version: VERSION,
        answer,
    })?;
    stream.write_all(&bytes).await
}
