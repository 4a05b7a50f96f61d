//! The control socket: a Unix socket on which the `regiment` command (or any client of
//! [`crate::plumbing::control`]) asks the master for its status and metrics, and starts
//! rollouts, scales, replaces and stops.
//!
//! Off by default (`Builder::control_socket`, `REGIMENT_CONTROL_SOCKET`). The file has mode
//! 0600 and the master also checks each peer's credentials (SO_PEERCRED): only its own user
//! and root are served. What a peer sends is untrusted: bounded in size and time, and anything
//! malformed is answered with an error and logged, never fatal.

mod session;
mod socket;

pub(crate) use socket::ControlSocket;

use tokio::task::JoinSet;

use crate::Handle;

/// Connections served at once. Each is a person or a deploy script; past this, something is
/// looping, and the master's memory is not for it.
const MAX_SESSIONS: usize = 64;

/// Serves the control socket until dropped. Sessions live in a `JoinSet`: when the supervisor
/// returns and drops this future, every open connection is closed with it, which is how a
/// client waiting on `stop` learns that the master is gone.
pub(crate) async fn serve(listener: tokio::net::UnixListener, handle: Handle) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if sessions.len() < MAX_SESSIONS => {
                    sessions.spawn(session::serve(stream, handle.clone()));
                }
                Ok(_) => tracing::warn!(
                    sessions = MAX_SESSIONS,
                    "control socket: too many open connections; one was closed unanswered"
                ),
                Err(e) => {
                    // Out of descriptors, most likely: wait for a session to end before the
                    // next accept rather than spin.
                    tracing::warn!(error = %e, "accepting on the control socket failed");
                    if sessions.join_next().await.is_none() {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}
