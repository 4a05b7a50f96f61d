//! # regiment-axum
//!
//! `serve(app)` for axum (or any tower/hyper service) under regiment: the same program is the
//! master, which binds the listeners and supervises worker processes, and each worker, which
//! serves the app on the inherited listeners.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), regiment_axum::Error> {
//!     let app = Router::new().route("/", get(|| async { "hello" }));
//!     regiment_axum::serve(app).await // master: supervise; worker: serve
//! }
//! ```
//!
//! The forms:
//! - [`serve`]`(app)`: default options, listening on [`DEFAULT_BIND`] (or `REGIMENT_BIND`). The
//!   app is an axum `Router`, or any tower service ([`App`]): a `Router` wrapped in layers as a
//!   whole, which is the cheap way to put the replacement criteria around it.
//! - [`serve_with`]`(builder, app)`: a [`regiment_core::Builder`] you configured.
//! - [`serve_factory`]`(|| async { app })`: the app is built in each worker only.
//! - [`serve_service`]`(service)`: any hyper service, or tower service through
//!   [`TowerToHyperService`](hyper_util::service::TowerToHyperService), without axum.
//! - [`Server`]: every option (supervisor and HTTP) and every form above as methods.
//!
//! ## The drain
//!
//! A worker told to drain (by the master, by the master's death, or by SIGTERM/SIGINT) loses
//! no request:
//! - it stops accepting at once; the listening socket stays open in the master and the other
//!   workers, which accept whatever is still queued;
//! - requests in flight finish, however long, until the master's deadline;
//! - on HTTP/1.1 keep-alive connections, a request that arrives during the drain is served and
//!   answered with `Connection: close`; a connection that stays idle for [`Server::idle_grace`]
//!   is closed with FIN (never RST); HTTP/2 connections get GOAWAY;
//! - a client that sends half a header is cut off by the header read timeout (`axum::serve`
//!   waits forever there);
//! - no new upgrade: a WebSocket handshake (any `101` answer) or an HTTP/2 extended CONNECT that
//!   the app accepts is answered `503` with `Retry-After: 0` (and `Connection: close` on
//!   HTTP/1) instead, so that the client reconnects at once to a worker that is not draining;
//! - the worker returns from `serve` as soon as its last connection is closed. An upgraded
//!   connection (WebSocket) counts until the application drops it: applications that hold such
//!   connections close them on [`regiment_core::worker::drained`] (a WebSocket with close code
//!   1001, going away; a server-sent-events stream by ending, after an event with a `retry:`
//!   hint). The `live` example of the repository does both;
//! - a drain that cannot finish (a request that outlasts the drain timeout, a WebSocket the app
//!   never closes) is given up a tenth of the drain timeout (at most 1 s) before the master's
//!   deadline: `serve` logs each connection still open (peer address and state), tells the
//!   master (which books the exit as a drain given up, with the requests left in flight counted
//!   as failed) and returns [`Error::DrainDeadline`], whose [`Error::exit_code`] is 75, so that
//!   the worker exits on its own and says why, rather than being killed without a word.
//!
//! ## Long-lived connections
//!
//! Outside a drain, a connection is closed only by its client, by a protocol error, or by a
//! timeout you set:
//! - [`Server::header_read_timeout`] (`REGIMENT_HEADER_READ_TIMEOUT`, 10 s): the time to send a
//!   request header, and the most an HTTP/1 keep-alive connection idles between requests; a new
//!   connection must send its first request, or complete the HTTP/2 preface, within it;
//! - [`Server::http2_keep_alive`] (`REGIMENT_HTTP2_KEEP_ALIVE`, off): PINGs that find HTTP/2
//!   peers gone without a word.
//!
//! An HTTP/2 connection past its preface (a gRPC channel, a client's pool) may stay idle for as
//! long as its client keeps it.
//!
//! Requests and requests in flight are counted in [`regiment_core::worker::stats`] (relaxed
//! atomics, for the heartbeats).

mod accept;
mod app_service;
mod builder;
mod connection;
mod connection_close;
mod drain;
#[cfg(test)]
mod engine_tests;
mod error;
mod header_timer;
mod health;
mod http_options;
mod lazy_poll;
mod preface;
mod service;
mod supervisor_options;
mod tracked_io;
mod worker_server;

use std::future::Future;

pub use builder::{DEFAULT_BIND, Server};
pub use error::Error;
pub use health::{DEFAULT_HEALTH_CHECK_WITHIN, HealthCheck};
pub use http_options::{DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_GRACE, Nagle};
pub use regiment_core;
// Taken by `Server` as by `regiment_core::Builder`: usable without naming regiment_core.
pub use regiment_core::{EnvOverrides, WatchProgram};
pub use service::{App, HttpService, ResponseBody};

/// The error type services and bodies may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves `app` under regiment with the default options: in the master, supervises one worker
/// per CPU listening on [`DEFAULT_BIND`] (environment overrides apply: `REGIMENT_BIND`,
/// `REGIMENT_WORKERS`, ...); in a worker, serves `app` until drained.
///
/// ```no_run
/// # async fn run() -> Result<(), regiment_axum::Error> {
/// let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
/// regiment_axum::serve(app).await
/// # }
/// ```
pub async fn serve<A, B>(app: A) -> Result<(), Error>
where
    A: App<B>,
    B: ResponseBody,
{
    Server::new().serve(app).await
}

/// Serves `app` with the supervisor options of `builder` (its bind addresses as given).
///
/// ```no_run
/// # async fn run() -> Result<(), regiment_axum::Error> {
/// let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
/// let builder = regiment_core::Builder::new().workers(4).bind("127.0.0.1:8080");
/// regiment_axum::serve_with(builder, app).await
/// # }
/// ```
pub async fn serve_with<A, B>(builder: regiment_core::Builder, app: A) -> Result<(), Error>
where
    A: App<B>,
    B: ResponseBody,
{
    Server::with_builder(builder).serve(app).await
}

/// Serves the app `factory` builds in each worker; the master never calls it.
///
/// ```no_run
/// # async fn run() -> Result<(), regiment_axum::Error> {
/// regiment_axum::serve_factory(|| async {
///     axum::Router::new().route("/", axum::routing::get(|| async { "hello" }))
/// })
/// .await
/// # }
/// ```
pub async fn serve_factory<F, Fut, A, B>(factory: F) -> Result<(), Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = A>,
    A: App<B>,
    B: ResponseBody,
{
    Server::new().serve_factory(factory).await
}

/// Serves any hyper service with the same engine and drain as axum apps; wrap a tower service
/// in [`TowerToHyperService`](hyper_util::service::TowerToHyperService).
///
/// ```no_run
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use hyper::body::Incoming;
/// use hyper_util::service::TowerToHyperService;
///
/// # async fn run() -> Result<(), regiment_axum::Error> {
/// let tower_service = tower::service_fn(|_req: Request<Incoming>| async {
///     Ok::<_, Infallible>(Response::new(String::from("hello")))
/// });
/// regiment_axum::serve_service(TowerToHyperService::new(tower_service)).await
/// # }
/// ```
pub async fn serve_service<S, B>(service: S) -> Result<(), Error>
where
    S: HttpService<B>,
    B: ResponseBody,
{
    Server::new().serve_service(service).await
}
