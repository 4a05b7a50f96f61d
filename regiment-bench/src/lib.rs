//! regiment's benchmarks.
//!
//! - [`load`]: the load generator behind the `regiment-load` command;
//! - `regiment-bench` (the other binary): runs the benchmark matrix of BENCHMARKS.md on the
//!   machine at hand and writes its report.
//!
//! ```text
//! cargo install --path regiment-bench
//! regiment-load --connections 32 --duration 10s http://127.0.0.1:3000/
//! ```

pub mod load;
pub mod matrix;
pub mod procfs;
pub mod report;
