//! Serves one accepted connection, and ends it without losing a request when the worker
//! drains.
//!
//! When the drain starts:
//! - HTTP/2: GOAWAY at once (hyper's graceful shutdown); open streams finish.
//! - HTTP/1: a request in flight finishes and its answer carries `Connection: close` (see
//!   [`crate::connection_close`]); hyper then closes. A connection that stays idle for a whole
//!   grace period (no byte read, no answer under way) is shut down: hyper closes an idle
//!   HTTP/1 connection at once (FIN, see [`crate::tracked_io`]). Otherwise the connection gets
//!   another grace: the request being sent is served with `Connection: close`, or, if the
//!   client stalls in its header, the header read timeout closes it; an answer still streaming
//!   is waited for, and so is the request its client may send right after it.
//!
//! Outside a drain, a connection that has not started a request within the header read timeout
//! is shut down too: hyper's own header timer only starts once the connection is known to
//! speak HTTP/1, and a peer that trickles the HTTP/2 preface would otherwise hold it forever.

use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::BoxError;
use crate::connection_close::ConnectionClose;
use crate::drain::{ConnectionGuard, Drain};
use crate::http_options::HttpOptions;
use crate::tracked_io::{ConnectionState, TrackedIo};
use crate::{HttpService, ResponseBody};

/// What every connection of a worker shares.
pub(crate) struct Shared<S> {
    pub service: S,
    pub http: auto::Builder<TokioExecutor>,
    pub options: HttpOptions,
    pub drain: &'static Drain,
    pub stats: Option<&'static regiment_core::worker::Stats>,
}

/// The hyper connection builder: HTTP/1.1 and HTTP/2 by preface, with a timer installed so
/// that the header read timeout (and HTTP/2 keep-alive) actually run.
pub(crate) fn http_builder(options: &HttpOptions) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(true);
    builder.http2().timer(hyper_util::rt::TokioTimer::new());
    builder
}

/// Serves `io` until the connection ends; see the module docs.
pub(crate) async fn serve<I, S, B>(io: I, guard: ConnectionGuard, shared: Arc<Shared<S>>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService<B>,
    B: ResponseBody,
{
    let state = Arc::new(ConnectionState::default());
    let io = TokioIo::new(TrackedIo::new(io, state.clone(), guard));
    let service = ConnectionClose::new(
        shared.service.clone(),
        state.clone(),
        shared.drain,
        shared.stats,
    );
    let conn = shared.http.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let grace = shared.options.idle_grace;
    let first_request_by = tokio::time::sleep(shared.options.header_read_timeout);
    tokio::pin!(first_request_by);
    let mut first_request_checked = false;
    let mut shut_down = false;

    // Serving.
    loop {
        tokio::select! {
            result = conn.as_mut() => return finished(result),
            () = &mut first_request_by, if !first_request_checked => {
                first_request_checked = true;
                if state.requests() == 0 {
                    tracing::debug!("no request within the header read timeout; closing");
                    conn.as_mut().graceful_shutdown();
                    shut_down = true;
                }
            }
            () = shared.drain.started() => break,
        }
    }

    // Draining.
    if !shut_down {
        loop {
            if state.is_http2() {
                conn.as_mut().graceful_shutdown();
                break;
            }
            let reads = state.reads();
            tokio::select! {
                result = conn.as_mut() => return finished(result),
                () = tokio::time::sleep(grace) => {}
            }
            // Idle: nothing read for a whole grace, and no answer under way. (An answer whose
            // head went out before the drain, without `Connection: close`, leaves its client
            // free to send another request when it ends: that one is waited for too.)
            if state.reads() == reads && state.in_flight() == 0 {
                conn.as_mut().graceful_shutdown();
                break;
            }
        }
    }
    finished(conn.await);
}

fn finished(result: Result<(), BoxError>) {
    if let Err(e) = result {
        // Clients that go away, header timeouts, cancelled version reads: routine.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
