//! A regiment-axum server whose `/block/{what}` handler blocks the thread it runs on, with
//! `std::thread::sleep` in an async handler (the mistake the kill reports are for), on a
//! current-thread runtime: one such request blocks the whole worker, its heartbeats too. It
//! prints its events as `EVENT {...}` lines. `/` answers at once.

use std::time::Duration;

use axum::extract::Path;

/// What the kill report must show in the blocked thread's stack: named so that a test finds it.
#[inline(never)]
fn block_the_runtime_thread(what: &str) -> String {
    // Long enough for any test to see the worker found silent, replaced, reported and killed.
    std::thread::sleep(Duration::from_secs(3600));
    format!("{what} done\n")
}

async fn block(Path(what): Path<String>) -> String {
    block_the_runtime_thread(&what)
}

fn main() -> std::process::ExitCode {
    examples::run::main_on(
        examples::run::Flavor::CurrentThread,
        "blocking_handler",
        async {
            let mut server = regiment_axum::Server::new().on_master(|handle| {
                drop(examples::events::print(
                    "blocking_handler",
                    handle,
                    examples::events::Output::Json,
                ))
            });
            // The harness finds its workers by this tag (`Cluster::is_ours`).
            if let Ok(tag) = std::env::var("FIXTURE_TAG") {
                server = server.env("FIXTURE_TAG", tag);
            }
            let app = axum::Router::new()
                .route("/", axum::routing::get(|| async { "ok\n" }))
                .route("/block/{what}", axum::routing::get(block));
            server.serve(app).await
        },
    )
}
