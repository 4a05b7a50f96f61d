//! The service wrapper every request goes through: it counts requests for the heartbeats and,
//! once the worker drains, answers HTTP/1 requests with `Connection: close` and refuses new
//! upgrades.
//!
//! That header is what makes an HTTP/1.1 drain lossless: a keep-alive client that sends its
//! next request while the worker starts draining is still served, and learns from the answer
//! itself that it must open its next connection elsewhere. hyper closes the connection right
//! after writing such a response. (HTTP/2 connections get GOAWAY instead; the header is
//! illegal there and is not added.)
//!
//! A draining worker takes no new upgrade: a request that asks for one (an HTTP/1 `Upgrade:`
//! such as a WebSocket handshake, or a `CONNECT`, HTTP/2's extended CONNECT included) is
//! answered `503 Service Unavailable` with `Retry-After: 0` (and `Connection: close` on
//! HTTP/1) without reaching the application, so that the client reconnects at once to a worker
//! that is not draining. Otherwise the new socket would hold the worker until the application
//! noticed the drain, or until the master's SIGKILL. `Upgrade: h2c` is not taken for one: hyper
//! does not switch to HTTP/2 that way, applications answer such requests over HTTP/1, and
//! clients send it on ordinary requests (Java's `HttpClient` does by default).
//!
//! The request is dropped with hyper's `OnUpgrade`, which hyper would otherwise hand the socket
//! to once the refusal is written: so the socket is closed, as `Connection: close` says. The
//! check is made when the request comes, not when its answer is ready, for that reason: a
//! handshake the application took before the drain and answers during it still switches
//! protocols (refusing its answer would hand the application a socket whose client was told to
//! go), and the application, which sees [`regiment_core::worker::drained`] resolved, closes it
//! at once, as it closes every socket upgraded before the drain.
//!
//! It also counts, for the heartbeats, each request that ends without a complete response: the
//! application panicked (in `call`, in its answer, or in the response body), returned an error,
//! or its response body failed. A canary rollout judges a new build on those beside its 5xx
//! answers: a build whose handlers panic answers nothing at all. The panic itself is left as
//! hyper and `axum::serve` leave it: it ends the task that polled (an HTTP/1 connection, or an
//! HTTP/2 stream), so the client gets no response, and the worker serves on. (An application
//! that wants a `500` instead adds tower-http's `CatchPanicLayer`; its answers count as 5xx.)
//! The count is made by a guard that only unwinding drops (`CountsIfUnwound`): the path that
//! does not panic pays nothing for it.
//!
//! The request path pays relaxed atomic increments (and decrements) on the worker's counters
//! (one more for a 5xx answer or a failure) and on the connection's own, two atomic loads of
//! the drain's flag (three during a drain), two reads of the monotonic clock and an increment
//! for its latency bucket, and a slot of the in-flight table (one compare-and-swap, its
//! method's code, path and version copied in): no lock. What that costs is measured in
//! BENCHMARKS.md ("Latency buckets and the requests in flight"). An HTTP/2 stream also takes a
//! clone of the service, boxed with its request, to call it in the stream's own task (see
//! `call_otherwise`). A request with a method other than the nine of RFC 9110 (a WebDAV
//! `PROPFIND`) goes through `call_otherwise` too, where its method's name is copied.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::{CONNECTION, HeaderValue, RETRY_AFTER, UPGRADE};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use regiment_core::plumbing::{self, ListedMethod, StartedRequest};
use regiment_core::worker::Stats;

use crate::tracked_io::ConnectionState;

/// Wraps the application's service on one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionClose<S> {
    inner: S,
    connection: Arc<ConnectionState>,
    stats: Option<&'static Stats>,
}

impl<S> ConnectionClose<S> {
    pub(crate) fn new(
        inner: S,
        connection: Arc<ConnectionState>,
        stats: Option<&'static Stats>,
    ) -> Self {
        Self {
            inner,
            connection,
            stats,
        }
    }
}

impl<S, B> hyper::service::Service<Request<Incoming>> for ConnectionClose<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone,
{
    type Response = Response<InFlightBody<B>>;
    type Error = S::Error;
    type Future = ResponseFuture<S>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let kind = RequestKind::of(&req);
        // The method's code only: another method's name is read out of line. Read here, it
        // would hand the request's own address to a call the compiler cannot see into (the
        // clone of an extension method, its `as_str`), and the whole request would be copied
        // before the app's call (264 bytes: 52 instructions a request, measured).
        let method = ListedMethod::known(req.method());
        let Some(method) = method.filter(|_| !kind.http2() && !self.connection.drain_started())
        else {
            return self.call_otherwise(req, kind);
        };
        // An HTTP/1 request outside a drain: the app is called here, and its answer polled at
        // once, on this task. Built where it is returned, with nothing the compiler cannot see
        // into before the call: the request and the app's future are a few hundred bytes each,
        // and either would be copied to keep it across.
        let in_flight = Some(InFlight::start(
            self.stats,
            &self.connection,
            kind,
            method,
            req.uri().path(),
            req.version(),
        ));
        let unwound = CountsIfUnwound(self.stats);
        let future = ResponseFuture {
            answer: Answer::Called {
                future: self.inner.call(req),
            },
            in_flight,
            kind,
        };
        unwound.defuse();
        future
    }
}

