//! An app built with `regiment_axum::serve_factory` whose factory leaves a trace: a file named
//! after the pid of the process that ran it, in `FACTORY_PROBE_DIR`. The master prints its
//! events as `EVENT {...}` lines, as the test harness expects.

#[tokio::main]
async fn main() -> Result<(), regiment_axum::Error> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let dir = std::env::var("FACTORY_PROBE_DIR").expect("FACTORY_PROBE_DIR");
    regiment_axum::Server::new()
        .on_master(|handle| {
            let mut events = handle.events();
            tokio::spawn(async move {
                while let Some(e) = events.recv().await {
                    if let Ok(line) = serde_json::to_string(&e) {
                        println!("EVENT {line}");
                    }
                }
            });
        })
        .serve_factory(|| async move {
            std::fs::write(format!("{dir}/{}", std::process::id()), b"").expect("trace");
            axum::Router::new().route("/", axum::routing::get(|| async { "built in a worker" }))
        })
        .await
}
