//! `custom_criterion`: your own replacement criteria, in about ten lines each.
//!
//! - `ServerErrors`: replace a worker after 50 consecutive 5xx responses (a library that got
//!   itself into a bad state and answers every request with an error);
//! - `MaxAge` (built in, made with the same trait): replace a worker after 6 hours, with 30
//!   minutes of splay so that workers do not all recycle together.
//!
//! ```text
//! cargo run -p examples --bin custom_criterion
//! for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:3002/fail; done
//! curl http://127.0.0.1:3002/pid # answered by a fresh worker
//! ```
//!
//! One worker by default: a streak is each worker's own, and the kernel spreads new
//! connections over the workers, so with two the 50 failures of the loop above split between
//! them and neither sees 50 in a row (as in production, where a worker in a bad state fails
//! everything it gets). With `--workers 2`, send them over one connection, to one worker:
//! `curl -s "http://127.0.0.1:3002/fail?n=[1-50]" > /dev/null`.
//!
//! Flags, each also an environment variable: `--bind` (`CUSTOM_BIND`, default
//! 127.0.0.1:3002), `--workers` (`CUSTOM_WORKERS`, default 1), `--errors` (`CUSTOM_ERRORS`,
//! default 50), `--print-events` (`CUSTOM_PRINT_EVENTS`: every lifecycle event as a JSON line
//! `EVENT {...}` on stdout).

use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use clap::Parser;
use regiment_tower::{Criterion, MaxAge, Replace, Verdict};

/// Replace this worker after `limit` consecutive 5xx responses.
struct ServerErrors {
    limit: u32,
    streak: AtomicU32,
}

impl Criterion for ServerErrors {
    fn on_response<B>(&self, res: &http::Response<B>) -> Verdict {
        if !res.status().is_server_error() {
            self.streak.store(0, Relaxed);
            return Verdict::Keep;
        }
        let n = self.streak.fetch_add(1, Relaxed) + 1;
        Verdict::replace_if(n >= self.limit, || {
            format!("server-errors: {n} consecutive 5xx >= {}", self.limit)
        })
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "custom_criterion",
    about = "Custom replacement criteria on an axum app"
)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "CUSTOM_BIND", default_value = "127.0.0.1:3002")]
    bind: String,
    /// Number of worker processes (one by default: each counts its own streak of errors).
    #[arg(long, env = "CUSTOM_WORKERS", default_value_t = 1)]
    workers: usize,
    /// Consecutive 5xx responses that make a worker ask for its replacement.
    #[arg(long, env = "CUSTOM_ERRORS", default_value_t = 50)]
    errors: u32,
    /// Print every lifecycle event as a JSON line (`EVENT {...}`) on stdout.
    #[arg(long, env = "CUSTOM_PRINT_EVENTS")]
    print_events: bool,
}

/// Runs the example as master or worker, from the command line and environment.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let app = Router::new()
        .route(
            "/",
            get(|| async { format!("ok from pid {}\n", std::process::id()) }),
        )
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "failing\n") }),
        )
        .route("/pid", get(|| async { std::process::id().to_string() }))
        .layer(Replace::when(ServerErrors {
            limit: args.errors,
            streak: AtomicU32::new(0),
        }))
        .layer(Replace::when(
            MaxAge::hours(6).splay(Duration::from_secs(30 * 60)),
        ));
    let output = if args.print_events {
        crate::events::Output::Json
    } else {
        crate::events::Output::Summary
    };
    let server = regiment_axum::Server::new()
        .bind(args.bind)
        .workers(args.workers)
        .on_master(move |handle| {
            crate::events::print("custom_criterion", handle, output);
        });
    crate::run::main("custom_criterion", server.serve(app))
}
