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

/// An app [`Server::serve`](crate::Server::serve) can serve: an axum `Router`, or any tower
/// service that answers `Request<Incoming>` with `Response<B>`, can be cloned into every
/// request, and is `Send + Sync + 'static` with a `Send` future; a `Router` wrapped in layers
/// as a whole, for instance. Implemented for every such type; there is nothing to implement.
///
/// Layers that must see every request, regiment's criteria among them, cost least around the
/// whole app: axum's `Router::layer` wraps each route on its own, and boxes the route and its
/// future on every request (about 1,500 instructions a layer, against 55 for both criteria
/// around the whole app; BENCHMARKS.md).
///
/// ```
/// use regiment_tower::{MemoryFootprint, RequestCount};
/// use tower::ServiceBuilder;
///
/// fn servable<A: regiment_axum::App<B>, B: regiment_axum::ResponseBody>(_: &A) {}
/// let routes = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
/// servable(&routes);
/// let app = ServiceBuilder::new()
///     .layer(MemoryFootprint::mb(750))
///     .layer(RequestCount::new(10_000))
///     .service(routes);
/// servable(&app);
/// ```
pub trait App<B>:
    tower_service::Service<
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

impl<A, B> App<B> for A
where
    A: tower_service::Service<Request<Incoming>, Response = Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    A::Future: Send + 'static,
    A::Error: Into<BoxError>,
{
}
