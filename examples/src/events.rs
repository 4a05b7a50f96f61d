//! What the examples print in the master: where they listen, how to steer them, and which
//! worker asked to be replaced and why (and why its replacement waits, when it does); with [`Output::Json`], also every lifecycle event as a line
//! `EVENT {...}`, and on SIGWINCH a snapshot of the master's status as a line
//! `EVENT {"event":"status-snapshot","status":{...}}`, which the end-to-end tests read.
//!
//! Printed through [`regiment_core::LogWriter`]: `println!` would panic once stdout is closed
//! (`hello | head`), and end the printing for good.

use std::io::Write;

use regiment_core::{Event, Handle, LogWriter};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;

/// What [`print()`] prints.
///
/// ```no_run
/// use examples::events::Output;
/// # async fn run() -> Result<(), regiment_axum::Error> {
/// let app = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
/// regiment_axum::Server::new()
///     .on_master(|handle| drop(examples::events::print("demo", handle, Output::Json)))
///     .serve(app)
///     .await
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// For a person: the addresses, how to steer the master, replacement requests and why one
    /// waits.
    #[default]
    Summary,
    /// The summary, every event as an `EVENT {...}` line and a status snapshot on SIGWINCH.
    Json,
}

/// Prints `handle`'s events until the supervisor has stopped, as `output` says. Call it from
/// `on_master` (see [`Output`]).
pub fn print(name: &'static str, handle: &Handle, output: Output) -> JoinHandle<()> {
    let mut events = handle.events();
    // For status snapshots. A handle keeps the event channel open, so the stream no longer
    // ends when the supervisor is gone: the loop ends at `stopped` (the supervisor's last
    // event), and this clone with it.
    let handle = handle.clone();
    // Only as JSON: a terminal sends SIGWINCH on each resize, and a person watching the
    // plain output has no use for a JSON status there. The master itself does not use SIGWINCH.
    let mut winch = if output == Output::Json {
        match signal(SignalKind::window_change()) {
            Ok(winch) => Some(winch),
            Err(e) => {
                let _ = writeln!(
                    LogWriter::stderr(),
                    "{name}: no status snapshots on SIGWINCH: {e}"
                );
                None
            }
        }
    } else {
        None
    };
    tokio::spawn(async move {
        let mut out = LogWriter::stdout();
        let pid = std::process::id();
        loop {
            let event = tokio::select! {
                event = events.recv() => match event {
                    Some(event) => event,
                    None => break,
                },
                Some(()) = async { winch.as_mut()?.recv().await } => {
                    if let Ok(status) = serde_json::to_value(handle.status()) {
                        let snapshot =
                            serde_json::json!({"event": "status-snapshot", "status": status});
                        let _ = writeln!(out, "EVENT {snapshot}");
                    }
                    continue;
                }
            };
            match &event {
                Event::Listening { addrs } => {
                    for addr in addrs {
                        let _ = match addr.strip_prefix("unix:") {
                            Some(path) => writeln!(out, "{name}: listening on unix:{path}"),
                            None => writeln!(out, "{name}: listening on http://{addr}"),
                        };
                    }
                    let _ = writeln!(
                        out,
                        "{name}: master pid {pid}; rolling restart: kill -HUP {pid}; \
                         graceful stop: kill -TERM {pid} (or Ctrl+C)"
                    );
                }
                Event::ReplaceRequested { pid, reason, .. } => {
                    let _ = writeln!(out, "{name}: worker {pid} asks to be replaced: {reason}");
                }
                Event::ReplacementDelayed {
                    pid, why, wait_ms, ..
                } => {
                    println!("{name}: worker {pid}'s replacement waits {wait_ms} ms: {why}");
                }
                _ => {}
            }
            if output == Output::Json
                && let Ok(line) = serde_json::to_string(&event)
            {
                let _ = writeln!(out, "EVENT {line}");
            }
            if matches!(event, Event::Stopped) {
                break;
            }
        }
    })
}
