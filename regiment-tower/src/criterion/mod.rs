//! Custom criteria: a small trait, and a layer that runs it.
//!
//! A [`Criterion`] sees each request as it arrives, each response as it leaves, and a tick
//! from the [background thread](crate::sampler) for what depends on time rather than traffic.
//! Each hook returns a [`Verdict`]; the first [`Verdict::Replace`] fires the layer's
//! [`Replacer`](crate::Replacer) (by default the process-wide one that asks the regiment master, a no-op with
//! one warning outside a cluster). All hooks default to [`Verdict::Keep`]: implement only
//! those you need. Hooks take `&self` and run concurrently: keep state in atomics.
//!
//! [`Replace::when(c)`](Replace::when) (or [`CriterionLayer::new`]) makes the layer. Clones of
//! the layer and every service it makes share one criterion value. Once this worker's
//! replacer has fired, the hooks are no longer called: the verdict could change nothing.
//!
//! By convention a reason reads `name: figure vs threshold`, as the built-in ones do
//! (`request-count: 1000 requests >= 1000`): it shows as is in the master's events and status.
//!
//! Replace after 50 consecutive 5xx responses:
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
//! use regiment_tower::{Criterion, Replace, Verdict};
//!
//! #[derive(Default)]
//! struct ServerErrors(AtomicU32);
//!
//! impl Criterion for ServerErrors {
//!     fn on_response<B>(&self, res: &http::Response<B>) -> Verdict {
//!         if !res.status().is_server_error() {
//!             self.0.store(0, Relaxed);
//!             return Verdict::Keep;
//!         }
//!         let n = self.0.fetch_add(1, Relaxed) + 1;
//!         Verdict::replace_if(n >= 50, || format!("server-errors: {n} consecutive 5xx >= 50"))
//!     }
//! }
//!
//! let layer = Replace::when(ServerErrors::default()); // .layer(layer) on a Router
//!
//! // On any HTTP service; the service made gives back the one it wraps.
//! use tower::{Layer, service_fn};
//! let mut svc = layer.layer(service_fn(|_: http::Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(()))
//! }));
//! let _inner = svc.get_ref();
//! let _inner = svc.get_mut();
//! let _inner = svc.into_inner();
//! ```
//!
//! Replace after six hours, checked every minute, even if no request comes:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use regiment_tower::{Criterion, Replace, Verdict};
//!
//! struct SixHours(Instant);
//!
//! impl Criterion for SixHours {
//!     fn tick_interval(&self) -> Duration { Duration::from_secs(60) }
//!     fn on_tick(&self) -> Verdict {
//!         let up = self.0.elapsed().as_secs() / 60;
//!         Verdict::replace_if(up >= 360, || format!("six-hours: up {up} min >= 360 min"))
//!     }
//! }
//!
//! let layer = Replace::when(SixHours(Instant::now()));
//! # let _ = layer;
//! ```
//!
//! (The built-in [`MaxAge`](crate::MaxAge) is that criterion, with a random splay.)
//!
//! The layer wraps HTTP services (`Service<http::Request<B>, Response = http::Response<B2>>`:

mod future;
mod hooks;
mod judge;
mod layer;
mod service;
#[cfg(test)]
mod tests;
mod verdict;

pub use future::ResponseFuture;
pub use hooks::Criterion;
pub use layer::{CriterionLayer, Replace};
pub use service::CriterionService;
pub use verdict::Verdict;