impl<S, B> ConnectionClose<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone,
{
    /// An HTTP/2 stream, a request that comes while the worker drains, or one with a method
    /// other than the nine of RFC 9110. Out of line: see `call`.
    #[inline(never)]
    fn call_otherwise(&self, req: Request<Incoming>, kind: RequestKind) -> ResponseFuture<S> {
        let in_flight = Some(InFlight::start(
            self.stats,
            &self.connection,
            kind,
            ListedMethod::of(req.method()),
            req.uri().path(),
            req.version(),
        ));
        let answer = if self.connection.drain_started() && asks_to_upgrade(&req) {
            tracing::debug!(uri = %req.uri(), "upgrade refused: the worker is draining");
            // Dropped with its `OnUpgrade`: the socket hyper hands over goes nowhere, closed.
            Answer::Refused
        } else if kind.http2() {
            // hyper calls the service of an HTTP/2 connection on the connection's task and polls
            // each stream's answer in the stream's own task. The app is asked there, as with
            // hyper-util's `TowerToHyperService`: a panic in its `call` ends that stream's task,
            // not the connection with all its streams, and what it reserves when asked (a
            // concurrency limit's permit) is taken where the answer is served. (HTTP/1 reads a
            // request only once the answer before it is written, and polls its answer at once.)
            Answer::Deferred {
                call: Some(Box::new((self.inner.clone(), req))),
            }
        } else {
            let unwound = CountsIfUnwound(self.stats);
            let future = self.inner.call(req);
            unwound.defuse();
            Answer::Called { future }
        };
        ResponseFuture {
            answer,
            in_flight,
            kind,
        }
    }
}

/// Whether `req` asks to switch protocols (see the module docs): a `CONNECT`, or an HTTP/1
/// `Upgrade:` to anything but `h2c`. Looked at only while draining.
fn asks_to_upgrade<B>(req: &Request<B>) -> bool {
    if req.method() == Method::CONNECT {
        return true;
    }
    req.version() < Version::HTTP_2
        && req
            .headers()
            .get_all(UPGRADE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| {
                let p = p.trim();
                !p.is_empty() && !p.eq_ignore_ascii_case("h2c")
            })
}

/// What the wrapper must know of a request once its answer is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    Http1,
    /// An HTTP/1 `CONNECT`: a 2xx answer turns the connection into a tunnel.
    Http1Connect,
    Http2,
    /// An HTTP/2 `CONNECT`, extended (`:protocol`, RFC 8441: WebSockets) or not: a 2xx answer
    /// turns the stream into a tunnel.
    Http2Connect,
}

impl RequestKind {
    fn of<B>(req: &Request<B>) -> Self {
        let connect = req.method() == Method::CONNECT;
        match (req.version() < Version::HTTP_2, connect) {
            (true, false) => RequestKind::Http1,
            (true, true) => RequestKind::Http1Connect,
            (false, false) => RequestKind::Http2,
            (false, true) => RequestKind::Http2Connect,
        }
    }

    fn http2(self) -> bool {
        matches!(self, RequestKind::Http2 | RequestKind::Http2Connect)
    }

