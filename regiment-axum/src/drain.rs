//! The drain of one worker, on one tokio `watch` channel (as hyper-util's graceful shutdown):
//! its sender signals the start of the drain, and every open connection holds one of its
//! receivers, so the channel also counts the connections and [`Drain::all_closed`] is the
//! sender's `closed()`, with no hand-made race guard. A connection's receiver lives in its
//! [`ConnectionState`], which its socket (lingering or upgraded included), its task, its
//! service wrapper and its requests share: the connection counts until the last of them is
//! gone. Beside the channel, what each open connection is, for the log line of a drain that
//! has to give up on them, and for the number of open connections (`receiver_count` would also
//! count the tasks waiting in [`Drain::started`]).
//!
//! The request path reads a flag beside the channel with [`ConnectionGuard::drain_started`]: one
//! atomic load, no lock (the channel's `has_changed` costs about four times as much, three
//! times a request).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::watch;

use crate::tracked_io::ConnectionState;

/// How many connections the log line of a drain that gives up names; it counts the others.
const NAMED_AT_MOST: usize = 20;

/// Shared by every connection and request of a worker. Lives as long as the process (it is
/// leaked once per server), so that connections can hold a `&'static` to it.
#[derive(Debug)]
pub(crate) struct Drain {
    /// `true` once the drain started; sent once. Every open connection holds a receiver (in its
    /// [`ConnectionGuard`]), and so does a task while it waits in [`Drain::started`].
    signal: watch::Sender<bool>,
    /// Set as the drain starts, before `signal` is sent: what requests read.
    draining: AtomicBool,
    /// The open connections by id, to say what was still open when a drain gives up. Taken
    /// once as a connection opens and once as it closes, never on the request path.
    connections: Mutex<BTreeMap<u64, OpenConnection>>,
    next_id: AtomicU64,
}

#[derive(Debug)]
struct OpenConnection {
    peer: Peer,
    /// Weak: the connection's state (which holds its guard) must be free to drop, and with it
    /// this entry.
    state: Weak<ConnectionState>,
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
        Box::leak(Box::new(Drain {
            signal: watch::Sender::new(false),
            draining: AtomicBool::new(false),
            connections: Mutex::default(),
            next_id: AtomicU64::new(0),
        }))
    }

    /// Starts the drain: connections begin to close, requests see it. Idempotent. (The worker
    /// stops its accept loops itself, before this.)
    pub(crate) fn start(&self) {
        // The flag first: a connection woken by the signal sees it set.
        self.draining.store(true, Ordering::Release);
        self.signal.send_replace(true);
    }

    /// Shows requests a drain that connections do not see (the flag is set, the signal not
    /// sent): what a request that arrives between the two sees (an HTTP/2 stream opened before
    /// its GOAWAY).
    #[cfg(test)]
    pub(crate) fn set_draining_flag(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// True once [`Drain::start`] was called. Takes the channel's lock: not for the request
    /// path, which asks [`ConnectionGuard::drain_started`].
    #[cfg(test)]
    pub(crate) fn is_draining(&self) -> bool {
        *self.signal.borrow()
    }

    /// Resolves once the drain has started. The waiting task holds a receiver meanwhile, which
    /// [`Drain::all_closed`] counts: only connections (and their requests) wait here.
    pub(crate) async fn started(&self) {
        // Checks the value first: a drain that started before the call is seen.
        let _ = self.signal.subscribe().wait_for(|started| *started).await;
    }

    /// Counts a newly accepted connection as open until the returned state, and every clone of
    /// it, is dropped.
    pub(crate) fn track(&'static self, peer: Peer) -> Arc<ConnectionState> {
        let signal = self.signal.subscribe();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnectionState::new(ConnectionGuard {
            drain: self,
            id,
            _signal: signal,
        }));
        self.lock_connections().insert(
            id,
            OpenConnection {
                peer,
                state: Arc::downgrade(&state),
            },
        );
        state
    }

    fn lock_connections(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, OpenConnection>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The open connections, each as `peer (what it is doing)`, for a log line: at most
    /// [`NAMED_AT_MOST`] of them named, the others counted.
    pub(crate) fn describe_open(&self) -> String {
        let (named, open) = {
            let connections = self.lock_connections();
            let named = connections
                .values()
                .take(NAMED_AT_MOST)
                .filter_map(|c| Some((c.peer.clone(), c.state.upgrade()?)))
                .collect::<Vec<_>>();
            (named, connections.len())
        };
        // Described, and dropped, outside the lock: dropping the last reference to a state
        // takes the lock again, to remove its entry.
        let mut out = named
            .iter()
            .map(|(peer, state)| format!("{peer} ({})", state.describe()))
            .collect::<Vec<_>>()
            .join(", ");
        if open > NAMED_AT_MOST {
            out.push_str(&format!(" and {} more", open - NAMED_AT_MOST));
        }
        out
    }

    /// The number of connections still open.
    pub(crate) fn open_connections(&self) -> usize {
        self.lock_connections().len()
    }

    /// Resolves once no connection is open (and no task waits in [`Drain::started`]).
    pub(crate) async fn all_closed(&self) {
        self.signal.closed().await
    }
}

/// Keeps one connection counted as open, as long as the [`ConnectionState`] that holds it
/// lives; see [`Drain::track`].
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    drain: &'static Drain,
    id: u64,
    /// Held, never read: it counts the connection as open (see [`Drain::all_closed`]).
    _signal: watch::Receiver<bool>,
}

impl ConnectionGuard {
    /// Whether the drain started: one atomic load, cheap enough for the request path.
    pub(crate) fn drain_started(&self) -> bool {
        self.drain.draining.load(Ordering::Acquire)
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.drain.lock_connections().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn all_closed_waits_for_the_last_connection() {
        let drain = Drain::leak();
        let a = drain.track(Peer::Unix(None));
        let b = drain.track(Peer::Unix(None));
        assert!(!a.drain_started());
        drain.start();
        assert!(drain.is_draining());
        assert!(a.drain_started() && b.drain_started());
        let late = drain.track(Peer::Unix(Some(1)));
        assert!(
            late.drain_started(),
            "a connection tracked after the start sees it"
        );
        assert_eq!(drain.open_connections(), 3);
        assert!(
            drain
                .describe_open()
                .contains("unix peer pid 1 (no request yet)")
        );
        let waiter = tokio::spawn(drain.all_closed());
        drop((a, late));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(b);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("all_closed resolves after the last connection")
            .unwrap();
        assert_eq!(drain.open_connections(), 0);
    }
}
