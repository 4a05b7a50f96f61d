//! `grpc`: a tonic gRPC service served by regiment-axum, so that it gets worker processes,
//! rolling restarts and lossless drains like any axum app. tonic's routes are an axum
//! `Router`; nothing else is needed.
//!
//! ```text
//! cargo run -p examples --bin grpc -- --workers 2
//! grpcurl -plaintext -import-path examples/proto -proto worker_info.proto \
//!     127.0.0.1:50051 workerinfo.v1.WorkerInfo/Whoami
//! grpcurl -plaintext -import-path examples/proto -proto worker_info.proto \
//!     -d '{"count": 5, "interval_ms": 500}' 127.0.0.1:50051 workerinfo.v1.WorkerInfo/Ticks
//! kill -HUP <master pid>                 # rolling restart
//! ```
//!
//! The service (`examples/proto/worker_info.proto`, compiled by `build.rs` with the protoc that
//! the protoc-bin-vendored crate ships): `Whoami` (unary) answers with the worker's pid,
//! generation and whether it is draining, after `delay_ms`; `Ticks` (server streaming) sends
//! `count` ticks `interval_ms` apart, all from the worker that took the call.
//!
//! What a drain means for a gRPC client: the worker's HTTP/2 connections get GOAWAY, which
//! tells the client to open a new connection (to a worker that is not draining) for its next
//! calls, while the calls and streams already open on the old one run to their end (the
//! worker waits for them, up to the drain deadline). A tonic `Channel` does this by itself:
//! one channel lives across any number of rolling restarts. Endless streams should end on
//! [`regiment_core::worker::drained`] instead, or the deadline cuts them.
//!
//! Flags, each also an environment variable: `--bind ADDR` (`GRPC_BIND`, default
//! 127.0.0.1:50051), `--workers N` (`GRPC_WORKERS`, default one per CPU), `--print-events`
//! (`GRPC_PRINT_EVENTS`: every lifecycle event as a JSON line `EVENT {...}` on stdout).
//! regiment's own variables (`REGIMENT_DRAIN_TIMEOUT`, ...) apply as to any regiment app.

use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use futures_util::Stream;
use regiment_core::worker;
use tonic::{Request, Response, Status};

/// The code generated from `examples/proto/worker_info.proto`: messages, the server
/// (`worker_info_server`) and the client (`worker_info_client`).
pub mod proto {
    tonic::include_proto!("workerinfo.v1");
}

use proto::worker_info_server::{WorkerInfo, WorkerInfoServer};
use proto::{Tick, TicksRequest, WhoamiRequest, Worker};

/// The longest `delay_ms` a `Whoami` call may ask for.
pub const MAX_DELAY_MS: u32 = 60_000;
/// The most ticks a `Ticks` call may ask for.
pub const MAX_TICKS: u32 = 1000;
/// The longest `interval_ms` a `Ticks` call may ask for.
pub const MAX_INTERVAL_MS: u32 = 10_000;

/// The flags of `grpc`.
#[derive(Debug, Parser)]
#[command(name = "grpc", about = "A tonic gRPC service served by regiment")]
pub struct Args {
    /// Address to listen on (HOST:PORT or unix:/path); port 0 picks a free port.
    #[arg(long, env = "GRPC_BIND", default_value = "127.0.0.1:50051")]
    pub bind: String,
    /// Number of worker processes (default: one per CPU).
    #[arg(long, env = "GRPC_WORKERS")]
    pub workers: Option<usize>,
    /// Print every lifecycle event as a JSON line (`EVENT {...}`) on stdout.
    #[arg(long, env = "GRPC_PRINT_EVENTS")]
    pub print_events: bool,
}

/// The `WorkerInfo` service: see the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerInfoService;