    /// Whether an answer with `status` upgrades the connection (or the HTTP/2 stream).
    fn upgrades_with(self, status: StatusCode) -> bool {
        match self {
            RequestKind::Http1 => status == StatusCode::SWITCHING_PROTOCOLS,
            RequestKind::Http1Connect => {
                status == StatusCode::SWITCHING_PROTOCOLS || status.is_success()
            }
            RequestKind::Http2 => false,
            RequestKind::Http2Connect => status.is_success(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The application's answer, finished with the drain's `Connection: close`.
    pub(crate) struct ResponseFuture<S: hyper::service::Service<Request<Incoming>>> {
        #[pin]
        answer: Answer<S>,
        in_flight: Option<InFlight>,
        kind: RequestKind,
    }
}

pin_project_lite::pin_project! {
    /// Where the application's answer stands.
    #[project = AnswerProj]
    enum Answer<S: hyper::service::Service<Request<Incoming>>> {
        Called {
            #[pin]
            future: S::Future,
        },
        /// The service is called when the answer is first polled (see `call_otherwise`). Boxed: an
        /// HTTP/2 stream allocates its task anyway, and the answers of HTTP/1 requests, which
        /// are moved whole into hyper's connection, stay the size of the app's own future.
        Deferred {
            call: Option<Box<(S, Request<Incoming>)>>,
        },
        /// An upgrade refused while draining: the wrapper answers.
        Refused,
    }
}

impl<S, B> Future for ResponseFuture<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
{
    type Output = Result<Response<InFlightBody<B>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let kind = *this.kind;
        let future = loop {
            match this.answer.as_mut().project() {
                AnswerProj::Called { future } => break future,
                AnswerProj::Deferred { call } => {
                    let (service, req) = *call.take().expect("a request not yet called");
                    let unwound = CountsIfUnwound(this.in_flight.as_ref().and_then(|f| f.stats));
                    let future = service.call(req);
                    unwound.defuse();
                    this.answer.set(Answer::Called { future });
                }
                AnswerProj::Refused => {
                    return Poll::Ready(Ok(refused(kind, this.in_flight.take())));
                }
            }
        };
        let stats = this.in_flight.as_ref().and_then(|f| f.stats);
        // Response classes for the heartbeats (a canary rollout compares them between
        // generations): one relaxed increment, on errors only.
        let unwound = CountsIfUnwound(stats);
        let answer = future.poll(cx);
        unwound.defuse();
        let mut res = match ready!(answer) {
            Ok(res) => res,
            Err(e) => {
                if let Some(s) = stats {
                    plumbing::failure(s);
                }
                return Poll::Ready(Err(e));
            }
        };
        let answered_5xx = res.status().is_server_error();
        if answered_5xx && let Some(s) = stats {
            plumbing::response_5xx(s);
        }
        let in_flight = this.in_flight.take();
        let connection = in_flight.as_ref().map(|f| &f.connection);
        if kind.upgrades_with(res.status()) {
            // Asked for before the drain: the application closes it on `drained`.
            if let Some(c) = connection {
                c.upgraded();
            }
        } else if !kind.http2() && connection.is_some_and(|c| c.drain_started()) {
            // Checked when the answer is ready, not when the request came: a request that was
            // in flight when the drain started must close its connection too.
            res.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        Poll::Ready(Ok(res.map(|body| InFlightBody {
            inner: Some(body),
            in_flight,
            answered_5xx,
        })))
    }
}

/// The answer of a draining worker to a request for an upgrade: `503` with `Retry-After: 0`,
/// and `Connection: close` on HTTP/1 (on HTTP/2 the connection has its GOAWAY already), with
/// an empty body. Its request stays counted as in flight until that body is sent.
fn refused<B>(kind: RequestKind, in_flight: Option<InFlight>) -> Response<InFlightBody<B>> {
    let mut res = Response::new(InFlightBody {
        inner: None,
        in_flight,
        answered_5xx: false,
    });
    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("0"));
    if !kind.http2() {
        res.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// Counts a failed request when dropped, which only a panic does: the path that returns
/// [`CountsIfUnwound::defuse`]s it. A panic in the application unwinds to the task that polled
/// it, and the request it was answering ends without a response.
struct CountsIfUnwound(Option<&'static Stats>);

impl CountsIfUnwound {
    /// The application returned: nothing to count.
    fn defuse(self) {
        std::mem::forget(self);
    }
}

impl Drop for CountsIfUnwound {
    fn drop(&mut self) {
        if let Some(s) = self.0 {
            plumbing::failure(s);
        }
    }
}

/// One request counted as in flight, in the worker's [`Stats`] (listed there, with its
/// method, path and version, for a report read from another thread) and on its connection,
/// until its response body is done (or dropped), when its time counts in the worker's latency.
#[derive(Debug)]
pub(crate) struct InFlight {
    stats: Option<&'static Stats>,
    request: Option<StartedRequest>,
    connection: Arc<ConnectionState>,
}

impl InFlight {
    #[inline(always)]
    fn start(
        stats: Option<&'static Stats>,
        connection: &Arc<ConnectionState>,
        kind: RequestKind,
        method: ListedMethod,
        path: &str,
        version: Version,
    ) -> Self {
        // The path alone: a query string may hold what a report must not (tokens, emails).
        let request = stats.map(|s| {
            plumbing::request_started(s, method, path, plumbing::VersionCode::of(version))
        });
        connection.request_started();
        if kind.http2() {
            connection.http2_request_started();
        }
        Self {
            stats,
            request,
            connection: connection.clone(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let (Some(s), Some(request)) = (self.stats, self.request.take()) {
            plumbing::request_finished(s, request);
        }
        self.connection.request_finished();
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted as in flight until hyper drops it: the
    /// application's, or none (empty) for an answer of the wrapper's own.
    pub(crate) struct InFlightBody<B> {
        #[pin]
        inner: Option<B>,
        in_flight: Option<InFlight>,
        // Counted as a 5xx already: a body that fails after it does not count its request
        // failed twice.
        answered_5xx: bool,
    }
}

impl<B: Body> Body for InFlightBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let Some(body) = this.inner.as_pin_mut() else {
            return Poll::Ready(None);
        };
        let stats = this
            .in_flight
            .as_ref()
            .and_then(|f| f.stats)
            .filter(|_| !*this.answered_5xx);
        let unwound = CountsIfUnwound(stats);
        let frame = body.poll_frame(cx);
        unwound.defuse();
        // A body that fails ends its response unfinished: hyper resets the stream or closes
        // the connection.
        if let Poll::Ready(Some(Err(_))) = &frame
            && let Some(s) = stats
        {
            plumbing::failure(s);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
