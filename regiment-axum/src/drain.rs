//! The drain state of one worker: the signal every accept loop and connection waits on, the
//! count of open connections the worker waits for before it exits, and what each of them is,
//! for the log line of a drain that has to give up on them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::tracked_io::ConnectionState;

/// How many connections the log line of a drain that gives up names; it counts the others.
const NAMED_AT_MOST: usize = 20;

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
    /// The open connections by id, to say what was still open when a drain gives up. Taken
    /// once as a connection opens and once as it closes, never on the request path.
    connections: Mutex<BTreeMap<u64, OpenConnection>>,
    next_id: AtomicU64,
}

#[derive(Debug)]
struct OpenConnection {
    peer: Peer,
    state: Arc<ConnectionState>,
}

/// Who is at the other end of a connection, for the log.
#[derive(Debug, Clone)]
pub(crate) enum Peer {
    Tcp(std::net::SocketAddr),
    /// A Unix-domain peer, with its pid when the kernel tells it.
    Unix(Option<i32>),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(addr) => write!(f, "{addr}"),
            Peer::Unix(Some(pid)) => write!(f, "unix peer pid {pid}"),
            Peer::Unix(None) => f.write_str("unix peer"),
        }
    }
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

    /// Sets the flag requests read, without the signal connections wait on: what a request that
    /// arrives between the two sees (an HTTP/2 stream opened before its GOAWAY).
    #[cfg(test)]
    pub(crate) fn set_draining_flag(&self) {
        self.draining.store(true, Ordering::Relaxed);
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
    pub(crate) fn open(&'static self, peer: Peer) -> ConnectionGuard {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnectionState::default());
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id,
                OpenConnection {
                    peer,
                    state: state.clone(),
                },
            );
        self.open.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard {
            drain: self,
            id,
            state,
        }
    }

    /// The open connections, each as `peer (what it is doing)`, for a log line: at most
    /// [`NAMED_AT_MOST`] of them named, the others counted.
    pub(crate) fn describe_open(&self) -> String {
        let connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = connections
            .values()
            .take(NAMED_AT_MOST)
            .map(|c| format!("{} ({})", c.peer, c.state.describe()))
            .collect::<Vec<_>>()
            .join(", ");
        if connections.len() > NAMED_AT_MOST {
            out.push_str(&format!(" and {} more", connections.len() - NAMED_AT_MOST));
        }
        out
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
    id: u64,
    state: Arc<ConnectionState>,
}

impl ConnectionGuard {
    /// What the connection task, its socket and its service wrapper share.
    pub(crate) fn state(&self) -> &Arc<ConnectionState> {
        &self.state
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.drain
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
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
        let a = drain.open(Peer::Unix(None));
        let b = drain.open(Peer::Unix(None));
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
