//! An [`App`](crate::App) (a tower service) as the hyper service the engine serves.
//!
//! hyper-util's `TowerToHyperService` does the same through a `Oneshot`: every request is moved
//! into a future that asks the app whether it is ready on its first poll, then moved again into
//! the app's `call`, and the future is rebuilt around the app's own. Here the app is asked when
//! the engine calls the service, which it does where hyper polls the answer at once (an HTTP/1
//! request as it comes, an HTTP/2 stream in its own task: see [`crate::connection_close`]),
//! with a waker that does nothing: an app that is always ready (an axum `Router`, regiment's
//! criteria, most layers) says so, the request goes to `call` at once, and the future is the
//! app's own. One that is not ready keeps the request and is asked again, with the task's
//! waker, when hyper first polls the future, as tower's contract wants: `poll_ready` before
//! `call`, and a `Pending` answer registers the waker of the latest poll. About 150
//! instructions a request less (BENCHMARKS.md).
//!
//! The app is cloned for every request, as `axum::serve` does, and the clone is dropped once
//! called: what an instance holds after its `call` goes with it. One clone per connection,
//! called again and again, would save the clone and its drop (and a move of the app's future
//! that the drop, which may unwind, forces after the `call`), but an
//! instance may hold something after `call` that must not outlive the request: a load shedder
//! over a concurrency limit leaves the limit queued for a permit when it sheds, and an idle
//! connection holding that place in line would take the next free permit for good
//! (`engine_tests/app_readiness.rs`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use http::Request;
use hyper::body::Incoming;
use tower_service::Service;

use crate::BoxError;

/// Serves an [`App`](crate::App) on hyper connections: a clone of it for every request.
#[derive(Debug, Clone)]
pub(crate) struct AppService<A> {
    app: A,
}

impl<A> AppService<A> {
    pub(crate) fn new(app: A) -> Self {
        Self { app }
    }
}

impl<A> hyper::service::Service<Request<Incoming>> for AppService<A>
where
    A: Service<Request<Incoming>, Error: Into<BoxError>> + Clone,
{
    type Response = A::Response;
    type Error = BoxError;
    type Future = AppFuture<A>;

    #[inline]
    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let mut app = self.app.clone();
        match app.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => AppFuture::Called {
                future: app.call(req),
            },
            Poll::Ready(Err(error)) => AppFuture::Failed {
                error: Some(error.into()),
            },
            Poll::Pending => AppFuture::NotReady {
                app,
                req: Some(req),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The app's answer to one request: its own future once it took the request.
    #[project = AppFutureProj]
    pub(crate) enum AppFuture<A: Service<Request<Incoming>>> {
        Called {
            #[pin]
            future: A::Future,
        },
        /// The app was not ready when the request came: asked again on every poll.
        NotReady {
            app: A,
            req: Option<Request<Incoming>>,
        },
        /// The app failed when asked whether it was ready (boxed: an app's error need not be
        /// `Send`, and this future is).
        Failed {
            error: Option<BoxError>,
        },
    }
}

impl<A> Future for AppFuture<A>
where
    A: Service<Request<Incoming>, Error: Into<BoxError>>,
{
    type Output = Result<A::Response, BoxError>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                AppFutureProj::Called { future } => return future.poll(cx).map_err(Into::into),
                AppFutureProj::NotReady { app, req } => {
                    ready!(app.poll_ready(cx)).map_err(Into::into)?;
                    let future = app.call(req.take().expect("a request not yet called"));
                    self.set(AppFuture::Called { future });
                }
                AppFutureProj::Failed { error } => {
                    return Poll::Ready(Err(error.take().expect("polled after it failed")));
                }
            }
        }
    }
}
