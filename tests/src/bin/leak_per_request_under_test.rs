//! An axum app under regiment that leaks a fixed amount of memory on every request to `/`, and
//! nothing else: no criterion of its own replaces its workers, so only the master's memory
//! budget can bound the regiment's memory (tests/tests/memory_budget.rs).
//!
//! `LEAK_PER_REQUEST_KB` (default 1024) sets the leak; the regiment's own variables
//! (`REGIMENT_WORKERS`, `REGIMENT_BIND`, `REGIMENT_MEMORY_BUDGET`) configure the rest. The
//! master prints every event as `EVENT {...}` on stdout, as the harness reads them.

use std::process::ExitCode;
use std::sync::Mutex;

use axum::Router;
use axum::extract::State;
use axum::routing::get;

/// Every block leaked so far: held here for the worker's whole life, never freed.
static LEAKED: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());

/// Leaks `bytes`, every page written (with a non-zero byte, so that no page is left to the
/// zero page or a lazy `calloc`): all of it resident, and private to this worker.
async fn leak(State(bytes): State<usize>) -> String {
    let block = vec![0xA5u8; bytes].into_boxed_slice();
    let mut leaked = LEAKED.lock().unwrap_or_else(|e| e.into_inner());
    leaked.push(block);
    format!(
        "pid {} leaked {} blocks\n",
        std::process::id(),
        leaked.len()
    )
}

fn main() -> ExitCode {
    let leak_kb: usize = match std::env::var("LEAK_PER_REQUEST_KB") {
        Ok(kb) => match kb.parse() {
            Ok(kb) => kb,
            Err(e) => {
                eprintln!("LEAK_PER_REQUEST_KB={kb:?}: {e}; a number of KiB is expected");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => 1024,
    };
    let app = Router::new()
        .route("/", get(leak))
        .with_state(leak_kb * 1024);
    let server = regiment_axum::Server::new().on_master(|handle| {
        drop(examples::events::print(
            "leak_per_request",
            handle,
            examples::events::Output::Json,
        ))
    });
    examples::run::main("leak_per_request", server.serve(app))
}
