//! The `grpc` example, built in this package so that tests can run it
//! (`env!("CARGO_BIN_EXE_grpc_under_test")`).

fn main() -> std::process::ExitCode {
    examples::grpc_app::main()
}
