//! The socket of one connection, wrapped to tell the drain what the peer is doing (has it
//! sent anything lately? has it closed?) and to close cleanly.
//!
//! Closing a socket whose receive queue holds unread bytes makes the kernel send RST instead
//! of FIN, and a client that had just sent its next request then sees "connection reset"
//! instead of a clean end of stream. So when hyper is done with a connection the peer has not
//! closed, the socket is not closed at once: its write side is shut (FIN) and whatever the peer
//! still sends is read and discarded until it closes its side or a short linger passes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use crate::drain::ConnectionGuard;
use crate::preface::{Preface, PrefaceScan};

/// How long a closed connection keeps reading (and discarding) before its socket is closed.
///
/// Fixed, and not shortened to the idle grace (`min(LINGER, idle_grace)` would be unsound):
/// the linger protects an answer still travelling to the client, not the server's patience
/// with idle clients. A connection closed right after a `Connection: close` answer, whose
/// client had already sent another request, must not reset while that answer is on its way
/// or unread: an RST makes the client's kernel drop what it has not read yet, and the client
/// sees "connection reset" instead of its answer. That takes a round trip plus the client's
/// own delay, whatever the grace is (tests and some deployments set graces of a few
/// milliseconds). The linger costs nothing in the usual case: it ends as soon as the peer
/// closes its side, which clients do when they read the FIN. Only a peer that keeps its side
/// open holds the worker's exit back, by this much at most.
pub(crate) const LINGER: Duration = Duration::from_secs(2);

/// What the connection task, the IO, the service wrapper and the requests of one connection
/// share. The connection counts as open until the last of them drops it (see [`Drain::track`]).
///
/// [`Drain::track`]: crate::drain::Drain::track
#[derive(Debug)]
pub(crate) struct ConnectionState {
    /// Counts the connection in its worker's drain, and tells its requests whether the drain
    /// started.
    guard: ConnectionGuard,
    /// Reads that returned data; the drain compares it across its grace period.
    reads: AtomicU64,
    /// `reads` when a request last reached the service or finished: more reads since then
    /// mean a request has begun that the service has not seen yet.
    reads_settled: AtomicU64,
    /// Requests that reached the service.
    requests: AtomicU64,
    /// Requests whose response body is not done yet.
    in_flight: AtomicU64,
    /// When the connection was accepted.
    opened: Instant,
    /// When its last HTTP/1 answer was done (so that it waits for a request head since then),
    /// as nanoseconds after `opened`; 0 before its first request. Read by the header read
    /// timeout, which does not watch HTTP/2 connections past their preface.
    idle_since: AtomicU64,
    /// The connection speaks HTTP/2 (preface magic or request seen): it gets GOAWAY at once
    /// when the drain starts.
    http2: AtomicBool,
    /// The client sent the whole HTTP/2 preface (magic and SETTINGS): it may stay idle.
    http2_preface_complete: AtomicBool,
    /// Upgrades answered (`101`, or a 2xx to an HTTP/2 extended CONNECT).
    upgrades: AtomicU64,
    /// hyper is done with the connection; its socket lingers for the peer's FIN.
    lingering: AtomicBool,
}

impl ConnectionState {
    pub(crate) fn new(guard: ConnectionGuard) -> Self {
        Self {
            guard,
            reads: AtomicU64::default(),
            reads_settled: AtomicU64::default(),
            requests: AtomicU64::default(),
            in_flight: AtomicU64::default(),
            opened: Instant::now(),
            idle_since: AtomicU64::default(),
            http2: AtomicBool::default(),
            http2_preface_complete: AtomicBool::default(),
            upgrades: AtomicU64::default(),
            lingering: AtomicBool::default(),
        }
    }

    /// Whether the worker's drain started; lock-free, for the request path.
    pub(crate) fn drain_started(&self) -> bool {
        self.guard.drain_started()
    }

