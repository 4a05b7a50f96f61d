//! Serves one accepted connection, and ends it without losing a request when the worker
//! drains.
//!
//! When the drain starts:
//! - HTTP/2: GOAWAY at once (hyper's graceful shutdown); open streams finish.
//! - HTTP/1: a request in flight finishes and its answer carries `Connection: close` (see
//!   [`crate::connection_close`]); hyper then closes. A connection that stays idle for a whole
//!   grace period is shut down: hyper closes an idle HTTP/1 connection at once, without reading
//!   (FIN, see [`crate::tracked_io`]). Idle means: no byte read during the grace, no answer
//!   under way, no request begun but not yet handed to the service, and no unread byte in the
//!   socket's receive queue when the grace ends. Otherwise the connection gets another grace:
//!   the request being sent is served with `Connection: close`, or, if the client stalls in its
//!   header, hyper's header read timeout closes it (not the grace: a request begun is never
//!   taken for idleness); an answer still streaming is waited for, and so is the request its
//!   client may send right after it.
//!
//! The grace and the client's next request can become ready in the same wakeup. The
//! connection is therefore polled first (`biased`), so that a request whose bytes the runtime
//! has seen is read before the grace is looked at; and when the grace has ended, the socket is
//! asked (a non-blocking `MSG_PEEK`) whether bytes arrived that the runtime has not reported
//! yet. What remains is inherent to HTTP/1.1: a request still on the wire, not yet in our
//! receive queue, when we decide to close. Its client sees a clean close (FIN) before any byte
//! of an answer, the case in which RFC 9112 §9.3.1 lets clients retry idempotent requests; the
//! linger of [`crate::tracked_io`] keeps it a FIN, not a reset.
//!
//! Outside a drain, a connection is closed only by its client, by a protocol error, or by one of
//! the timeouts the user sets:
//! - the header read timeout ([`crate::Server::header_read_timeout`]): an HTTP/1 client must
//!   send each request header within it, and an idle HTTP/1 keep-alive connection is closed
//!   after it (hyper's timer, restarted as the connection waits for its next request). A
//!   connection that neither started a request nor completed the HTTP/2 client preface (the
//!   magic and a SETTINGS frame, see [`crate::preface`]) within it is shut down here: hyper's
//!   own header timer only starts once the connection is known to speak HTTP/1, and a peer
//!   that trickles the HTTP/2 preface would otherwise hold it forever;
//! - HTTP/2 keep-alive ([`crate::Server::http2_keep_alive`], off by default): a connection
//!   whose peer does not acknowledge a PING within [`HTTP2_KEEP_ALIVE_TIMEOUT`] is closed.
//!
//! An HTTP/2 connection past its preface may stay idle as long as its client likes: a gRPC
//! channel or a pooled client connection between calls is not churned.

use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::BoxError;
use crate::connection_close::ConnectionClose;
use crate::drain::Drain;
use crate::http_options::HttpOptions;
use crate::tracked_io::{ConnectionState, TrackedIo};
use crate::{HttpService, ResponseBody};

/// The HTTP engine of a worker: what its accept loops and every connection they accept share.
pub(crate) struct Engine<S> {
    pub service: S,
    pub http: auto::Builder<TokioExecutor>,
    pub options: HttpOptions,
    pub drain: &'static Drain,
    pub stats: Option<&'static regiment_core::worker::Stats>,
}

/// How long a peer has to acknowledge an HTTP/2 keep-alive PING before its connection is closed
/// (hyper's default, and gRPC's).
pub(crate) const HTTP2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The hyper connection builder: HTTP/1.1 and HTTP/2 by preface, with a timer installed so
/// that the header read timeout (and HTTP/2 keep-alive) actually run.
pub(crate) fn http_builder(options: &HttpOptions) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        // Extended CONNECT (RFC 8441): WebSockets over HTTP/2, as `axum::serve` allows.
        .enable_connect_protocol()
        // PINGs after this long without a frame from the peer, when the user asked for them.
        .keep_alive_interval(options.http2_keep_alive)
        .keep_alive_timeout(HTTP2_KEEP_ALIVE_TIMEOUT);
    builder
}

