//! A build of `hello` that fails its own health check (`GET /healthz` answers 503): deployed
//! over `hello_under_test`, its workers exit before they are ready.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use regiment_axum::HealthCheck;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let app = Router::new().route("/", get(|| async { "hello\n" })).route(
        "/healthz",
        get(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unreachable\n",
            )
        }),
    );
    let check = HealthCheck::path("/healthz").within(Duration::from_millis(300));
    match regiment_axum::Server::new()
        .health_check(check)
        .serve(app)
        .await
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hello_unhealthy: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
