//! `leaky`: a service with a memory leak it cannot fix today, kept healthy by `MemoryFootprint`.
//!
//! Every request to `/` leaks `--leak-kb` kilobytes on purpose. Once a worker's resident memory
//! passes `--max-rss-mb`, it asks to be replaced: the master starts a fresh worker, waits until
//! it is ready, then drains the leaky one. No request fails while this happens. A threshold
//! below what a worker needs to start (`--max-rss-mb 0`) makes every worker ask as it starts:
//! the master then backs its replacements off, as it would a crash loop, and the example prints
//! why each waits.
//!
//! ```text
//! cargo run -p examples --bin leaky -- --workers 2 --max-rss-mb 64 --leak-kb 512
//! for i in $(seq 500); do curl -s http://127.0.0.1:3001/; done   # watch the pids change
//! ```
//!
//! Flags, each also an environment variable: `--bind` (`LEAKY_BIND`, default 127.0.0.1:3001),
//! `--workers` (`LEAKY_WORKERS`, default 2), `--max-rss-mb` (`LEAKY_MAX_RSS_MB`, default 64),
//! `--leak-kb` (`LEAKY_LEAK_KB`, default 512), `--print-events` (`LEAKY_PRINT_EVENTS`: every
//! lifecycle event as a JSON line `EVENT {...}` on stdout).

use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use clap::Parser;
use regiment_tower::{Measure, MemoryFootprint, sampler};

#[derive(Debug, Parser)]
#[command(
    name = "leaky",
    about = "A leaking axum app kept up by MemoryFootprint"
)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "LEAKY_BIND", default_value = "127.0.0.1:3001")]
    bind: String,
    /// Number of worker processes.
    #[arg(long, env = "LEAKY_WORKERS", default_value_t = 2)]
    workers: usize,
    /// Replace a worker whose resident memory exceeds this many MB.
    #[arg(long, env = "LEAKY_MAX_RSS_MB", default_value_t = 64)]
    max_rss_mb: u64,
    /// Kilobytes leaked by each request.
    #[arg(long, env = "LEAKY_LEAK_KB", default_value_t = 512)]
    leak_kb: usize,
    /// Print every lifecycle event as a JSON line (`EVENT {...}`) on stdout.
    #[arg(long, env = "LEAKY_PRINT_EVENTS")]
    print_events: bool,
}

/// Leaks `leak_kb` KB, touching every page so that it counts as resident memory.
async fn leak(State(leak_kb): State<usize>) -> String {
    std::mem::forget(vec![1u8; leak_kb * 1024]);
    let rss_mb = sampler::current(Measure::Rss).unwrap_or(0) >> 20;
    format!(
        "pid {} leaks; resident about {rss_mb} MB\n",
        std::process::id()
    )
}

/// Runs the example as master or worker, from the command line and environment.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let app = Router::new()
        .route("/", get(leak))
        .with_state(args.leak_kb)
        // Sampled off the request path every 200 ms; compared from an atomic per request.
        .layer(MemoryFootprint::mb(args.max_rss_mb).with_interval(Duration::from_millis(200)));
    let output = if args.print_events {
        crate::events::Output::Json
    } else {
        crate::events::Output::Summary
    };
    let server = regiment_axum::Server::new()
        .bind(args.bind)
        .workers(args.workers)
        .on_master(move |handle| {
            crate::events::print("leaky", handle, output);
        });
    crate::run::main("leaky", server.serve(app))
}
