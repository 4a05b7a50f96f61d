use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tower_service::Service;

use super::watch::Watch;
use super::{MemoryFootprint, ResponseFuture};

/// The service made by [`MemoryFootprint`]: compares the last memory sample on each request.
///
/// See the [module docs](crate::memory_footprint).
///
/// ```
/// use regiment_tower::MemoryFootprint;
/// use tower::{Layer, service_fn};
/// let svc = MemoryFootprint::mb(750).layer(service_fn(|x: u8| async move { Ok::<_, ()>(x) }));
/// assert_eq!(svc.layer().threshold(), 750 << 20);
/// ```
#[derive(Clone)]
pub struct MemoryFootprintService<S> {
    pub(super) inner: S,
    pub(super) watch: Arc<Watch>,
}

impl<S> MemoryFootprintService<S> {
    /// The layer's settings, as a layer (it shares this service's watch).
    ///
    /// ```
    /// use tower::{Layer, service_fn};
    /// let svc = regiment_tower::MemoryFootprint::mb(750).layer(service_fn(|r: u8| async move { Ok::<_, ()>(r) }));
    /// assert_eq!(svc.layer().threshold(), 750 << 20);
    /// ```
    pub fn layer(&self) -> MemoryFootprint {
        MemoryFootprint {
            watch: self.watch.clone(),
        }
    }

    define_inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for MemoryFootprintService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryFootprintService")
            .field("inner", &self.inner)
            .field("layer", &self.layer())
            .finish()
    }
}

impl<S, R> Service<R> for MemoryFootprintService<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    // Nothing happens after the call: the inner future passed through, at no cost.
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: R) -> Self::Future {
        self.watch.check(self.watch.current.load(Ordering::Relaxed));
        ResponseFuture::new(self.inner.call(req))
    }
}
