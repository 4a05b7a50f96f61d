//! Helpers for the end-to-end tests: a fixture application and a harness that starts it as a
//! real cluster, reads its lifecycle events and cleans up every process it started.

pub mod cluster;
pub mod deploy;
pub mod fixture;
pub mod load;
