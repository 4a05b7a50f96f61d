//! The `leaky` example, built in this package so that tests can run it
//! (`env!("CARGO_BIN_EXE_leaky_under_test")`).

fn main() -> std::process::ExitCode {
    examples::leaky_app::main()
}
