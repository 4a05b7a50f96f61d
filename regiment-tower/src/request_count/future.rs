pass_through_future! {
    /// The response future of [`RequestCountService`](super::RequestCountService): the inner
    /// service's future, passed through as is (the layer's work is done when the request is
    /// accepted; the response and the error are untouched). A named type, as in tower-http, so
    /// that the future can be named in signatures and the layer can look at responses later
    /// without a breaking change. It adds nothing to the inner future's size.
    ///
    /// ```
    /// use regiment_tower::request_count::ResponseFuture;
    /// use tower::{Layer, Service, service_fn};
    /// let mut svc = regiment_tower::RequestCount::new(100).layer(service_fn(|x: u8| async move { Ok::<_, ()>(x) }));
    /// let _future: ResponseFuture<_> = svc.call(1);
    /// ```
    pub struct ResponseFuture<F>;
}
