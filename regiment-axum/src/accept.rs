//! The accept loops of a worker: one per inherited listener, each stopping the moment the drain
//! starts. The worker then closes its copy of the listening socket; the socket itself stays
//! open in the master and the other workers, so connections still queued on it are accepted by
//! them, not reset.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use regiment_core::listen::Listener;
use tokio::task::JoinHandle;

use crate::connection::{self, Shared};
use crate::drain::Peer;
use crate::{HttpService, ResponseBody};

/// A listener registered with tokio.
enum Accepting {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl Accepting {
    fn register(listener: Listener) -> io::Result<Self> {
        // take_inherited hands them over non-blocking already, as tokio requires.
        Ok(match listener {
            Listener::Tcp(l) => Accepting::Tcp(tokio::net::TcpListener::from_std(l)?),
            Listener::Unix(l) => Accepting::Unix(tokio::net::UnixListener::from_std(l)?),
        })
    }
}

/// Registers every listener and spawns its accept loop. Errors if one cannot be registered
/// (then nothing is spawned).
pub(crate) fn spawn_all<S, B>(
    listeners: Vec<Listener>,
    shared: Arc<Shared<S>>,
) -> io::Result<Vec<JoinHandle<()>>>
where
    S: HttpService<B>,
    B: ResponseBody,
{
    let registered = listeners
        .into_iter()
        .map(Accepting::register)
        .collect::<io::Result<Vec<_>>>()?;
    Ok(registered
        .into_iter()
        .map(|l| tokio::spawn(accept_loop(l, shared.clone())))
        .collect())
}

async fn accept_loop<S, B>(listener: Accepting, shared: Arc<Shared<S>>)
where
    S: HttpService<B>,
    B: ResponseBody,
{
    let drain = shared.drain;
    loop {
        let accepted = tokio::select! {
            biased;
            () = drain.started() => break,
            r = accept(&listener, shared.options.tcp_nodelay) => r,
        };
        match accepted {
            Ok(Accepted::Tcp(stream, peer)) => {
                let guard = drain.open(Peer::Tcp(peer));
                tokio::spawn(connection::serve(stream, guard, shared.clone()));
            }
            Ok(Accepted::Unix(stream)) => {
                let pid = stream.peer_cred().ok().and_then(|c| c.pid());
                let guard = drain.open(Peer::Unix(pid));
                tokio::spawn(connection::serve(stream, guard, shared.clone()));
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // Out of fds or memory: retrying at once would spin. (axum::serve does the same.)
                tracing::error!(error = %e, "accept failed; retrying in 1 s");
                tokio::select! {
                    () = drain.started() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    // Dropping `listener` here closes this worker's copy of the socket only.
}

enum Accepted {
    Tcp(tokio::net::TcpStream, std::net::SocketAddr),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Accepting, nodelay: bool) -> io::Result<Accepted> {
    match listener {
        Accepting::Tcp(l) => {
            let (stream, peer) = l.accept().await?;
            if nodelay {
                // Small answers must not wait for Nagle; failure only costs latency.
                let _ = stream.set_nodelay(true);
            }
            Ok(Accepted::Tcp(stream, peer))
        }
        Accepting::Unix(l) => Ok(Accepted::Unix(l.accept().await?.0)),
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
