//! The worker side of a server: serve the inherited listeners until the master says drain,
//! then drain and return as soon as the last connection is closed, or with
//! [`Error::DrainDeadline`] if connections are still open at the drain deadline.

use std::future::Future;
use std::sync::Arc;

use regiment_core::{listen, worker};

use crate::connection::{self, Shared};
use crate::drain::Drain;
use crate::http_options::HttpOptions;
use crate::{Error, accept};
use crate::{HttpService, ResponseBody};

/// Runs a worker: builds the service (the factory runs here, never in the master), accepts,
/// reports ready, and drains on the master's drain message, on EOF of the IPC channel (master
/// gone) or on SIGTERM/SIGINT.
pub(crate) async fn run<F, Fut, S, B>(make_service: F, options: HttpOptions) -> Result<(), Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = S>,
    S: HttpService<B>,
    B: ResponseBody,
{
    // From this runtime, so that a blocked runtime shows as silence to the master.
    regiment_core::plumbing::start_heartbeat();
    let listeners = listen::take_inherited().map_err(|source| Error::Io {
        context: "taking the inherited listeners",
        source,
    })?;
    if listeners.is_empty() {
        return Err(Error::NoListeners);
    }
    let service = make_service().await;
    if let Some(check) = &options.health_check {
        // Before the accept loops: a worker that fails it never takes a connection.
        check.pass(&service).await.map_err(|why| {
            tracing::error!(%why, "health check failed; exiting before ready");
            Error::HealthCheck(why)
        })?;
    }
    let drain = Drain::leak();
    let shared = Arc::new(Shared {
        http: connection::http_builder(&options),
        service,
        options,
        drain,
        stats: worker::stats(),
    });
    let loops = accept::spawn_all(listeners, shared).map_err(|source| Error::Io {
        context: "registering the inherited listeners",
        source,
    })?;
    worker::listening();

    worker::drained().await;
    drain.start();
    for accept_loop in loops {
        let _ = accept_loop.await;
    }
    tracing::debug!(
        open = drain.open_connections(),
        "accepting stopped; waiting for open connections"
    );
    // The master kills us at the deadline anyway; stopping to wait then only makes the exit
    // ours, and says that the drain got stuck (see `Error::DrainDeadline`).
    match worker::drain_deadline() {
        Some(deadline) => {
            if tokio::time::timeout_at(deadline.into(), drain.all_closed())
                .await
                .is_err()
            {
                let open = drain.open_connections();
                if open > 0 {
                    tracing::warn!(open, "drain deadline reached with connections still open");
                    return Err(Error::DrainDeadline { open });
                }
            }
        }
        None => drain.all_closed().await,
    }
    tracing::debug!("drained");
    Ok(())
}
