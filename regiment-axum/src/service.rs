//! What regiment-axum can serve, said once for every entry point.

use std::any::Any;

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
/// future on every request (about 1,500 instructions a layer, against 70-90 for both criteria
/// around the whole app; BENCHMARKS.md).
///
/// A `Router` given as is has its handlers turned into services once, before it serves, as
/// `axum::serve` does; one wrapped in layers cannot be reached, so call `with_state(())` on it
/// before wrapping it (axum's advice for a `Router` served as a `Service`): otherwise every
/// request clones its handler into a new boxed service (an allocation, and about 160
/// instructions, 1.2% of a small request).
///
/// ```
/// use regiment_tower::{MemoryFootprint, RequestCount};
/// use tower::ServiceBuilder;
///
/// fn servable<A: regiment_axum::App<B>, B: regiment_axum::ResponseBody>(_: &A) {}
/// let routes = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
/// servable(&routes);
/// let routes: axum::Router = routes.with_state(());
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

/// `app`, with its handlers turned into services once if it is an axum `Router` (see [`App`]):
/// otherwise the router does it for every request it routes. Any other app is returned as is.
pub(crate) fn with_routes_built<A: Any>(mut app: A) -> A {
    if let Some(router) = (&mut app as &mut dyn Any).downcast_mut::<axum::Router>() {
        *router = std::mem::take(router).with_state(());
    }
    app
}

// A counting global allocator, shared with regiment-tower's allocation tests: GlobalAlloc is an
// unsafe trait (SAFETY comments there).
#[cfg(test)]
#[allow(unsafe_code)]
#[path = "../../regiment-tower/tests/support/counting_allocator.rs"]
mod counting_allocator;

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http::Request;

    use super::with_routes_built;

    use super::counting_allocator::{Counting, allocations_for};

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    fn routes() -> Router {
        Router::new().route("/", get(|| async { "hi" }))
    }

    fn request() -> Request<Body> {
        Request::new(Body::empty())
    }

    #[test]
    fn a_router_has_its_handlers_built_once_not_on_every_request() {
        let as_is = allocations_for(&mut routes(), request, 100);
        let built = allocations_for(&mut with_routes_built(routes()), request, 100);
        // The handler cloned into a new boxed service, per request.
        assert_eq!(
            as_is.checked_sub(built),
            Some(100),
            "as is: {as_is}, built: {built}"
        );
    }

    #[test]
    fn an_app_that_is_not_a_router_is_served_as_is() {
        let app = tower::ServiceBuilder::new()
            .map_request(|r: Request<Body>| r)
            .service(routes());
        let wrapped = allocations_for(&mut app.clone(), request, 100);
        let through = allocations_for(&mut with_routes_built(app), request, 100);
        assert_eq!(wrapped, through);
    }
}
