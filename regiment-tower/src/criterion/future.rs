use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::Criterion;
use super::judge::Judge;

pin_project! {
    /// The response future of [`CriterionService`](super::CriterionService): shows the
    /// response to the criterion.
    ///
    /// ```
    /// use regiment_tower::{Criterion, Replace, criterion::ResponseFuture};
    /// use tower::{Layer, Service, service_fn};
    /// struct Never;
    /// impl Criterion for Never {}
    /// let mut svc = Replace::when(Never).layer(service_fn(|_: http::Request<()>| async {
    ///     Ok::<_, ()>(http::Response::new(()))
    /// }));
    /// let _future: ResponseFuture<_, Never> = svc.call(http::Request::new(()));
    /// ```
    pub struct ResponseFuture<F, C> {
        #[pin]
        pub(super) inner: F,
        // `None` when the response is not to be shown (fired, or `ON_RESPONSE` false).
        pub(super) judge: Option<Arc<Judge<C>>>,
    }
}

impl<F, C, ResBody, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    C: Criterion,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let (Ok(res), Some(judge)) = (&result, this.judge.take())
            && judge.live()
        {
            judge.act_on(judge.criterion.on_response(res));
        }
        Poll::Ready(result)
    }
}

impl<F: fmt::Debug, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("inner", &self.inner)
            .finish()
    }
}
