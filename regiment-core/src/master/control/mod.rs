//! The control socket: a Unix socket on which the `regiment` command (or any client of
//! [`crate::plumbing::control`]) asks the master for its status and metrics, and starts
//! rollouts, upgrades of the master in place, scales, replaces and stops.
//!
//! Off by default (`Builder::control_socket`, `REGIMENT_CONTROL_SOCKET`). The file has mode
//! 0600 and the master also checks each peer's credentials (SO_PEERCRED): only its own user
//! and root are served. What a peer sends is untrusted: bounded in size and time, and anything
//! malformed is answered with an error and logged (thinned: a flood of bad connections does
//! not fill the log), never fatal. A peer that does not read its answer loses its connection.

mod reply;
mod session;
mod shared;
mod socket;
mod upgrade;

use std::sync::Arc;

pub(crate) use socket::ControlSocket;
use tokio::task::JoinSet;

use super::policy::PolicyConfig;
use super::policy::thinning::Tally;
use crate::Handle;
use crate::plumbing::control::{Answer, ErrorKind, Frame, VERSION, frame_bytes};
use shared::Shared;

/// Connections served at once. Each is a person or a deploy script; past this, something is
/// looping, and the master's memory is not for it: a connection past it is answered "busy".
const MAX_SESSIONS: usize = 64;

/// Serves the control socket until dropped. Sessions live in a `JoinSet`: when the supervisor
/// returns and drops this future, every open connection is closed with it, which is how a
/// client waiting on `stop` learns that the master is gone.
pub(crate) async fn serve(
    listener: tokio::net::UnixListener,
    handle: Handle,
    policy: PolicyConfig,
) {
    let shared = Arc::new(Shared {
        handle,
        policy,
        refusals: Tally::default(),
    });
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if sessions.len() < MAX_SESSIONS => {
                    sessions.spawn(session::serve(stream, shared.clone()));
                }
                Ok((stream, _)) => {
                    answer_busy(&stream);
                    shared.refused(&format!(
                        "{MAX_SESSIONS} connections are open, the most served at once; this \
                         one was answered busy"
                    ));
                }
                Err(e) => {
                    // Out of descriptors, most likely: wait for a session to end before the
                    // next accept rather than spin.
                    shared.refused(&format!("accepting on the control socket failed: {e}"));
                    if sessions.join_next().await.is_none() {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

/// Tells a client that came past [`MAX_SESSIONS`] that the master is busy, without waiting
/// for it: the answer fits in the socket's buffer, and if it does not, the client only sees
/// its connection closed. A peer the master would not serve is not answered.
fn answer_busy(stream: &tokio::net::UnixStream) {
    if session::check_peer(stream).is_err() {
        return;
    }
    let busy = Frame {
        version: VERSION,
        answer: Answer::Error {
            error: ErrorKind::Busy,
            message: format!(
                "the master is busy: it serves {MAX_SESSIONS} control connections at once and \
                 all are taken; nothing was done, try again"
            ),
        },
        ends_within_ms: None,
    };
    if let Ok(bytes) = frame_bytes(&busy) {
        let _ = stream.try_write(&bytes);
    }
}
