//! The `plain_hyper` example, built in this package so that tests can run it
//! (`env!("CARGO_BIN_EXE_plain_hyper_under_test")`).

fn main() -> std::process::ExitCode {
    examples::plain_hyper_app::main()
}
