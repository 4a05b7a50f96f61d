//! `hello`: an axum app under regiment.
//!
//! ```text
//! cargo run -p examples --bin hello -- --workers 4
//! curl http://127.0.0.1:3000/            # hello from worker SLOT (pid PID)
//! curl 'http://127.0.0.1:3000/slow?ms=2000'
//! curl http://127.0.0.1:3000/pid
//! kill -HUP <master pid>                 # rolling restart (SIGUSR2 too)
//! kill -TERM <master pid>                # graceful stop (Ctrl+C too)
//! ```
//!
//! Flags, each also an environment variable:
//! `--bind ADDR` (`HELLO_BIND`, default 127.0.0.1:3000), `--workers N` (`HELLO_WORKERS`,
//! default one per CPU), `--max-requests N` (`HELLO_MAX_REQUESTS`: replace a worker after N
//! requests), `--max-rss-mb N` (`HELLO_MAX_RSS_MB`: replace a worker above N MB resident),
//! `--print-events` (`HELLO_PRINT_EVENTS`: print every lifecycle event as a JSON line
//! `EVENT {...}` on stdout). regiment's own variables (`REGIMENT_DRAIN_TIMEOUT`,
//! `REGIMENT_IDLE_GRACE`, `REGIMENT_HEADER_READ_TIMEOUT`, ...) apply as to any regiment app.
//!
//! The master prints `hello: listening on http://ADDR` for each listener, then how to restart
//! and stop it.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use clap::Parser;
use regiment_core::worker;
use regiment_tower::{MemoryFootprint, RequestCount};

/// The flags of `hello`.
#[derive(Debug, Parser)]
#[command(name = "hello", about = "An axum app served by regiment")]
pub struct Args {
    /// Address to listen on (HOST:PORT or unix:/path); port 0 picks a free port.
    #[arg(long, env = "HELLO_BIND", default_value = "127.0.0.1:3000")]
    pub bind: String,
    /// Number of worker processes (default: one per CPU).
    #[arg(long, env = "HELLO_WORKERS")]
    pub workers: Option<usize>,
    /// Replace a worker after it served this many requests.
    #[arg(long, env = "HELLO_MAX_REQUESTS")]
    pub max_requests: Option<u64>,
    /// Replace a worker whose resident memory exceeds this many MB.
    #[arg(long, env = "HELLO_MAX_RSS_MB")]
    pub max_rss_mb: Option<u64>,
    /// Print every lifecycle event as a JSON line (`EVENT {...}`) on stdout.
    #[arg(long, env = "HELLO_PRINT_EVENTS")]
    pub print_events: bool,
}

/// The routes of `hello`: `/`, `/slow?ms=N`, `/pid`.
///
/// ```
/// let app = examples::hello_app::app(&examples::hello_app::Args {
///     bind: "127.0.0.1:0".into(),
///     workers: None,
///     max_requests: None,
///     max_rss_mb: None,
///     print_events: false,
/// });
/// # drop(app);
/// ```
pub fn app(args: &Args) -> Router {
    let app = Router::new()
        .route("/", get(hello))
        .route("/slow", get(slow))
        .route("/pid", get(pid));
    // The replacement criteria: sampled off the request path, one atomic compare per request.
    let app = match args.max_rss_mb {
        Some(mb) => app.layer(MemoryFootprint::mb(mb)),
        None => app,
    };
    match args.max_requests {
        Some(n) => app.layer(RequestCount::new(n)),
        None => app,
    }
}

async fn hello() -> String {
    match worker::slot() {
        Some(slot) => format!(
            "hello from worker {slot} (pid {}), generation {}\n",
            std::process::id(),
            worker::generation().unwrap_or(0)
        ),
        None => format!("hello from pid {}\n", std::process::id()),
    }
}

#[derive(serde::Deserialize)]
struct SlowParams {
    ms: Option<u64>,
}

/// Answers after `ms` milliseconds (at most a minute).
async fn slow(Query(p): Query<SlowParams>) -> String {
    let ms = p.ms.unwrap_or(1000).min(60_000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms} ms in pid {}\n", std::process::id())
}

async fn pid() -> String {
    std::process::id().to_string()
}

/// Runs `hello` as master or worker, from the command line and environment.
pub fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hello: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hello: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), regiment_axum::Error> {
    let mut server = regiment_axum::Server::new().bind(args.bind.clone());
    if let Some(n) = args.workers {
        server = server.workers(n);
    }
    let print_events = args.print_events;
    let app = app(&args);
    // The printer ends once the supervisor is gone; the master waits for it, so that the last
    // events (`stopped`) are printed too.
    let printer = Arc::new(Mutex::new(None));
    let printer_slot = printer.clone();
    let served = server
        .on_master(move |handle| {
            *printer_slot.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(crate::events::print("hello", handle, print_events));
        })
        .serve(app)
        .await;
    let printer = printer.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(printer) = printer {
        let _ = tokio::time::timeout(Duration::from_secs(1), printer).await;
    }
    served
}
