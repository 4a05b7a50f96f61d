//! `hello`: an axum app under regiment; see `examples::hello_app` for the flags and routes.
//!
//! ```text
//! cargo run -p examples --bin hello
//! ```

fn main() -> std::process::ExitCode {
    examples::hello_app::main()
}
