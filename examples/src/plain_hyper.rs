//! `plain_hyper`: a tower service without axum, on regiment-axum's engine; see
//! `examples::plain_hyper_app`.
//!
//! ```text
//! cargo run -p examples --bin plain_hyper
//! ```

fn main() -> std::process::ExitCode {
    examples::plain_hyper_app::main()
}
