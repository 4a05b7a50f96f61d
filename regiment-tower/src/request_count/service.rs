use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::counter::Counter;
use super::{RequestCount, ResponseFuture};

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
#[derive(Clone)]
pub struct RequestCountService<S> {
    pub(super) inner: S,
    pub(super) counter: Arc<Counter>,
}

impl<S> RequestCountService<S> {
    /// The layer this service counts for (sharing its count).
    ///
    /// ```
    /// use tower::{Layer, service_fn};
    /// let svc = regiment_tower::RequestCount::new(100).layer(service_fn(|r: u8| async move { Ok::<_, ()>(r) }));
    /// assert_eq!(svc.layer().count(), 0);
    /// ```
    pub fn layer(&self) -> RequestCount {
        RequestCount {
            counter: self.counter.clone(),
        }
    }

    define_inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for RequestCountService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestCountService")
            .field("inner", &self.inner)
            .field("layer", &self.layer())
            .finish()
    }
}

impl<S, R> Service<R> for RequestCountService<S>
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
        self.counter.accept();
        ResponseFuture::new(self.inner.call(req))
    }
}
