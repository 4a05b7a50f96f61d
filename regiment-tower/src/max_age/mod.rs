//! Replace a worker after a running time, with a random splay.
//!
//! [`MaxAge`] is a [`Criterion`](crate::Criterion) like any custom one: it implements only
//! [`on_tick`](crate::Criterion::on_tick), so it costs nothing per request and fires even in a worker
//! that gets no traffic. [`splay`](MaxAge::splay) adds a random extra, drawn once per worker, so
//! that workers started together are not all replaced together.
//!
//! The age is counted from when the `MaxAge` is made (in practice, when the app is built at
//! worker start), or from the instant given to [`since`](MaxAge::since). The reason reads
//! `max-age: up 6h 0m >= 6h`.
//!
//! ```
//! use std::time::Duration;
//! use regiment_tower::{MaxAge, Replace, Replacer, sampler};
//! use tower::{Layer, service_fn};
//!
//! let replacer = Replacer::new(|reason| println!("{reason}"));
//! let layer = Replace::with_replacer(MaxAge::hours(6).splay(Duration::from_secs(1800)), replacer.clone());
//! assert!(layer.criterion().limit() >= Duration::from_secs(6 * 3600));
//! let _svc = layer.layer(service_fn(|req: http::Request<()>| async move {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(()))
//! }));
//! sampler::run_now(); // what the background thread does each second
//! assert!(!replacer.fired()); // six hours have not passed
//! ```

mod criterion;
#[cfg(test)]
mod tests;
mod text;

pub use criterion::MaxAge;
