//! A build of `hello` that crashes (exit 5) one second after it starts serving, as a build
//! with a fatal bug on its first background job would. Deployed over `hello_under_test`.

use std::time::Duration;

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        std::process::exit(5);
    });
    let app = Router::new().route("/", get(|| async { "hello from a doomed build\n" }));
    match regiment_axum::serve(app).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hello_crashy: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
