//! # regiment-axum
//!
//! `serve(app)` for axum under regiment. The server is being written; this crate compiles so
//! that the workspace does.

#![warn(missing_docs)]

pub use regiment_core;