#[tonic::async_trait]
impl WorkerInfo for WorkerInfoService {
    async fn whoami(&self, request: Request<WhoamiRequest>) -> Result<Response<Worker>, Status> {
        let delay_ms = at_most("delay_ms", request.into_inner().delay_ms, MAX_DELAY_MS)?;
        tokio::time::sleep(Duration::from_millis(delay_ms.into())).await;
        Ok(Response::new(this_worker()))
    }

    type TicksStream = Pin<Box<dyn Stream<Item = Result<Tick, Status>> + Send>>;

    async fn ticks(
        &self,
        request: Request<TicksRequest>,
    ) -> Result<Response<Self::TicksStream>, Status> {
        let TicksRequest { count, interval_ms } = request.into_inner();
        let count = at_most("count", count, MAX_TICKS)?;
        let interval =
            Duration::from_millis(at_most("interval_ms", interval_ms, MAX_INTERVAL_MS)?.into());
        let ticks = futures_util::stream::unfold(0, move |seq| async move {
            if seq == count {
                return None;
            }
            if seq > 0 {
                tokio::time::sleep(interval).await;
            }
            let tick = Tick {
                seq,
                worker: Some(this_worker()),
            };
            Some((Ok(tick), seq + 1))
        });
        Ok(Response::new(Box::pin(ticks)))
    }
}

/// `value`, or `INVALID_ARGUMENT` naming the field and its range.
fn at_most(field: &str, value: u32, max: u32) -> Result<u32, Status> {
    if value > max {
        return Err(Status::invalid_argument(format!(
            "{field} must be 0 to {max}, not {value}"
        )));
    }
    Ok(value)
}

/// This process as a `Worker` message (generation 0 outside a cluster).
fn this_worker() -> Worker {
    Worker {
        pid: std::process::id(),
        generation: worker::generation().unwrap_or(0),
        draining: worker::is_draining(),
    }
}

/// The service as an axum `Router`, which is what regiment-axum serves.
///
/// ```
/// let app: axum::Router = examples::grpc_app::app();
/// # drop(app);
/// ```
pub fn app() -> axum::Router {
    tonic::service::Routes::new(WorkerInfoServer::new(WorkerInfoService))
        .prepare()
        .into_axum_router()
}

/// Runs `grpc` as master or worker, from the command line and environment.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let mut server = regiment_axum::Server::new().bind(args.bind);
    if let Some(n) = args.workers {
        server = server.workers(n);
    }
    let output = if args.print_events {
        crate::events::Output::Json
    } else {
        crate::events::Output::Summary
    };
    let server = server.on_master(move |handle| {
        crate::events::print("grpc", handle, output);
    });
    crate::run::main("grpc", server.serve(app()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn out_of_range_arguments_are_refused_with_their_name_and_range() {
        let status = WorkerInfoService
            .ticks(Request::new(TicksRequest {
                count: MAX_TICKS + 1,
                interval_ms: 0,
            }))
            .await
            .err()
            .expect("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "count must be 0 to 1000, not 1001");
        let status = WorkerInfoService
            .whoami(Request::new(WhoamiRequest {
                delay_ms: MAX_DELAY_MS + 1,
            }))
            .await
            .expect_err("refused");
        assert_eq!(status.message(), "delay_ms must be 0 to 60000, not 60001");
    }

    #[tokio::test]
    async fn ticks_come_in_order_from_this_process() {
        use futures_util::StreamExt;
        let ticks = WorkerInfoService
            .ticks(Request::new(TicksRequest {
                count: 3,
                interval_ms: 1,
            }))
            .await
            .expect("a stream")
            .into_inner();
        let ticks: Vec<Tick> = ticks.map(|t| t.expect("a tick")).collect().await;
        let seqs: Vec<u32> = ticks.iter().map(|t| t.seq).collect();
        assert_eq!(seqs, [0, 1, 2]);
        assert!(
            ticks
                .iter()
                .all(|t| t.worker.as_ref().map(|w| w.pid) == Some(std::process::id()))
        );
    }
}
