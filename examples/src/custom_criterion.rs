//! `custom_criterion`: see `examples::custom_criterion_app` for what it shows, its flags and routes.
//!
//! ```text
//! cargo run -p examples --bin custom_criterion
//! ```

fn main() -> std::process::ExitCode {
    examples::custom_criterion_app::main()
}
