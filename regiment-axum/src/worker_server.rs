//! The server of a worker process: serve the inherited listeners until the master says drain,
//! then drain and return as soon as the last connection is closed, or with
//! [`Error::DrainDeadline`] if connections are still open a margin before the drain deadline.
//!
//! The margin is a tenth of the time the drain had left when it began, at most
//! [`MAX_DEADLINE_MARGIN`]: it covers the drain message's transit (the worker counts the time
//! left from when it read it, see [`regiment_core::worker::drain_deadline`]) and the worker's
//! own exit, so that the worker exits on its own, with its own status (75) and a log line
//! naming what was still open, before the master's SIGKILL would have cut it without a word.
//! It tells its master first (`drain-abandoned`), which books the exit as a drain given up,
//! with the requests left in flight counted as failed, whatever status the process exits with.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use regiment_core::{listen, worker};

use crate::connection::{self, Engine};
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
    // Before anything else: the channel taken, the master hears of this worker (readiness
    // `started`) and this worker of its master's drain, death or of a SIGTERM.
    regiment_core::plumbing::attach_worker();
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
    let engine = Arc::new(Engine {
        http: connection::http_builder(&options),
        service,
        options,
        drain,
        stats: worker::stats(),
    });
    let mut accept_loops = accept::spawn_all(listeners, engine).map_err(|source| Error::Io {
        context: "registering the inherited listeners",
        source,
    })?;
    worker::listening();

    worker::drained().await;
    // Accepting stops before the drain starts: a client that sees the drain (a `Connection:
    // close`, a GOAWAY) finds its next connection taken by another worker, never this one.
    // A connection accepted just before sees the drain as soon as it starts.
    accept_loops.shutdown().await;
    drain.start();
    tracing::debug!(
        open = drain.open_connections(),
        "accepting stopped; waiting for open connections"
    );
    // The master kills us at the deadline anyway; giving up a margin before it makes the exit
    // ours, and says that the drain got stuck and on what (see `Error::DrainDeadline`).
    match worker::drain_deadline() {
        Some(deadline) => {
            let give_up = give_up_at(deadline, Instant::now());
            if tokio::time::timeout_at(give_up.into(), drain.all_closed())
                .await
                .is_err()
            {
                let open = drain.open_connections();
                if open > 0 {
                    tracing::warn!(
                        open,
                        connections = %drain.describe_open(),
                        "drain deadline near: exiting with connections still open"
                    );
                    // The master learns it from us, whatever status `main` then exits with;
                    // the requests left unanswered count as failed.
                    regiment_core::plumbing::abandon_drain(open as u64).await;
                    return Err(Error::DrainDeadline { open });
                }
            }
        }
        None => drain.all_closed().await,
    }
    tracing::debug!("drained");
    Ok(())
}

/// The largest margin a draining worker keeps before its deadline; see the module docs.
pub(crate) const MAX_DEADLINE_MARGIN: Duration = Duration::from_secs(1);

/// When a drain that began at `now`, to be killed at `deadline`, stops waiting: a tenth of the
/// time left before the deadline, at most [`MAX_DEADLINE_MARGIN`].
fn give_up_at(deadline: Instant, now: Instant) -> Instant {
    let left = deadline.saturating_duration_since(now);
    deadline - (left / 10).min(MAX_DEADLINE_MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_gives_up_a_tenth_of_its_time_at_most_a_second_early() {
        let now = Instant::now();
        let at = |left: u64| give_up_at(now + Duration::from_millis(left), now) - now;
        assert_eq!(at(30_000), Duration::from_secs(29));
        assert_eq!(at(5_000), Duration::from_millis(4_500));
        assert_eq!(at(100), Duration::from_millis(90));
        assert_eq!(at(0), Duration::ZERO);
    }
}
