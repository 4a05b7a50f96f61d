//! Helpers for the end-to-end tests: a fixture application and a harness that starts it as a
//! real cluster, reads its lifecycle events and cleans up every process it started; a watch of
//! a cluster's memory from outside; a memory cgroup with a limit for a cluster to run in;
//! readers of the unit files and Dockerfile in docs/, a harness that runs a unit as systemd
//! would, and a tonic client that watches its channel's connections.

pub mod closable_pipe;
pub mod cluster;
pub mod command;
pub mod deploy;
pub mod descriptors;
pub mod dockerfile;
pub mod fixture;
mod goaway_watch;
pub mod grpc;
pub mod load;
pub mod memory_cgroup;
pub mod notify;
pub mod procfs;
pub mod pss_watch;
pub mod raw_worker;
pub mod scratch;
pub mod systemd;
pub mod unit_file;
