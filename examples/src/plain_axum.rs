//! `plain_axum`: `hello`'s routes served by a plain `axum::serve`, one process, no regiment:
//! the baseline of the benchmarks (BENCHMARKS.md).
//!
//! ```text
//! cargo run --release -p examples --bin plain_axum -- --bind 127.0.0.1:3000
//! ```
//!
//! A multi-threaded runtime (`TOKIO_WORKER_THREADS` threads, default one per CPU), as
//! `#[tokio::main]` builds it.

use std::process::ExitCode;

use clap::Parser;

/// The flags of `plain_axum`.
#[derive(Debug, Parser)]
#[command(name = "plain_axum", about = "hello's routes on a plain axum::serve")]
struct Args {
    /// Address to listen on; port 0 picks a free port, printed on stdout.
    #[arg(long, env = "HELLO_BIND", default_value = "127.0.0.1:3000")]
    bind: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let listener = match tokio::net::TcpListener::bind(args.bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("plain_axum: cannot listen on {}: {e}", args.bind);
            return ExitCode::FAILURE;
        }
    };
    if let Ok(addr) = listener.local_addr() {
        println!("plain_axum: listening on http://{addr}");
    }
    let served = axum::serve(listener, examples::hello_app::routes())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plain_axum: {e}");
            ExitCode::FAILURE
        }
    }
}
