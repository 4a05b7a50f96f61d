//! The accept loops of a worker: one per inherited listener, each a task of a [`JoinSet`] that
//! the worker shuts down (aborts) the moment the drain starts. A loop holds no accepted
//! connection across an await (it spawns the connection's task before it awaits again), so
//! aborting it loses none. The worker then has closed its copy of the listening socket; the
//! socket itself stays open in the master and the other workers, so connections still queued
//! on it are accepted by them, not reset.
//!
//! TCP and Unix-domain listeners are served by one loop through [`AcceptSocket`], as
//! `axum::serve` does with its own `Listener` trait (a name this crate leaves to
//! `regiment_core::listen::Listener`, the inherited socket before tokio registers it).

use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use regiment_core::listen;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;

use crate::connection::{self, Engine};
use crate::drain::Peer;
use crate::http_options::Nagle;
use crate::{HttpService, ResponseBody};

/// A listening socket registered with tokio, TCP or Unix-domain.
trait AcceptSocket: Send + Sync + 'static {
    /// An accepted connection.
    type Io: AsyncRead + AsyncWrite + AsRawFd + Unpin + Send + 'static;

    /// Accepts the next connection, set up for serving, with who is at its other end.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Io, Peer)>> + Send;
}

/// A TCP listener, and whether Nagle's algorithm runs on its connections.
struct Tcp {
    listener: tokio::net::TcpListener,
    nagle: Nagle,
}

impl AcceptSocket for Tcp {
    type Io = tokio::net::TcpStream;

    async fn accept(&self) -> io::Result<(Self::Io, Peer)> {
        let (stream, peer) = self.listener.accept().await?;
        if self.nagle == Nagle::Off {
            // Small answers must not wait for Nagle; failure only costs latency.
            let _ = stream.set_nodelay(true);
        }
        Ok((stream, Peer::Tcp(peer)))
    }
}

impl AcceptSocket for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;

    async fn accept(&self) -> io::Result<(Self::Io, Peer)> {
        let (stream, _) = tokio::net::UnixListener::accept(self).await?;
        let pid = stream.peer_cred().ok().and_then(|c| c.pid());
        Ok((stream, Peer::Unix(pid)))
    }
}

/// Registers every inherited listener and spawns its accept loop. Errors if one cannot be
/// registered (then nothing is spawned).
pub(crate) fn spawn_all<S, B>(
    inherited: Vec<listen::Listener>,
    engine: Arc<Engine<S>>,
) -> io::Result<JoinSet<()>>
where
    S: HttpService<B>,
    B: ResponseBody,
{
    // take_inherited hands them over non-blocking already, as tokio requires.
    let mut tcp = Vec::new();
    let mut unix = Vec::new();
    for listener in inherited {
        match listener {
            listen::Listener::Tcp(l) => tcp.push(Tcp {
                listener: tokio::net::TcpListener::from_std(l)?,
                nagle: engine.options.nagle,
            }),
            listen::Listener::Unix(l) => unix.push(tokio::net::UnixListener::from_std(l)?),
        }
    }
    let mut loops = JoinSet::new();
    for listener in tcp {
        loops.spawn(accept_loop(listener, engine.clone()));
    }
    for listener in unix {
        loops.spawn(accept_loop(listener, engine.clone()));
    }
    Ok(loops)
}

/// Accepts and spawns connections until aborted; dropping `listener` then closes this worker's
/// copy of the socket only.
async fn accept_loop<L, S, B>(listener: L, engine: Arc<Engine<S>>)
where
    L: AcceptSocket,
    S: HttpService<B>,
    B: ResponseBody,
{
    loop {
        match listener.accept().await {
            Ok((io, peer)) => {
                let state = engine.drain.track(peer);
                tokio::spawn(connection::serve(io, state, engine.clone()));
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // Out of fds or memory: retrying at once would spin. (axum::serve does the same.)
                tracing::error!(error = %e, "accept failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Errors that concern one connection (the peer gave up before we accepted it), not the
/// listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
