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
//!   header, the header read timeout closes it (not the grace: a request begun is never taken
//!   for idleness); an answer still streaming is waited for, and so is the request its
//!   client may send right after it.
//!
//! The grace and the client's next request can become ready in the same wakeup. The
//! connection is therefore polled first, so that a request whose bytes the runtime
//! has seen is read before the grace is looked at; and when the grace has ended, the socket is
//! asked (a non-blocking `MSG_PEEK`) whether bytes arrived that the runtime has not reported
//! yet. What remains is inherent to HTTP/1.1: a request still on the wire, not yet in our
//! receive queue, when we decide to close. Its client sees a clean close (FIN) before any byte
//! of an answer, the case in which RFC 9112 §9.3.1 lets clients retry idempotent requests; the
//! linger of [`crate::tracked_io`] keeps it a FIN, not a reset.
//!
//! Outside a drain, a connection is closed only by its client, by a protocol error, or by one of
//! the timeouts the user sets:
//! - the header read timeout ([`crate::Server::header_read_timeout`], kept by
//!   [`crate::header_timer`]): it runs from the moment a connection opened or its last answer
//!   was done. When it runs out on an HTTP/1 connection (or one whose protocol is not known
//!   yet) that is waiting for a request, the connection is shut down gracefully if nothing of
//!   a request arrived (hyper closes it at once), and closed if a request head began and
//!   stalled, as hyper's own header timeout would. A connection that sent the HTTP/2 magic but
//!   not its SETTINGS within it is closed; one that completed the HTTP/2 client preface (see
//!   [`crate::preface`]) is no longer watched. A connection still open one timeout after its
//!   graceful shutdown is closed;
//! - HTTP/2 keep-alive ([`crate::Server::http2_keep_alive`], off by default): a connection
//!   whose peer does not acknowledge a PING within [`HTTP2_KEEP_ALIVE_TIMEOUT`] is closed.
//!
//! An HTTP/2 connection past its preface may stay idle as long as its client likes: a gRPC
//! channel or a pooled client connection between calls is not churned.
//!
//! The request path pays for none of this beyond a few relaxed atomics and one clock read per
//! request: the connection task polls the drain's signal and the header timer only when they
//! may be ready (see [`crate::lazy_poll`]), not on every wakeup as `tokio::select!` would.

use std::future::{Future, poll_fn};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::BoxError;
use crate::connection_close::ConnectionClose;
use crate::drain::Drain;
use crate::header_timer::{Expired, HeaderTimer};
use crate::http_options::HttpOptions;
use crate::lazy_poll::LazyPoll;
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

/// The hyper connection builder: HTTP/1.1 and HTTP/2 by preface, with a timer installed for
/// HTTP/2 keep-alive. The HTTP/1 header read timeout is the connection task's, not hyper's (see
/// [`crate::header_timer`]).
pub(crate) fn http_builder(options: &HttpOptions) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().header_read_timeout(None).keep_alive(true);
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
    let timeout = engine.options.header_read_timeout;
    let header_sleep = pin!(HeaderTimer::sleep(state.opened(), timeout));
    let mut connection = Connection {
        conn: pin!(engine.http.serve_connection_with_upgrades(io, service)),
        state: &state,
        header_timer: HeaderTimer::new(header_sleep, timeout),
    };
    match connection.serve_until_drain(engine.drain).await {
        Served::Ended => {}
        Served::UntilDrain => connection.drain(fd, engine.options.idle_grace).await,
    }
}

/// How [`Connection::serve_until_drain`] returned.
enum Served {
    /// The connection is done with: ended, or closed by the header read timeout.
    Ended,
    /// The drain started on a connection still serving.
    UntilDrain,
}

/// What a wait of the draining phase ended on.
enum Waited {
    /// The connection is done with.
    Ended,
    /// The grace period ran out.
    Grace,
}

/// One connection, as its task drives it: hyper's connection and the header read timeout.
/// Dropping it closes the socket (with the linger of [`crate::tracked_io`]).
struct Connection<'a, C> {
    conn: Pin<&'a mut C>,
    state: &'a ConnectionState,
    header_timer: HeaderTimer<'a>,
}

impl<C> Connection<'_, C>
where
    C: GracefulConnection<Error = BoxError>,
{
    /// Polls hyper's connection under the header read timeout; ready once it is done with.
    fn poll_served(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if let Poll::Ready(result) = self.conn.as_mut().poll(cx) {
                finished(result);
                return Poll::Ready(());
            }
            match ready!(self.header_timer.poll_expired(cx, self.state)) {
                Expired::Close => return Poll::Ready(()),
                // Polled again at once: hyper closes an idle connection in the same poll.
                Expired::ShutDown => self.conn.as_mut().graceful_shutdown(),
            }
        }
    }

    /// The serving phase: serves the connection until it ends or the drain starts.
    async fn serve_until_drain(&mut self, drain: &Drain) -> Served {
        let started = pin!(drain.started());
        let mut drain_started = LazyPoll::new(started);
        poll_fn(|cx| {
            if self.poll_served(cx).is_ready() {
                return Poll::Ready(Served::Ended);
            }
            // Polled only once the drain's flag is set (one atomic load).
            let started = drain_started.poll_if(cx, self.state.drain_started());
            started.map(|()| Served::UntilDrain)
        })
        .await
    }

    /// The draining phase: HTTP/2 gets GOAWAY at once; an HTTP/1 connection is shut down once
    /// it stayed idle for a whole `grace` (see the module docs). Returns when the connection is
    /// done with.
    async fn drain(&mut self, fd: RawFd, grace: Duration) {
        while !self.state.is_http2() {
            let reads = self.state.reads();
            let mut grace_over = pin!(tokio::time::sleep(grace));
            // The connection first: a request that arrives as the grace ends is read (and
            // counted) before the grace is looked at.
            let waited = poll_fn(|cx| {
                if self.poll_served(cx).is_ready() {
                    return Poll::Ready(Waited::Ended);
                }
                grace_over.as_mut().poll(cx).map(|()| Waited::Grace)
            })
            .await;
            if let Waited::Ended = waited {
                return;
            }
            // Idle: nothing read for a whole grace, no request begun and not yet handed to the
            // service (a stalled header is the header read timeout's), no answer under way (an
            // answer whose head went out before the drain, without `Connection: close`, leaves
            // its client free to send another request when it ends: that one is waited for
            // too), and nothing in the receive queue that the runtime has not reported yet.
            if self.state.reads() == reads
                && self.state.in_flight() == 0
                && !self.state.request_begun()
                && !has_unread_bytes(fd)
            {
                break;
            }
        }
        self.conn.as_mut().graceful_shutdown();
        poll_fn(|cx| self.poll_served(cx)).await;
    }
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
