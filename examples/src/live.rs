//! `live`: WebSocket and server-sent-events endpoints that end on drain, under regiment; see
//! `examples::live_app` for the routes.
//!
//! ```text
//! cargo run -p examples --bin live
//! ```

fn main() -> std::process::ExitCode {
    examples::live_app::main()
}
