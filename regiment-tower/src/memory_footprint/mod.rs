//! Replace a worker whose memory grew past a threshold.
//!
//! [`MemoryFootprint::mb(750)`](MemoryFootprint::mb) asks for this worker's replacement once
//! its resident memory exceeds 750 MB (mebibytes, 2<sup>20</sup> bytes, as `top` and `ps`
//! count them). The memory is measured off the request path by the [background
//! sampler](crate::sampler) (one thread per process however many layers exist, started by the
//! first layer to wrap a service; default interval 1 s for RSS, 10 s for PSS and USS, which
//! cost more to read); on each request the layer compares
//! the sampler's last figure, one relaxed atomic load, against its threshold. The sampler also
//! checks after each sample, so a worker that grows while idle is replaced too.
//!
//! The figure compared is RSS by default; on Linux [`Measure::Pss`](crate::Measure::Pss) or
//! [`Measure::Uss`](crate::Measure::Uss) count
//! pages shared with other workers (copy-on-write, shared libraries) proportionally or not at
//! all, which RSS counts in full in every worker.
//!
//! It fires once: the reason (`memory-footprint: rss 812 MB > 750 MB`) goes to the layer's
//! [`Replacer`](crate::Replacer), by default the process-wide one that asks the regiment
//! master. The worker keeps serving every request until the master drains it, once its
//! replacement is ready.
//!
//! Works with any request type: nothing of the request is looked at. The service gives back
//! the service it wraps with `get_ref`, `get_mut` and `into_inner`.
//!
//! ```
//! use std::time::Duration;
//! use regiment_tower::{Measure, MemoryFootprint};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let layer = MemoryFootprint::mb(750)
//!     .with_measure(Measure::Pss)
//!     .with_interval(Duration::from_millis(500));
//! assert_eq!((layer.measure(), layer.interval()), (Measure::Pss, Duration::from_millis(500)));
//! let mut svc = ServiceBuilder::new()
//!     .layer(layer)
//!     .service(service_fn(|req: String| async move { Ok::<_, std::convert::Infallible>(req.len()) }));
//!
//! let len = svc.ready().await.unwrap().call("hello".to_string()).await.unwrap();
//! assert_eq!(len, 5);
//!
//! let _inner = svc.get_ref();
//! let _inner = svc.get_mut();
//! let _inner = svc.into_inner();
//! # }
//! ```

mod future;
mod layer;
mod service;
#[cfg(test)]
mod tests;
mod watch;

pub use future::ResponseFuture;
pub use layer::MemoryFootprint;
pub use service::MemoryFootprintService;
