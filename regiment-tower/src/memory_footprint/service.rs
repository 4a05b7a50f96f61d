use super::watch::Watch;
use super::{MemoryFootprint, ResponseFuture};

accepting_service! {
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
    pub struct MemoryFootprintService<S> { watch: Arc<Watch> }

    /// The layer's settings, as a layer (it shares this service's watch).
    ///
    /// ```
    /// use tower::{Layer, service_fn};
    /// let svc = regiment_tower::MemoryFootprint::mb(750).layer(service_fn(|r: u8| async move { Ok::<_, ()>(r) }));
    /// assert_eq!(svc.layer().threshold(), 750 << 20);
    /// ```
    pub fn layer(&self) -> MemoryFootprint;
}
