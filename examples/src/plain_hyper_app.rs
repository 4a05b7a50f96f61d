//! `plain_hyper`: a tower service without axum, served by regiment-axum's engine (same workers,
//! same lossless drain).
//!
//! ```text
//! cargo run -p examples --bin plain_hyper            # listens on 127.0.0.1:3000
//! REGIMENT_BIND=127.0.0.1:8080 REGIMENT_WORKERS=2 cargo run -p examples --bin plain_hyper
//! curl http://127.0.0.1:3000/
//! ```

use std::convert::Infallible;
use std::process::ExitCode;

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

/// Runs `plain_hyper` as master or worker: `REGIMENT_BIND` (default 127.0.0.1:3000),
/// `REGIMENT_WORKERS` and the other `REGIMENT_*` variables apply.
pub fn main() -> ExitCode {
    let service = TowerToHyperService::new(tower::service_fn(handle));
    // A hyper service works as well: hyper::service::service_fn(handle).
    crate::run::main("plain_hyper", regiment_axum::serve_service(service))
}
