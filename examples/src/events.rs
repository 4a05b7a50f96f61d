//! What the examples print in the master: where they listen, how to steer them, and which
//! worker asked to be replaced and why; with `json`, also every lifecycle event as a line
//! `EVENT {...}`, which the end-to-end tests read.

use regiment_core::{Event, Handle};
use tokio::task::JoinHandle;

/// Prints `handle`'s events until the supervisor is gone. Call it from `on_master`.
pub fn print(name: &'static str, handle: &Handle, json: bool) -> JoinHandle<()> {
    let mut events = handle.events();
    tokio::spawn(async move {
        let pid = std::process::id();
        while let Some(event) = events.recv().await {
            match &event {
                Event::Listening { addrs } => {
                    for addr in addrs {
                        match addr.strip_prefix("unix:") {
                            Some(path) => println!("{name}: listening on unix:{path}"),
                            None => println!("{name}: listening on http://{addr}"),
                        }
                    }
                    println!(
                        "{name}: master pid {pid}; rolling restart: kill -HUP {pid}; \
                         graceful stop: kill -TERM {pid} (or Ctrl+C)"
                    );
                }
                Event::ReplaceRequested { pid, reason, .. } => {
                    println!("{name}: worker {pid} asks to be replaced: {reason}");
                }
                _ => {}
            }
            if json && let Ok(line) = serde_json::to_string(&event) {
                println!("EVENT {line}");
            }
        }
    })
}
