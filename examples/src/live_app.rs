//! `live`: long-lived connections under regiment, a WebSocket and a server-sent-events stream
//! that a drain ends cleanly, so that their clients reconnect to a worker that is not draining.
//!
//! ```text
//! cargo run -p examples --bin live -- --workers 2 --journal /tmp/journal
//! websocat ws://127.0.0.1:3000/ws            # type lines: each is stored, then confirmed
//! curl -N http://127.0.0.1:3000/events       # a tick every 200 ms, resumable
//! kill -HUP <master pid>                     # rolling restart: both end and reconnect
//! ```
//!
//! Routes:
//! - `/ws`: a WebSocket that takes text messages, stores each (a line appended to the
//!   journal, with `--journal PATH`) and then confirms it with `ok MESSAGE`. When its worker
//!   drains, it stops taking messages and closes with code 1001 (going away): every message
//!   confirmed is stored, and any message not confirmed was not, so the client resends those
//!   on its next connection and each message is stored once.
//! - `/events`: server-sent events, `id: N` and `data: tick N from pid P` every 200 ms (or
//!   `?every_ms=N`), resumed after the `Last-Event-ID` a reconnecting client sends. When its
//!   worker drains, the stream ends with an event `draining` whose `retry: 0` tells an
//!   `EventSource` to reconnect at once.
//! - `/pid`: the worker's pid.
//!
//! Flags, each also an environment variable: `--bind ADDR` (`LIVE_BIND`, default
//! 127.0.0.1:3000), `--workers N` (`LIVE_WORKERS`), `--journal PATH` (`LIVE_JOURNAL`: where
//! confirmed messages are stored; without it they are only confirmed), `--print-events`
//! (`LIVE_PRINT_EVENTS`: every lifecycle event as a JSON line `EVENT {...}` on stdout).
//! regiment's own variables apply, as to any regiment app.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Parser;
use futures_util::stream::{self, Stream};
use regiment_core::worker;
use tokio::io::AsyncWriteExt;

/// The flags of `live`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "live",
    about = "WebSocket and server-sent events served by regiment"
)]
pub struct Args {
    /// Address to listen on (HOST:PORT or unix:/path); port 0 picks a free port.
    #[arg(long, env = "LIVE_BIND", default_value = "127.0.0.1:3000")]
    pub bind: String,
    /// Number of worker processes (default: one per CPU).
    #[arg(long, env = "LIVE_WORKERS")]
    pub workers: Option<usize>,
    /// A file each confirmed WebSocket message is appended to, one line each, before its
    /// confirmation is sent.
    #[arg(long, env = "LIVE_JOURNAL")]
    pub journal: Option<PathBuf>,
    /// Print every lifecycle event as a JSON line (`EVENT {...}`) on stdout.
    #[arg(long, env = "LIVE_PRINT_EVENTS")]
    pub print_events: bool,
}

/// How long a closing WebSocket waits for its client's close frame before it drops the socket.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(5);

/// The routes of `live`: `/ws`, `/events`, `/pid`.
///
/// ```
/// let app = examples::live_app::app(None);
/// # drop(app);
/// ```
pub fn app(journal: Option<PathBuf>) -> Router {
    Router::new()
        .route("/ws", get(ws))
        .route("/events", get(events))
        .route("/pid", get(|| async { std::process::id().to_string() }))
        .with_state(Arc::new(journal))
}

async fn ws(upgrade: WebSocketUpgrade, State(journal): State<Arc<Option<PathBuf>>>) -> Response {
    upgrade.on_upgrade(move |socket| take_messages(socket, journal))
}

