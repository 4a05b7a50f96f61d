//! What regiment-axum can serve, said once for every entry point.

use http::{Request, Response};
use hyper::body::{Body, Incoming};

use crate::BoxError;

/// A hyper service regiment-axum can serve: it answers `Request<Incoming>` with
/// `Response<B>`, can be cloned into every connection, and is `Send + Sync + 'static` with a
/// `Send` future. An axum `Router` or any tower service qualifies once wrapped in
/// [`TowerToHyperService`](hyper_util::service::TowerToHyperService). Implemented for every
/// such type; there is nothing to implement.
///
/// ```
/// use hyper_util::service::TowerToHyperService;
///
/// fn servable<S: regiment_axum::HttpService<B>, B: regiment_axum::ResponseBody>(_: &S) {}
/// servable(&TowerToHyperService::new(axum::Router::new()));
/// ```
pub trait HttpService<B>:
    hyper::service::Service<
        Request<Incoming>,
        Response = Response<B>,
        Error: Into<BoxError>,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S, B> HttpService<B> for S
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
}

/// A response body regiment-axum can send: `Send + 'static`, with `Send` chunks and errors
/// that convert into [`BoxError`]. Implemented for every such type (axum's `Body`,
/// `http_body_util::Full`, ...).
///
/// ```
/// fn sendable<B: regiment_axum::ResponseBody>() {}
/// sendable::<axum::body::Body>();
/// ```
pub trait ResponseBody: Body<Data: Send, Error: Into<BoxError>> + Send + 'static {}

impl<B> ResponseBody for B
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
}
