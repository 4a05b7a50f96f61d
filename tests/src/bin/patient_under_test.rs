//! A regiment-axum server whose code waits an hour for a request header
//! (`Server::header_read_timeout`), printing its events as `EVENT {...}` lines. What its
//! workers do with a client that sends half a header and stalls shows which timeout reached
//! them: an hour, or the `REGIMENT_HEADER_READ_TIMEOUT` of their master's environment.

use std::time::Duration;

fn main() -> std::process::ExitCode {
    examples::run::main("patient", async {
        let mut server = regiment_axum::Server::new()
            .header_read_timeout(Duration::from_secs(3600))
            .on_master(|handle| {
                drop(examples::events::print(
                    "patient",
                    handle,
                    examples::events::Output::Json,
                ))
            });
        // The harness finds its workers by this tag (`Cluster::is_ours`), in whatever
        // environment they start from (`REGIMENT_WORKER_ENV=only-configured`).
        if let Ok(tag) = std::env::var("FIXTURE_TAG") {
            server = server.env("FIXTURE_TAG", tag);
        }
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "patient\n" }));
        server.serve(app).await
    })
}