/// Stores and confirms each text message until the client closes or the worker drains.
async fn take_messages(mut socket: WebSocket, journal: Arc<Option<PathBuf>>) {
    let mut journal = match open_journal(&journal).await {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(error = %e, "cannot open the journal");
            let _ = socket
                .send(close(close_code::ERROR, "journal unavailable"))
                .await;
            return;
        }
    };
    let drained = worker::drained();
    tokio::pin!(drained);
    loop {
        let msg = tokio::select! {
            // The drain first: once it has come, no message is taken, so none is stored
            // without its confirmation going out before the close.
            biased;
            () = &mut drained => break,
            msg = socket.recv() => msg,
        };
        let text = match msg {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
            Some(Ok(_)) => continue,
        };
        if let Some(file) = &mut journal
            && let Err(e) = store(file, &text).await
        {
            tracing::error!(error = %e, "cannot write the journal");
            let _ = socket
                .send(close(close_code::ERROR, "journal unavailable"))
                .await;
            return;
        }
        if socket
            .send(Message::text(format!("ok {text}")))
            .await
            .is_err()
        {
            return;
        }
    }
    // Going away: the client reconnects, and resends what was not confirmed. Messages that
    // arrive before its close frame are not taken.
    if socket
        .send(close(close_code::AWAY, "server draining; reconnect"))
        .await
        .is_ok()
    {
        let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
            while let Some(Ok(msg)) = socket.recv().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// The journal, opened for appending: each line goes out in one write, whole, whichever
/// worker writes it.
async fn open_journal(path: &Option<PathBuf>) -> std::io::Result<Option<tokio::fs::File>> {
    match path {
        Some(path) => Ok(Some(
            tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await?,
        )),
        None => Ok(None),
    }
}

/// Appends `text` as a line, and returns once it is written (not merely buffered).
async fn store(file: &mut tokio::fs::File, text: &str) -> std::io::Result<()> {
    file.write_all(format!("{text}\n").as_bytes()).await?;
    file.flush().await
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

#[derive(serde::Deserialize)]
struct EventsParams {
    every_ms: Option<u64>,
}

/// Ticks, resumed after `Last-Event-ID`, until the worker drains.
async fn events(Query(p): Query<EventsParams>, headers: HeaderMap) -> impl IntoResponse {
    let every = Duration::from_millis(p.every_ms.unwrap_or(200).clamp(10, 60_000));
    let next = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .map_or(1, |last| last + 1);
    Sse::new(ticks(next, every))
}

/// `tick N` every `every`, from `next` on; once the worker drains, a last event `draining`
/// with `retry: 0`, and the end of the stream.
fn ticks(
    next: u64,
    every: Duration,
) -> impl Stream<Item = Result<Event, std::convert::Infallible>> {
    enum Tick {
        Next(u64),
        Done,
    }
    let drained = Box::pin(worker::drained());
    stream::unfold(
        (Tick::Next(next), drained),
        move |(tick, mut drained)| async move {
            let Tick::Next(n) = tick else { return None };
            tokio::select! {
                biased;
                () = &mut drained => {
                    let last = Event::default()
                        .event("draining")
                        .data("this worker is draining; reconnect")
                        .retry(Duration::ZERO);
                    Some((Ok(last), (Tick::Done, drained)))
                }
                () = tokio::time::sleep(every) => {
                    let event = Event::default()
                        .id(n.to_string())
                        .data(format!("tick {n} from pid {}", std::process::id()));
                    Some((Ok(event), (Tick::Next(n + 1), drained)))
                }
            }
        },
    )
}

/// Runs `live` as master or worker, from the command line and environment.
pub fn main() -> ExitCode {
    crate::run::main("live", run(Args::parse()))
}

async fn run(args: Args) -> Result<(), regiment_axum::Error> {
    let mut server = regiment_axum::Server::new().bind(args.bind.clone());
    if let Some(n) = args.workers {
        server = server.workers(n);
    }
    let output = if args.print_events {
        crate::events::Output::Json
    } else {
        crate::events::Output::Summary
    };
    // The printer ends once the supervisor is gone; the master waits for it, so that the last
    // events (`stopped`) are printed too.
    let printer = Arc::new(Mutex::new(None));
    let printer_slot = printer.clone();
    let journal = args.journal;
    let served = server
        .on_master(move |handle| {
            *printer_slot.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(crate::events::print("live", handle, output));
        })
        .serve_factory(|| async move { app(journal) })
        .await;
    let printer = printer.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(printer) = printer {
        let _ = tokio::time::timeout(Duration::from_secs(1), printer).await;
    }
    served
}
