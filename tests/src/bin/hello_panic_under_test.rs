//! A broken build of `hello`: it starts, gets ready, and its handler panics on every request,
//! so that no request gets an answer (the connection closes). Deployed over `hello_under_test`
//! to test that a canary rollout sees failures that are not 5xx answers.

use axum::Router;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let app = Router::new().fallback(broken);
    match regiment_axum::serve(app).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hello_panic: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn broken() -> &'static str {
    panic!("this build is broken")
}
