//! A future that a connection task polls only when it may have become ready, so that the
//! events a connection waits on beside hyper (the drain, the header read timeout) cost nothing
//! on the wakeups that serve requests.
//!
//! `tokio::select!` polls every branch on every wakeup: the connection task of a keep-alive
//! connection is woken once or twice per request, and each poll of a `watch` change or a
//! `Sleep` re-registers its waker (a lock, or an atomic swap and a waker comparison). A future
//! polled once keeps the waker it registered, and is woken with it: it only needs polling
//! again when a cheap check says it may be ready, or when the task's waker changed (which, in
//! tokio, it does not for the life of a task).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// `future`, polled by [`LazyPoll::poll_if`] only when it may be ready.
pub(crate) struct LazyPoll<'a, F> {
    future: Pin<&'a mut F>,
    /// The waker of the last poll: the future will wake it.
    registered: Option<Waker>,
}

impl<'a, F: Future> LazyPoll<'a, F> {
    pub(crate) fn new(future: Pin<&'a mut F>) -> Self {
        Self {
            future,
            registered: None,
        }
    }

    /// Polls the future if `may_be_ready` (a check the caller makes without polling), or if it
    /// was never polled with the waker of `cx`; otherwise says `Pending` without polling.
    pub(crate) fn poll_if(&mut self, cx: &mut Context<'_>, may_be_ready: bool) -> Poll<F::Output> {
        let same_waker = self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()));
        if !may_be_ready && same_waker {
            return Poll::Pending;
        }
        if !same_waker {
            self.registered = Some(cx.waker().clone());
        }
        self.future.as_mut().poll(cx)
    }

    /// The future itself, to change it (a timer reset). Its next [`LazyPoll::poll_if`] polls
    /// it, so that it registers the waker again.
    pub(crate) fn future_mut(&mut self) -> Pin<&mut F> {
        self.registered = None;
        self.future.as_mut()
    }

    pub(crate) fn future(&self) -> &F {
        &self.future
    }
}
