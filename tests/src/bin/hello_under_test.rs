//! The `hello` example, built in this package so that tests can run it
//! (`env!("CARGO_BIN_EXE_hello_under_test")`).

fn main() -> std::process::ExitCode {
    examples::hello_app::main()
}
