//! Not API: what regiment's own crates (regiment-tower, regiment-axum and the end-to-end tests)
//! need from regiment-core beyond its public API.
//!
//! Everything here may change or disappear in any release, patch releases included, and is
//! hidden from the documentation: applications must not use it. It is public only because Rust
//! has no visibility limited to the crates of one workspace, and it is kept to this one module
//! so that the rest of the crate is exactly the API its documentation shows.

// The wire format of the IPC channel: the end-to-end fixture writes frames (valid and garbage)
// straight to its channel, to test how the master takes them.
pub use crate::protocol::{WorkerMessage, encode};

// The kept-open `/proc/self/statm` of the heartbeats, shared with regiment-tower's memory
// sampler so that RSS is read one way.
pub use crate::worker::memory::Statm;
