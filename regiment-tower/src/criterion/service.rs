use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::judge::Judge;
use super::{Criterion, ResponseFuture};

/// The service made by [`CriterionLayer`](super::CriterionLayer).
///
/// See the [module docs](crate::criterion).
///
/// ```
/// use regiment_tower::{Criterion, Replace};
/// use tower::{Layer, service_fn};
/// struct Never;
/// impl Criterion for Never {}
/// let svc = Replace::when(Never).layer(service_fn(|req: http::Request<()>| async move {
///     Ok::<_, std::convert::Infallible>(http::Response::new(()))
/// }));
/// # let _ = svc;
/// ```
pub struct CriterionService<S, C> {
    pub(super) inner: S,
    pub(super) judge: Arc<Judge<C>>,
}

impl<S: Clone, C> Clone for CriterionService<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            judge: self.judge.clone(),
        }
    }
}

impl<S, C> CriterionService<S, C> {
    define_inner_service_accessors!();
}

impl<S: fmt::Debug, C: fmt::Debug> fmt::Debug for CriterionService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CriterionService")
            .field("inner", &self.inner)
            .field("criterion", &self.judge.criterion)
            .finish()
    }
}

impl<S, C, ReqBody, ResBody> Service<http::Request<ReqBody>> for CriterionService<S, C>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    C: Criterion,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let judge = &self.judge;
        // Once fired, the future carries nothing and the criterion is not asked again.
        let watch = if judge.live() {
            judge.act_on(judge.criterion.on_request(&req));
            (C::ON_RESPONSE && judge.live()).then(|| judge.clone())
        } else {
            None
        };
        ResponseFuture {
            inner: self.inner.call(req),
            judge: watch,
        }
    }
}
