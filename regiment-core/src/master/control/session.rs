//! One connection of the control socket: who the peer is, its one request, the answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;

use super::reply::{done, error, follow, send, send_frame};
use super::shared::Shared;
use super::upgrade;
use crate::Handle;
use crate::limits::MAX_WORKERS;
use crate::plumbing::control::{Answer, Command, ErrorKind, MAX_REQUEST, VERSION, frame_len};

/// How long a peer has to send its request: a client sends it at once, so a peer that does
/// not is stuck or hostile.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

pub(super) async fn serve(mut stream: UnixStream, shared: Arc<Shared>) {
    if let Err(refusal) = check_peer(&stream) {
        shared.refused(&format!("peer refused: {refusal}"));
        let _ = send(&mut stream, error(ErrorKind::PermissionDenied, refusal)).await;
        return;
    }
    let command = match tokio::time::timeout(REQUEST_DEADLINE, read_request(&mut stream)).await {
        Ok(Ok(command)) => command,
        Ok(Err((kind, why))) => {
            shared.refused(&format!("request refused: {why}"));
            let _ = send(&mut stream, error(kind, why)).await;
            return;
        }
        Err(_) => {
            let why = format!("no request within {REQUEST_DEADLINE:?}");
            shared.refused(&format!("request refused: {why}"));
            let _ = send(&mut stream, error(ErrorKind::BadRequest, why)).await;
            return;
        }
    };
    tracing::info!(?command, "control socket: request");
    // A client that went away leaves what it started to go on without it; one that stopped
    // reading is cut off.
    if let Err(e) = answer(&mut stream, command, &shared).await
        && e.kind() == std::io::ErrorKind::TimedOut
    {
        shared.refused(&e.to_string());
    }
}

/// Serves the master's own user and root; anyone else reached the socket only because its
/// mode was widened by hand.
pub(super) fn check_peer(stream: &UnixStream) -> Result<(), String> {
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

async fn answer(stream: &mut UnixStream, command: Command, shared: &Shared) -> std::io::Result<()> {
    let handle = &shared.handle;
    match command {
        Command::Status => {
            let status = Box::new(handle.status());
            send(stream, Answer::Status { status }).await
        }
        Command::Metrics => {
            let text = handle.metrics();
            send(stream, Answer::Metrics { text }).await
        }
        Command::Reload => {
            let allowed = shared
                .policy
                .time_allowed_for_rollout(handle.status().workers_wanted);
            reload(stream, handle, Instant::now(), allowed).await
        }
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
            // Workers drain within the drain timeout, then the master kills them and exits.
            let within = shared.policy.drain_timeout;
            send_frame(stream, done("stopping".into()), Some(within)).await?;
            // The connection closes when the master has stopped: a client that waits reads
            // the end of the stream then.
            handle.finished().await;
            Ok(())
        }
        Command::Reports => {
            let reports = handle.kill_reports();
            send(stream, Answer::Reports { reports }).await
        }
        Command::Report { id } => {
            let answer = match handle.kill_report(id) {
                Some(report) => Answer::Report {
                    report: Box::new(report),
                },
                None => error(ErrorKind::Refused, no_report(id, &handle.kill_reports())),
            };
            send(stream, answer).await
        }
        Command::Upgrade => upgrade::begin(stream, shared).await,
        Command::UpgradeOutcome { number } => upgrade::outcome(stream, shared, number).await,
    }
}

/// Why report `id` cannot be shown, with the ids that can.
fn no_report(id: u64, kept: &[crate::KillReport]) -> String {
    match (kept.first(), kept.last()) {
        (Some(first), Some(last)) => format!(
            "no kill report {id}: the master keeps the last {}, reports {} to {}",
            crate::KillReport::KEPT,
            first.id,
            last.id
        ),
        _ => format!("no kill report {id}: the master has taken none"),
    }
}

/// Streams every event until the rollout's outcome, then the outcome, each frame with the time
/// the rollout has left before its `rollout_timeout` (`allowed` from `asked`, reckoned as the
/// policy reckons it when the rollout starts). The rollout is the master's, not the
/// connection's: a client that goes away does not cancel it.
async fn reload(
    stream: &mut UnixStream,
    handle: &Handle,
    asked: Instant,
    allowed: Duration,
) -> std::io::Result<()> {
    let left = || Some(allowed.saturating_sub(asked.elapsed()));
    let record = follow(
        stream,
        handle.events(),
        handle.rolling_restart_and_wait(),
        left,
    )
    .await?;
    send(stream, Answer::Rollout { record }).await
}
