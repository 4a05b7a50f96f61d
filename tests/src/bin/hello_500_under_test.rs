//! A broken build of `hello`: it starts, gets ready and serves, but answers every request with
//! a 500. Deployed over `hello_under_test` to test canary rollouts; it only ever runs as a
//! worker (its master is the `hello` that was running).

use axum::Router;
use axum::http::StatusCode;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let app = Router::new()
        .fallback(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "this build is broken\n") });
    match regiment_axum::serve(app).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hello_500: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
