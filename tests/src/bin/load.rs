//! `load`: runs the classifying load client of `tests::load` against a server.
//!
//! ```text
//! cargo run -p tests --bin load -- --addr 127.0.0.1:3000 --keep-alive 4 --new-connection 4 \
//!     --http2 0 --path / --path '/slow?ms=100' --seconds 15
//! ```
//!
//! Prints one summary line (and the first failures); exits 1 if any request failed.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tests::load::{self, ClientSpec, LoadConfig, Mode};

#[derive(Debug, Parser)]
#[command(name = "load", about = "HTTP load that classifies every outcome")]
struct Args {
    /// Server address (127.0.0.1 only in tests).
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// HTTP/1.1 keep-alive clients.
    #[arg(long, default_value_t = 4)]
    keep_alive: usize,
    /// HTTP/1.1 clients opening a new connection per request.
    #[arg(long, default_value_t = 4)]
    new_connection: usize,
    /// HTTP/2 clients.
    #[arg(long, default_value_t = 0)]
    http2: usize,
    /// Paths requested in turn (repeatable).
    #[arg(long = "path", default_value = "/")]
    paths: Vec<String>,
    /// Most requests per client.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Longest run, in seconds.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Pause between requests of one client, in milliseconds.
    #[arg(long, default_value_t = 0)]
    think_ms: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let paths: Vec<&str> = args.paths.iter().map(String::as_str).collect();
    let spec = |mode| {
        ClientSpec::new(mode, &paths)
            .max_requests(args.requests)
            .think_time(Duration::from_millis(args.think_ms))
    };
    let config = LoadConfig::new(args.addr)
        .clients(args.keep_alive, spec(Mode::KeepAlive))
        .clients(args.new_connection, spec(Mode::NewConnection))
        .clients(args.http2, spec(Mode::Http2))
        .max_duration(Duration::from_secs(args.seconds));
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let started = std::time::Instant::now();
    let report = rt.block_on(load::run(config));
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{report}\n{:.0} requests/s over {secs:.1} s",
        report.ok as f64 / secs
    );
    if report.failures() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
