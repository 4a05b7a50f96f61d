//! The header read timeout of one connection, kept by the connection task on one timer for the
//! connection's whole life (see [`crate::connection`] for the rules it enforces).
//!
//! hyper can keep this timeout itself, but it creates, registers and cancels a timer for every
//! request head it reads: most of what a keep-alive request costs the engine beyond
//! `axum::serve` (about 1,600 of 16,600 instructions per request under callgrind). Here the
//! service wrapper stamps the moment a connection goes idle (its last answer done, see
//! [`ConnectionState::idle_since`]), and the timer is only looked at when it fires: if the
//! connection went idle again meanwhile, it is set again for the new deadline. One timer
//! event per timeout period instead of three per request.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::lazy_poll::LazyPoll;
use crate::tracked_io::ConnectionState;

/// What the connection task must do when the header read timeout ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// Shut the connection down gracefully: it is idle, with no request begun (hyper closes an
    /// idle HTTP/1 connection at once, and stops reading a version it has not made out yet).
    ShutDown,
    /// Close it now: a request head begun and stalled, an HTTP/2 preface left unfinished, or a
    /// connection still open a whole timeout after its graceful shutdown.
    Close,
}

/// Where the timer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watching {
    /// For the next request head, or the end of the HTTP/2 preface.
    Head,
    /// For the end of a connection shut down by this timer.
    ShutDown,
    /// Nothing: an HTTP/2 connection past its preface may stay idle.
    Off,
}

/// What a fired timer found.
enum Fired {
    /// Not run out yet: set the timer again for this deadline.
    Again(Instant),
    /// Nothing more to watch.
    Stop,
    Expired(Expired),
}

/// The header read timeout of one connection.
pub(crate) struct HeaderTimer<'a> {
    sleep: LazyPoll<'a, Sleep>,
    timeout: Duration,
    watching: Watching,
}

impl<'a> HeaderTimer<'a> {
    /// `sleep` is the connection's timer, set to run out one `timeout` after it opened.
    pub(crate) fn new(sleep: Pin<&'a mut Sleep>, timeout: Duration) -> Self {
        Self {
            sleep: LazyPoll::new(sleep),
            timeout,
            watching: Watching::Head,
        }
    }

    /// The timer for a connection opened at `opened`.
    pub(crate) fn sleep(opened: Instant, timeout: Duration) -> Sleep {
        tokio::time::sleep_until(opened + timeout)
    }

    /// Resolves when the timeout ran out for `state`'s connection; pending otherwise, without
    /// touching the timer unless it fired.
    pub(crate) fn poll_expired(
        &mut self,
        cx: &mut Context<'_>,
        state: &ConnectionState,
    ) -> Poll<Expired> {
        loop {
            if self.watching == Watching::Off {
                return Poll::Pending;
            }
            let fired = self.sleep.future().is_elapsed();
            ready!(self.sleep.poll_if(cx, fired));
            let now = Instant::now();
            match self.on_fired(state, now) {
                Fired::Again(deadline) => self.sleep.future_mut().reset(deadline),
                Fired::Stop => {
                    self.watching = Watching::Off;
                    return Poll::Pending;
                }
                Fired::Expired(expired) => {
                    if expired == Expired::ShutDown {
                        // A connection that is not done one timeout after its shutdown is
                        // closed.
                        self.watching = Watching::ShutDown;
                        self.sleep.future_mut().reset(now + self.timeout);
                    }
                    return Poll::Ready(expired);
                }
            }
        }
    }

    /// The timer fired at `now`: the next deadline, or what ran out.
    fn on_fired(&self, state: &ConnectionState, now: Instant) -> Fired {
        if self.watching == Watching::ShutDown {
            return Fired::Expired(Expired::Close);
        }
        if state.http2_preface_complete() {
            return Fired::Stop;
        }
        if state.in_flight() > 0 {
            // It goes idle later than now, so its deadline is later than this.
            return Fired::Again(now + self.timeout);
        }
        let deadline = state.idle_since() + self.timeout;
        if now < deadline {
            return Fired::Again(deadline);
        }
        if state.is_http2() || state.request_begun() {
            // The HTTP/2 magic without its SETTINGS (a graceful HTTP/2 shutdown would wait for a
            // PING's acknowledgement from a peer that says nothing), or a request head begun and
            // stalled (hyper's own header timeout closes those too).
            tracing::debug!("request header or HTTP/2 preface not complete in time; closing");
            return Fired::Expired(Expired::Close);
        }
        tracing::debug!("no request within the header read timeout; shutting down");
        Fired::Expired(Expired::ShutDown)
    }
}
