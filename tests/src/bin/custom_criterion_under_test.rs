//! The `custom_criterion` example, built in this package so that tests can run it
//! (`env!("CARGO_BIN_EXE_custom_criterion_under_test")`).

fn main() -> std::process::ExitCode {
    examples::custom_criterion_app::main()
}
