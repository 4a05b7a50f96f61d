//! `grpc`: a tonic service under regiment; see `examples::grpc_app` for the flags and the
//! service.
//!
//! ```text
//! cargo run -p examples --bin grpc
//! ```

fn main() -> std::process::ExitCode {
    examples::grpc_app::main()
}
