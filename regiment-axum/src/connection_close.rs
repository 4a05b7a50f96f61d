//! The service wrapper every request goes through: it counts requests for the heartbeats and,
//! once the worker drains, answers HTTP/1 requests with `Connection: close`.
//!
//! That header is what makes an HTTP/1.1 drain lossless: a keep-alive client that sends its
//! next request while the worker starts draining is still served, and learns from the answer
//! itself that it must open its next connection elsewhere. hyper closes the connection right
//! after writing such a response. (HTTP/2 connections get GOAWAY instead; the header is
//! illegal there and is not added.)
//!
//! The request path pays relaxed atomic increments (and decrements) on the worker's counters
//! (one more for a 5xx answer) and on the connection's own, one relaxed load of the drain flag,
//! and nothing else: no lock, no syscall.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::{CONNECTION, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use regiment_core::plumbing;
use regiment_core::worker::Stats;

use crate::drain::Drain;
use crate::tracked_io::ConnectionState;

/// Wraps the application's service on one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionClose<S> {
    inner: S,
    connection: Arc<ConnectionState>,
    drain: &'static Drain,
    stats: Option<&'static Stats>,
}

impl<S> ConnectionClose<S> {
    pub(crate) fn new(
        inner: S,
        connection: Arc<ConnectionState>,
        drain: &'static Drain,
        stats: Option<&'static Stats>,
    ) -> Self {
        Self {
            inner,
            connection,
            drain,
            stats,
        }
    }
}

impl<S, B> hyper::service::Service<Request<Incoming>> for ConnectionClose<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
{
    type Response = Response<InFlightBody<B>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let http1 = req.version() < Version::HTTP_2;
        let in_flight = InFlight::start(self.stats, &self.connection, !http1);
        ResponseFuture {
            inner: self.inner.call(req),
            in_flight: Some(in_flight),
            http1,
            drain: self.drain,
        }
    }
}

pin_project_lite::pin_project! {
    /// The application's response future, finished with the drain's `Connection: close`.
    pub(crate) struct ResponseFuture<F> {
        #[pin]
        inner: F,
        in_flight: Option<InFlight>,
        http1: bool,
        drain: &'static Drain,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<InFlightBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let stats = this.in_flight.as_ref().and_then(|f| f.stats);
        // Response classes for the heartbeats (a canary rollout compares them between
        // generations): one relaxed increment, on errors only.
        let mut res = match ready!(this.inner.poll(cx)) {
            Ok(res) => res,
            Err(e) => {
                if let Some(s) = stats {
                    plumbing::failure(s);
                }
                return Poll::Ready(Err(e));
            }
        };
        if res.status().is_server_error()
            && let Some(s) = stats
        {
            plumbing::response_5xx(s);
        }
        // Checked when the answer is ready, not when the request came: a request that was in
        // flight when the drain started must close its connection too.
        if *this.http1
            && this.drain.is_draining()
            && res.status() != StatusCode::SWITCHING_PROTOCOLS
        {
            res.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        let in_flight = this.in_flight.take();
        Poll::Ready(Ok(res.map(|body| InFlightBody {
            inner: body,
            _in_flight: in_flight,
        })))
    }
}

/// One request counted as in flight, in the worker's [`Stats`] and on its connection, until
/// its response body is done (or dropped).
#[derive(Debug)]
pub(crate) struct InFlight {
    stats: Option<&'static Stats>,
    connection: Arc<ConnectionState>,
}

impl InFlight {
    fn start(
        stats: Option<&'static Stats>,
        connection: &Arc<ConnectionState>,
        http2: bool,
    ) -> Self {
        if let Some(s) = stats {
            plumbing::request_started(s);
        }
        connection.request_started(http2);
        Self {
            stats,
            connection: connection.clone(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(s) = self.stats {
            plumbing::request_finished(s);
        }
        self.connection.request_finished();
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted as in flight until hyper drops it.
    pub(crate) struct InFlightBody<B> {
        #[pin]
        inner: B,
        _in_flight: Option<InFlight>,
    }
}

impl<B: Body> Body for InFlightBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
