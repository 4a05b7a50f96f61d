//! `regiment-load`: HTTP load for a bounded time, every outcome classified.
//!
//! ```text
//! regiment-load --connections 32 --duration 10s http://127.0.0.1:3000/
//! regiment-load -c 64 --protocol new-connection --path / --path '/slow?ms=5' --json 127.0.0.1:3000
//! ```
//!
//! Prints throughput, outcomes by class (ok, non-2xx, connect error, reset or EOF, timeout;
//! and requests retried on a new connection after the server closed an idle one), latency
//! quantiles and, with `--timeline`, a line per second; with `--json`, the same as one JSON
//! object on stdout. Exit status: 0 when no request failed, 1 when some did, 2 for a wrong
//! command line.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use regiment_bench::load::{self, Plan, Protocol};
use regiment_bench::report;

#[derive(Debug, Parser)]
#[command(
    name = "regiment-load",
    version,
    about = "HTTP load for a bounded time, every outcome classified"
)]
struct Args {
    /// The server: `HOST:PORT` or `http://HOST:PORT[/PATH]` (the path joins the mix).
    target: String,
    /// Connections open at once, each sending one request after the other.
    #[arg(short, long, default_value_t = 32)]
    connections: usize,
    /// Generator threads (each a single-threaded runtime with its share of connections).
    #[arg(short, long, default_value_t = 1)]
    threads: usize,
    /// How connections speak.
    #[arg(short, long, value_enum, default_value_t = Protocol::KeepAlive)]
    protocol: Protocol,
    /// Paths requested in turn (repeatable); default `/` or the target's path.
    #[arg(long = "path")]
    paths: Vec<String>,
    /// Measured time (humantime: `10s`, `1m`).
    #[arg(short, long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Time run before measuring.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Stop after about this many measured requests, if before the end of the time.
    #[arg(short = 'n', long)]
    requests: Option<u64>,
    /// Longest wait for one whole answer.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print a line per second.
    #[arg(long)]
    timeline: bool,
    /// Print the figures as one JSON object instead.
    #[arg(long)]
    json: bool,
}

/// Splits `HOST:PORT` or `http://HOST:PORT/PATH` into an address and an optional path.
fn target(text: &str) -> Result<(SocketAddr, Option<String>), String> {
    let rest = text.strip_prefix("http://").unwrap_or(text);
    if rest.starts_with("https://") || text.starts_with("https://") {
        return Err("https is not supported: give http://HOST:PORT".into());
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(rest[i..].to_string())),
        None => (rest, None),
    };
    let addr = authority.parse().map_err(|_| {
        format!("`{text}` is not HOST:PORT or http://HOST:PORT[/PATH] with a numeric IP")
    })?;
    Ok((addr, path.filter(|p| p != "/" || text.ends_with('/'))))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (addr, path) = match target(&args.target) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("regiment-load: {e}");
            return ExitCode::from(2);
        }
    };
    let mut paths = args.paths.clone();
    if let Some(p) = path {
        paths.insert(0, p);
    }
    let plan = Plan::new(addr)
        .connections(args.connections)
        .threads(args.threads)
        .protocol(args.protocol)
        .paths(paths)
        .warmup(args.warmup)
        .duration(args.duration)
        .max_requests(args.requests)
        .request_timeout(args.timeout);
    let measured = match load::run(&plan) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("regiment-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&measured).expect("figures serialize")
        );
    } else {
        print!("{}", report::summary(&measured));
        if args.timeline {
            print!("{}", report::timeline(&measured));
        }
    }
    if measured.failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
