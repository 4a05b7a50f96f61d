use super::counter::Counter;
use super::{RequestCount, ResponseFuture};

accepting_service! {
    /// The service made by [`RequestCount`]: counts each request it accepts.
    ///
    /// See the [module docs](crate::request_count).
    ///
    /// ```
    /// use regiment_tower::RequestCount;
    /// use tower::{Layer, service_fn};
    /// let svc = RequestCount::new(100).layer(service_fn(|x: u8| async move { Ok::<_, ()>(x) }));
    /// assert_eq!(svc.layer().limit(), 100);
    /// ```
    pub struct RequestCountService<S> { counter: Arc<Counter> }

    /// The layer this service counts for (sharing its count).
    ///
    /// ```
    /// use tower::{Layer, service_fn};
    /// let svc = regiment_tower::RequestCount::new(100).layer(service_fn(|r: u8| async move { Ok::<_, ()>(r) }));
    /// assert_eq!(svc.layer().count(), 0);
    /// ```
    pub fn layer(&self) -> RequestCount;
}