    pub(crate) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Bytes were read since a request last reached the service or finished: the peer is
    /// sending a request (or a body nobody reads). Never true on a connection read by
    /// nothing but whole requests.
    ///
    /// Blind to one case: a pipelined request partly read together with the end of the
    /// previous one, then stalled. The grace may then close it as idle, after its client stalled
    /// for a whole grace.
    pub(crate) fn request_begun(&self) -> bool {
        self.reads() > self.reads_settled.load(Ordering::Relaxed)
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// When the connection was accepted.
    pub(crate) fn opened(&self) -> Instant {
        self.opened
    }

    /// Since when the connection has no request in flight: when it opened, or when its last
    /// HTTP/1 answer was done. Meaningful while [`ConnectionState::in_flight`] is 0, on a
    /// connection that has not served HTTP/2.
    pub(crate) fn idle_since(&self) -> Instant {
        self.opened + Duration::from_nanos(self.idle_since.load(Ordering::Relaxed))
    }

    pub(crate) fn is_http2(&self) -> bool {
        self.http2.load(Ordering::Relaxed)
    }

    /// Whether the client completed the HTTP/2 preface (or sent an HTTP/2 request).
    pub(crate) fn http2_preface_complete(&self) -> bool {
        self.http2_preface_complete.load(Ordering::Relaxed)
    }

    /// Called by the service wrapper when an upgrade answer goes out.
    pub(crate) fn upgraded(&self) {
        self.upgrades.fetch_add(1, Ordering::Relaxed);
    }

    /// What the connection is doing, for the log line of a drain that gives up on it.
    pub(crate) fn describe(&self) -> String {
        let in_flight = self.in_flight();
        let upgrades = self.upgrades.load(Ordering::Relaxed);
        if self.lingering.load(Ordering::Relaxed) {
            "closed, waiting for the peer's FIN".into()
        } else if self.is_http2() {
            let mut what = format!("HTTP/2, {in_flight} request(s) in flight");
            if upgrades > 0 {
                what.push_str(&format!(", {upgrades} extended CONNECT stream(s) opened"));
            }
            what
        } else if upgrades > 0 {
            "upgraded from HTTP/1 (WebSocket or other), held by the application".into()
        } else if in_flight > 0 {
            "HTTP/1, a request in flight".into()
        } else if self.request_begun() {
            "HTTP/1, a request being received".into()
        } else if self.requests() == 0 {
            "no request yet".into()
        } else {
            "HTTP/1, idle".into()
        }
    }

    /// Called by the service wrapper for each request.
    pub(crate) fn request_started(&self) {
        // Only this connection's task and its requests touch these: uncontended.
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.settle();
    }

    /// Called by the service wrapper for each HTTP/2 request: the connection is past its
    /// preface, whatever the scan of its first bytes saw.
    pub(crate) fn http2_request_started(&self) {
        self.http2.store(true, Ordering::Relaxed);
        self.http2_preface_complete.store(true, Ordering::Relaxed);
    }

    /// Called when a request's response body is done (or dropped).
    pub(crate) fn request_finished(&self) {
        // One clock read per HTTP/1 request: what the header read timeout costs it (see
        // `crate::header_timer`, which reads the stamp on the connection's own task, as this
        // runs for an HTTP/1 answer). An HTTP/2 stream's connection is past its preface, which
        // the timer no longer watches. (On tokio's clock, which tests pause; a request's
        // latency is read on the system's, see `connection_close::InFlight`.)
        if !self.is_http2() {
            let idle = self.opened.elapsed().as_nanos();
            self.idle_since
                .store(u64::try_from(idle).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.settle();
    }

    fn settle(&self) {
        self.reads_settled.store(self.reads(), Ordering::Relaxed);
    }
}

/// A socket that hyper reads and writes; see the module docs.
#[derive(Debug)]
pub(crate) struct TrackedIo<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// `None` only once dropped.
    io: Option<S>,
    state: Arc<ConnectionState>,
    /// The peer closed its side (a read returned 0 bytes): no linger needed.
    peer_closed: bool,
    /// Follows the first bytes until they are known to be an HTTP/2 preface or not.
    preface: Option<PrefaceScan>,
}

impl<S> TrackedIo<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// `io`, which reports to `state` and keeps its connection counted as open until closed
    /// (lingering included).
    pub(crate) fn new(io: S, state: Arc<ConnectionState>) -> Self {
        Self {
            io: Some(io),
            state,
            peer_closed: false,
            preface: Some(PrefaceScan::default()),
        }
    }

    fn io(&mut self) -> Pin<&mut S> {
        Pin::new(self.io.as_mut().expect("io is present until drop"))
    }
}

impl<S> AsyncRead for TrackedIo<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let asked = buf.remaining() > 0;
        ready!(self.io().poll_read(cx, buf))?;
        if buf.filled().len() > before {
            self.state.reads.fetch_add(1, Ordering::Relaxed);
            // Knowing an HTTP/2 connection by its preface, before any request, lets the drain
            // send GOAWAY at once, and lets the connection idle once the preface is complete.
            let this = &mut *self;
            if let Some(scan) = &mut this.preface {
                match scan.feed(&buf.filled()[before..]) {
                    Preface::Undecided => {}
                    Preface::Magic => this.state.http2.store(true, Ordering::Relaxed),
                    Preface::Complete => {
                        this.state.http2.store(true, Ordering::Relaxed);
                        this.state
                            .http2_preface_complete
                            .store(true, Ordering::Relaxed);
                        this.preface = None;
                    }
                    Preface::Not => this.preface = None,
                }
            }
        } else if asked {
            self.peer_closed = true;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S> AsyncWrite for TrackedIo<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(|io| io.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_shutdown(cx)
    }
}

impl<S> Drop for TrackedIo<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn drop(&mut self) {
        let Some(io) = self.io.take() else {
            return;
        };
        if self.peer_closed {
            return;
        }
        // The connection stays counted as open while it lingers: the worker must not exit (and
        // have the kernel reset the socket) before the peer has read its FIN.
        self.state.lingering.store(true, Ordering::Relaxed);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(linger(io, self.state.clone()));
        }
    }
}

/// Shuts the write side (FIN), then reads and discards until the peer closes or [`LINGER`]
/// passes, so that the final close finds an empty receive queue and sends no RST.
async fn linger<S>(mut io: S, state: Arc<ConnectionState>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _ = tokio::time::timeout(LINGER, async {
        let _ = io.shutdown().await;
        let mut sink = [0u8; 4096];
        while let Ok(n) = io.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    drop(io);
    drop(state);
}
