//! The drain state of one worker: the signal every accept loop and connection waits on, and
//! the count of open connections the worker waits for before it exits.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Shared by every accept loop, connection and request of a worker. Lives as long as the
/// process (it is leaked once per server), so that requests can hold a `&'static` to it instead
/// of cloning an `Arc` whose counter every thread would then fight over.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    /// Read on every response (to add `Connection: close`): a plain flag, written once.
    draining: AtomicBool,
    /// Awaited by accept loops and connections.
    started: CancellationToken,
    /// Connections accepted and not yet closed (an upgraded connection counts until the
    /// application drops it).
    open: AtomicUsize,
    closed: Notify,
}

impl Drain {
    /// A drain state for the life of the process.
    pub(crate) fn leak() -> &'static Drain {
        Box::leak(Box::default())
    }

    /// Starts the drain: accept loops stop, connections begin to close. Idempotent.
    pub(crate) fn start(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.started.cancel();
    }

    /// True once [`Drain::start`] was called; cheap enough for the request path.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Resolves once the drain has started.
    pub(crate) async fn started(&self) {
        self.started.cancelled().await
    }

    /// Counts a newly accepted connection until the returned guard is dropped.
    pub(crate) fn open(&'static self) -> ConnectionGuard {
        self.open.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard { drain: self }
    }

    /// The number of connections still open.
    pub(crate) fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Resolves once no connection is open.
    pub(crate) async fn all_closed(&self) {
        loop {
            let notified = self.closed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a close between the check and the await is seen.
            notified.as_mut().enable();
            if self.open_connections() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Keeps one connection counted as open; see [`Drain::open`].
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    drain: &'static Drain,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.drain.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.drain.closed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn all_closed_waits_for_the_last_guard() {
        let drain = Drain::leak();
        let a = drain.open();
        let b = drain.open();
        drain.start();
        assert!(drain.is_draining());
        let waiter = tokio::spawn(drain.all_closed());
        drop(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(b);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("all_closed resolves after the last guard")
            .unwrap();
    }
}
