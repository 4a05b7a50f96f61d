//! `plain_hyper`: a tower service without axum, served by regiment-axum's engine (same workers,
//! same lossless drain).
//!
//! ```text
//! cargo run -p examples --bin plain_hyper            # listens on 127.0.0.1:3000
//! cargo run -p examples --bin plain_hyper -- --help  # what sets it up
//! REGIMENT_BIND=127.0.0.1:8080 REGIMENT_WORKERS=2 cargo run -p examples --bin plain_hyper
//! curl http://127.0.0.1:3000/
//! ```

use std::convert::Infallible;
use std::process::ExitCode;

use clap::Parser;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::service::TowerToHyperService;

/// A plain tower service: no router, no extractors.
async fn handle(req: Request<Incoming>) -> Result<Response<String>, Infallible> {
    let res = match req.uri().path() {
        "/" => Response::new(format!(
            "hello from a plain tower service, pid {}\n",
            std::process::id()
        )),
        _ => {
            let mut res = Response::new("not found\n".to_owned());
            *res.status_mut() = StatusCode::NOT_FOUND;
            res
        }
    };
    Ok(res)
}

/// The command line of `plain_hyper`: no flag of its own, but `--help` (and `--version`) as any
/// program's, and a flag it does not take refused, rather than a server started regardless.
#[derive(Debug, Parser)]
#[command(
    name = "plain_hyper",
    version,
    about = "A plain tower service (no axum) served by regiment-axum's engine",
    after_help = "It takes no flag of its own: regiment's variables set it up, such as \
                  REGIMENT_BIND (default 127.0.0.1:3000), REGIMENT_WORKERS (default: one per \
                  CPU) and REGIMENT_DRAIN_TIMEOUT (default 30s). See the options table of \
                  regiment's README."
)]
struct Args {}

/// Runs `plain_hyper` as master or worker: `REGIMENT_BIND` (default 127.0.0.1:3000),
/// `REGIMENT_WORKERS` and the other `REGIMENT_*` variables apply.
pub fn main() -> ExitCode {
    // Workers get the master's arguments, which parsed there already.
    let Args {} = Args::parse();
    let service = TowerToHyperService::new(tower::service_fn(handle));
    // A hyper service works as well: hyper::service::service_fn(handle).
    crate::run::main("plain_hyper", regiment_axum::serve_service(service))
}
