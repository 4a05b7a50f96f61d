//! `leaky`: see `examples::leaky_app` for what it shows, its flags and routes.
//!
//! ```text
//! cargo run -p examples --bin leaky
//! ```

fn main() -> std::process::ExitCode {
    examples::leaky_app::main()
}
