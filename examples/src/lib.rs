//! Runnable regiment examples. Each app lives here as a library module, and its binary in
//! `src/NAME.rs` only calls it, so that the end-to-end tests run exactly the same code:
//!
//! - `hello`: an axum app with the criteria layers, slow and pid routes;
//! - `leaky`: a service that leaks memory on purpose, recycled by `MemoryFootprint`;
//! - `custom_criterion`: a ten-line criterion (50 consecutive 5xx) and `MaxAge`;
//! - `plain_hyper`: a tower/hyper service without axum, on the same engine;
//! - `live`: a WebSocket and a server-sent-events stream that end on drain, and reconnect;
//! - `grpc`: a tonic gRPC service (unary and server streaming) through regiment-axum;
//! - `echo_cluster`: regiment-core alone, a line-echo service with no HTTP.

pub mod custom_criterion_app;
pub mod events;
pub mod grpc_app;
pub mod hello_app;
pub mod leaky_app;
pub mod live_app;
pub mod plain_hyper_app;
pub mod run;

/// The README's code, compiled by `cargo test` so that it stays true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
