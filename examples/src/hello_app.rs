//! `hello`: an axum app under regiment.
//!
//! ```text
//! cargo run -p examples --bin hello -- --workers 4
//! curl http://127.0.0.1:3000/            # hello from worker SLOT (pid PID)
//! curl 'http://127.0.0.1:3000/slow?ms=2000'
//! curl http://127.0.0.1:3000/pid
//! kill -HUP <master pid>                 # rolling restart of the workers
//! kill -USR2 <master pid>                # the master itself runs the new binary (same pid)
//! kill -TERM <master pid>                # graceful stop (Ctrl+C too)
//! ```
//!
//! Flags, each also an environment variable:
//! `--bind ADDR` (`HELLO_BIND`, default 127.0.0.1:3000), `--workers N` (`HELLO_WORKERS`,
//! default one per CPU), `--max-requests N` (`HELLO_MAX_REQUESTS`, default 10000: replace a
//! worker after N requests), `--max-requests-jitter J` (`HELLO_MAX_REQUESTS_JITTER`, default a
//! tenth of `--max-requests`: each worker draws its own limit in `N..=N+J`, so workers started
//! together are not all replaced together; 0 for exactly N), `--max-rss-mb N`
//! (`HELLO_MAX_RSS_MB`, default 750: replace a worker above N MB resident), `--print-events`
//! (`HELLO_PRINT_EVENTS`: print every lifecycle event as a JSON line `EVENT {...}` on stdout,
//! and a status snapshot `EVENT {"event":"status-snapshot",...}` on SIGWINCH). Both criteria
//! are always on, as in the API example of the README. regiment's own variables
//! (`REGIMENT_DRAIN_TIMEOUT`, `REGIMENT_IDLE_GRACE`, `REGIMENT_HEADER_READ_TIMEOUT`, ...) apply
//! as to any regiment app.
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
use tower::ServiceBuilder;

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
    /// Replace a worker after it served this many requests (plus its jitter).
    #[arg(long, env = "HELLO_MAX_REQUESTS", default_value_t = 10_000)]
    pub max_requests: u64,
    /// Add a random 0..=J to each worker's --max-requests, drawn once per worker, so that
    /// workers started together are not replaced together (default: a tenth of
    /// --max-requests; 0 for none).
    #[arg(long, env = "HELLO_MAX_REQUESTS_JITTER")]
    pub max_requests_jitter: Option<u64>,
    /// Replace a worker whose resident memory exceeds this many MB.
    #[arg(long, env = "HELLO_MAX_RSS_MB", default_value_t = 750)]
    pub max_rss_mb: u64,
    /// Print every lifecycle event as a JSON line (`EVENT {...}`) on stdout, and a status
    /// snapshot (`EVENT {"event":"status-snapshot",...}`) on each SIGWINCH.
    #[arg(long, env = "HELLO_PRINT_EVENTS")]
    pub print_events: bool,
    /// Whether the two criteria layers wrap the routes (`off`: the routes alone, as
    /// `plain_axum` serves them, for the benchmarks).
    #[arg(long, env = "HELLO_CRITERIA", value_enum, default_value_t = Criteria::On)]
    pub criteria: Criteria,
    /// The tokio runtime of each process, master and workers (the benchmarks compare them).
    #[arg(long, env = "HELLO_RUNTIME", value_enum, default_value_t = crate::run::Flavor::MultiThread)]
    pub runtime: crate::run::Flavor,
}

/// Whether `hello`'s routes run under its replacement criteria.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Criteria {
    /// `MemoryFootprint` and `RequestCount`, as in the README.
    On,
    /// The routes alone.
    Off,
}

/// The routes of `hello` (`/`, `/slow?ms=N`, `/pid`), under both replacement criteria, which
/// wrap the app as a whole: one layer around the router, not one around each route as
/// `Router::layer` would make (see [`regiment_axum::App`]).
///
/// ```
/// let app = examples::hello_app::app(&examples::hello_app::Args {
///     bind: "127.0.0.1:0".into(),
///     workers: None,
///     max_requests: 10_000,
///     max_requests_jitter: Some(0),
///     max_rss_mb: 750,
///     print_events: false,
///     criteria: examples::hello_app::Criteria::On,
///     runtime: examples::run::Flavor::MultiThread,
/// });
/// # drop(app);
/// ```
pub fn app(args: &Args) -> impl regiment_axum::App<axum::body::Body> {
    // A tenth by default (gunicorn's max_requests_jitter, which is off unless set): workers
    // start together (all of them at first, and again after each rolling restart) and share
    // the load evenly, so with one limit they would all ask at once, and the master would
    // replace them in one wave. Drawn in N..=N+N/10, the limits of W workers are about
    // N/10/(W+1) requests apart (250 for 10000 and 3 workers), while N stays what it says.
    let jitter = args.max_requests_jitter.unwrap_or(args.max_requests / 10);
    // The replacement criteria: sampled off the request path, one atomic compare per request.
    ServiceBuilder::new()
        .layer(MemoryFootprint::mb(args.max_rss_mb))
        .layer(RequestCount::new(args.max_requests).jitter(jitter))
        .service(routes())
}

/// The routes alone, without the criteria: what `plain_axum` serves.
pub fn routes() -> Router {
    Router::new()
        .route("/", get(hello))
        .route("/slow", get(slow))
        .route("/pid", get(pid))
        // Turns the handlers into services now, not on every request: `app` wraps the router
        // in layers, where neither `axum::serve` nor regiment can do it (axum's advice for a
        // router served as a `Service`).
        .with_state(())
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
    crate::run::main_on(args.runtime, "hello", run(args))
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
    let server = server.on_master(move |handle| {
        *printer_slot.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(crate::events::print("hello", handle, output));
    });
    let served = match args.criteria {
        Criteria::On => server.serve(app(&args)).await,
        Criteria::Off => server.serve(routes()).await,
    };
    let printer = printer.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(printer) = printer {
        let _ = tokio::time::timeout(Duration::from_secs(1), printer).await;
    }
    served
}
