//! The `live` example (WebSocket and server-sent events), built in this package so that tests
//! can run it (`env!("CARGO_BIN_EXE_live_under_test")`).

fn main() -> std::process::ExitCode {
    examples::live_app::main()
}
