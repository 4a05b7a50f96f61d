//! Replace a worker after it has accepted a number of requests.
//!
//! [`RequestCount::new(1000)`](RequestCount::new) asks for this worker's replacement when the
//! 1000th request reaches the layer. That request and every later one are served normally: the
//! worker goes on until the master drains it, once its replacement is ready. Per request: one
//! relaxed atomic increment and a compare.
//!
//! Workers started together would all reach the same count together and be recycled in one
//! wave. [`jitter(j)`](RequestCount::jitter) (gunicorn's `max_requests_jitter`) draws each
//! worker's limit once, uniformly in `n..=n + j`.
//!
//! The count belongs to the layer: every service it makes (one per route, with axum) adds to
//! the same count. It fires once: the reason (`request-count: 1000 requests >= 1000`) goes to the
//! layer's [`Replacer`](crate::Replacer), by default the process-wide one that asks the
//! regiment master.
//!
//! Works with any request type: nothing of the request is looked at. The service gives back
//! the service it wraps with `get_ref`, `get_mut` and `into_inner`.
//!
//! ```
//! use regiment_tower::{Replacer, RequestCount};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let replacer = Replacer::new(|reason| assert_eq!(reason, "request-count: 3 requests >= 3"));
//! let mut svc = ServiceBuilder::new()
//!     .layer(RequestCount::new(3).with_replacer(replacer.clone()))
//!     .service(service_fn(|x: u32| async move { Ok::<_, std::convert::Infallible>(x + 1) }));
//!
//! for x in 0..5 {
//!     // Every request is served, the third and those after it included.
//!     assert_eq!(svc.ready().await.unwrap().call(x).await.unwrap(), x + 1);
//! }
//! assert!(replacer.fired());
//! assert_eq!(svc.layer().count(), 5);
//!
//! let _inner = svc.get_ref();
//! let _inner = svc.get_mut();
//! let _inner = svc.into_inner();
//! # }
//! ```

mod counter;
mod future;
mod layer;
mod service;
#[cfg(test)]
mod tests;

pub use future::ResponseFuture;
pub use layer::RequestCount;
pub use service::RequestCountService;