/// Serves `io`, counted as open by `state`, until the connection ends; see the module docs.
pub(crate) async fn serve<I, S, B>(io: I, state: Arc<ConnectionState>, engine: Arc<Engine<S>>)
where
    I: AsyncRead + AsyncWrite + AsRawFd + Unpin + Send + 'static,
    S: HttpService<B>,
    B: ResponseBody,
{
    // Only used while `conn`, which owns the socket, is alive and unfinished: see
    // `has_unread_bytes`.
    let fd = io.as_raw_fd();
    let io = TokioIo::new(TrackedIo::new(io, state.clone()));
    let service = ConnectionClose::new(engine.service.clone(), state.clone(), engine.stats);
    let conn = engine.http.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    match serve_until_drain(conn.as_mut(), &state, &engine).await {
        Served::Ended => {}
        Served::UntilDrain => drain_connection(conn, &state, fd, engine.options.idle_grace).await,
    }
}

/// How [`serve_until_drain`] returned.
enum Served {
    /// The connection is done with: ended, or closed without a request to lose.
    Ended,
    /// The drain started on a connection still serving.
    UntilDrain,
}

/// The serving phase: serves the connection until it ends or the drain starts, and applies the
/// first-request rule (see the module docs).
async fn serve_until_drain<C>(
    mut conn: Pin<&mut C>,
    state: &ConnectionState,
    engine: &Engine<impl Sized>,
) -> Served
where
    C: GracefulConnection<Error = BoxError>,
{
    tokio::select! {
        result = conn.as_mut() => finished(result),
        () = tokio::time::sleep(engine.options.header_read_timeout) => {
            if state.requests() > 0 || state.http2_preface_complete() {
                // The first-request rule is met: serve until the end or the drain.
                return serve_past_first_request(conn, engine.drain).await;
            }
            tracing::debug!(
                "no request nor HTTP/2 preface within the header read timeout; closing"
            );
            if state.is_http2() {
                // The magic without its SETTINGS: an HTTP/2 graceful shutdown would wait for
                // the acknowledgement of a PING from a peer that says nothing. There is no
                // request to lose: close (FIN).
                return Served::Ended;
            }
            // HTTP/1, or a connection whose protocol is not known yet (hyper then stops
            // reading the version at once); a header that began meanwhile is still read and
            // answered. The drain has nothing to add to a connection shutting down.
            conn.as_mut().graceful_shutdown();
            finished(conn.await);
        }
        () = engine.drain.started() => return Served::UntilDrain,
    }
    Served::Ended
}

/// The rest of the serving phase, once the first-request rule is met.
async fn serve_past_first_request<C>(conn: Pin<&mut C>, drain: &Drain) -> Served
where
    C: GracefulConnection<Error = BoxError>,
{
    tokio::select! {
        result = conn => {
            finished(result);
            Served::Ended
        }
        () = drain.started() => Served::UntilDrain,
    }
}

/// The draining phase: HTTP/2 gets GOAWAY at once; an HTTP/1 connection is shut down once it
/// stayed idle for a whole `grace` (see the module docs). Returns when the connection ends.
async fn drain_connection<C>(
    mut conn: Pin<&mut C>,
    state: &ConnectionState,
    fd: RawFd,
    grace: Duration,
) where
    C: GracefulConnection<Error = BoxError>,
{
    while !state.is_http2() {
        let reads = state.reads();
        tokio::select! {
            // The connection first: a request that arrives as the grace ends is read (and
            // counted) before the grace is looked at.
            biased;
            result = conn.as_mut() => return finished(result),
            () = tokio::time::sleep(grace) => {}
        }
        // Idle: nothing read for a whole grace, no request begun and not yet handed to the
        // service (a stalled header is the header read timeout's), no answer under way (an
        // answer whose head went out before the drain, without `Connection: close`, leaves
        // its client free to send another request when it ends: that one is waited for too),
        // and nothing in the receive queue that the runtime has not reported yet.
        if state.reads() == reads
            && state.in_flight() == 0
            && !state.request_begun()
            && !has_unread_bytes(fd)
        {
            break;
        }
    }
    conn.as_mut().graceful_shutdown();
    finished(conn.await);
}

/// Whether the peer sent bytes that are still in the socket's receive queue: one
/// `recv(MSG_PEEK | MSG_DONTWAIT)`, which sees what the runtime's readiness has not reported
/// yet, and never blocks. `false` on end of stream or any error.
///
/// `fd` must be the socket of a connection whose hyper connection is still alive and
/// unfinished: that connection owns the socket, so the descriptor is open for the whole call
/// (and could not have been reused by another file).
fn has_unread_bytes(fd: RawFd) -> bool {
    use nix::sys::socket::{MsgFlags, recv};
    matches!(
        recv(fd, &mut [0u8; 1], MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT),
        Ok(n) if n > 0
    )
}

fn finished(result: Result<(), BoxError>) {
    if let Err(e) = result {
        // Clients that go away, header timeouts, cancelled version reads: routine.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
