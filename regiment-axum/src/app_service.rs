//! An [`App`] (a tower service) as the hyper service the engine serves on each connection.
//!
//! hyper-util's `TowerToHyperService` clones the app for every request and moves the request
//! into a `Oneshot`, which asks the app whether it is ready on its first poll, then moves the
//! request again into the app's `call`. Here each connection keeps its own clone of the app,
//! and asks it when the engine calls the service, which it does where hyper polls the answer
//! at once (an HTTP/1 request as it comes, an HTTP/2 stream in its own task: see
//! [`crate::connection_close`]), with a waker that does nothing: an app that is always ready
//! (an axum `Router`, regiment's criteria, most layers) says so, the request goes to `call` at
//! once, and the future is the app's own. One that is not ready gives the request, and
//! itself, to the future, which asks again with the task's waker when hyper first polls it,
//! as tower's contract wants: `poll_ready` before `call`, and a `Pending` answer registers the
//! waker of the latest poll. What the app holds for a `Pending` answer (a place in a
//! semaphore's queue) so goes with the request it is for; the connection keeps a fresh clone.
//!
//! A request that finds the app ready costs no clone of it: with a bare `Router`, about 190
//! instructions a request less than `TowerToHyperService`; with regiment's two criteria
//! around it, about 290, as a clone per request also moves the app's future twice more
//! (BENCHMARKS.md). HTTP/1 calls a connection's service one request at a time; an HTTP/2
//! stream calls a clone of its own. So state that a layer keeps in each clone (tower's
//! `RateLimit`) lasts a connection over HTTP/1 and a stream over HTTP/2, where under
//! `axum::serve` it lasts a request. State that clones share (regiment's criteria, a
//! `ConcurrencyLimit`'s semaphore) is the same either way.

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use http::Request;
use hyper::body::Incoming;
use tower_service::Service;

use crate::service::PerConnection;
use crate::{App, BoxError, ResponseBody};

/// An [`App`] as a worker's engine serves it: a clone of it for every connection.
#[derive(Debug)]
pub(crate) struct ServedApp<A> {
    app: A,
}

impl<A> ServedApp<A> {
    pub(crate) fn new(app: A) -> Self {
        Self { app }
    }
}

impl<A, B> PerConnection<B> for ServedApp<A>
where
    A: App<B>,
    B: ResponseBody,
{
    type Service = AppService<A>;

    fn for_connection(&self) -> AppService<A> {
        AppService {
            app: ConnectionApp::new(self.app.clone()),
        }
    }
}

/// Serves an [`App`] on one connection; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct AppService<A> {
    app: ConnectionApp<A>,
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
        self.app.with(
            |app| match app.poll_ready(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(Ok(())) => AppFuture::Called {
                    future: app.call(req),
                },
                not_ready => not_called(app, not_ready, req),
            },
        )
    }
}

/// A connection's clone of the app, which its `call` borrows mutably, as a tower service is
/// called, through the `&self` hyper calls a service with.
///
/// A `RefCell` would do it safely, but its guard, reset after the app's `call`, keeps the
/// compiler from building the app's future in place: with the criteria around a `Router`,
/// two more moves of it, about 100 instructions a request, most of what the criteria cost
/// (BENCHMARKS.md). Nothing is ever borrowed twice here: see `with`.
struct ConnectionApp<A>(UnsafeCell<A>);

#[allow(unsafe_code)]
impl<A> ConnectionApp<A> {
    fn new(app: A) -> Self {
        Self(UnsafeCell::new(app))
    }

    /// Runs `f` with the app borrowed mutably. Private to this module, and only given
    /// `AppService::call`'s closure, which neither calls `with` again nor clones the cell.
    #[inline(always)]
    fn with<R>(&self, f: impl FnOnce(&mut A) -> R) -> R {
        // SAFETY: no other reference to the app exists while `f` runs. `UnsafeCell` makes this
        // type `!Sync`, so no other thread holds a `&Self`. On this thread, the app is reached
        // only through `with` and `get`, and neither runs while `f` does: `f` is
        // `AppService::call`'s closure, which calls the app's `poll_ready`, `call` and `clone`
        // and `not_called`, none of which can reach this cell, private to the `AppService` it
        // is in, which this crate gives to hyper alone.
        f(unsafe { &mut *self.0.get() })
    }

    fn get(&self) -> &A {
        // SAFETY: a shared borrow, while no `with` runs (see there): `get` is called by
        // `clone` and `fmt` only, which `with`'s closure never calls on this cell.
        unsafe { &*self.0.get() }
    }
}

impl<A: Clone> Clone for ConnectionApp<A> {
    fn clone(&self) -> Self {
        Self::new(self.get().clone())
    }
}

impl<A: fmt::Debug> fmt::Debug for ConnectionApp<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

/// The answer to a request that found the app not ready, or failing: out of the request path,
/// which it would otherwise make longer for every request.
#[cold]
#[inline(never)]
fn not_called<A>(
    app: &mut A,
    not_ready: Poll<Result<(), A::Error>>,
    req: Request<Incoming>,
) -> AppFuture<A>
where
    A: Service<Request<Incoming>, Error: Into<BoxError>> + Clone,
{
    match not_ready {
        Poll::Ready(Err(error)) => AppFuture::Failed {
            error: Some(error.into()),
        },
        _ => {
            let fresh = app.clone();
            AppFuture::NotReady {
                app: mem::replace(app, fresh),
                req: Some(req),
            }
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
