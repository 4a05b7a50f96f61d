//! The worker's answer when the master, about to kill it, asks what it is doing: its requests
//! in flight, read from the registry the request path keeps (see [`super::in_flight`]), and
//! its threads' stacks ([`super::stacks`]). Neither needs anything of the application's
//! runtime, blocked as it may be.
//!
//! Built on the IPC thread's blocking pool, never on the application's runtime.

use std::time::Instant;

use crate::protocol::{ThreadStack, WorkerReport};

/// What this worker is doing, by `deadline`, cut to fit a frame.
pub(super) fn answer(deadline: Instant) -> WorkerReport {
    let (requests, requests_left_out) = super::stats().map_or((Vec::new(), 0), |stats| {
        let snapshot = stats.in_flight_requests();
        (snapshot.requests, snapshot.unlisted)
    });
    // The requests first: they are read in an instant, and are what the stacks were doing.
    WorkerReport {
        requests,
        requests_left_out,
        stacks: stacks(deadline),
    }
    .fitted()
}

/// The stacks of the worker's threads but this one: a thread of the IPC thread's blocking pool,
/// often started for this very report, busy capturing the others.
#[cfg(target_os = "linux")]
fn stacks(deadline: Instant) -> Vec<ThreadStack> {
    let capturing = nix::unistd::gettid().as_raw() as u32;
    super::stacks::capture(deadline)
        .into_iter()
        .filter(|s| s.tid != capturing)
        .map(|s| ThreadStack {
            tid: s.tid,
            frames: s.frames,
        })
        .collect()
}

#[cfg(not(target_os = "linux"))]
fn stacks(_deadline: Instant) -> Vec<ThreadStack> {
    Vec::new()
}
