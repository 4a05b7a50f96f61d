//! Not API: what regiment's own crates (regiment-tower, regiment-axum and the end-to-end tests)
//! need from regiment-core beyond its public API.
//!
//! Everything here may change or disappear in any release, patch releases included, and is
//! hidden from the documentation: applications must not use it. It is public only because Rust
//! has no visibility limited to the crates of one workspace, and it is kept to this one module
//! so that the rest of the crate is exactly the API its documentation shows.

// The wire format of the control socket, shared with the `regiment` command (regiment-cli).
pub mod control;

// The wire format of the IPC channel: the end-to-end fixture writes frames (valid and garbage)
// straight to its channel, to test how the master takes them. The criterion kinds are also
// what regiment-tower's layers name when they fire (`request_replacement_for`).
pub use crate::protocol::{CriterionKind, WorkerMessage, encode};

// The preflight of an upgrade in place (issue 23), which the end-to-end tests also run on its
// own, on real programs (tests/tests/preflight.rs).
pub mod upgrade;

// The `REGIMENT_*` variables and their parsers, so that regiment-axum's variables take the
// same durations, with the same bounds and errors, as regiment-core's; and the variables that
// workers read, which their master hands on to them whatever `worker_env` says.
pub use crate::config::regiment_var::RegimentVar;
mod passed_on;
pub use passed_on::PassedOnVariable;

// The kept-open `/proc/self/statm` of the heartbeats, shared with regiment-tower's memory
// sampler so that RSS is read one way.
pub use crate::worker::memory::Statm;

// The reader of each process's private memory (PSS, USS) that the master samples for the memory
// budget, measured by regiment-bench's `sampling` section.
pub use crate::memory_sample::{MemorySampler, PrivateMemory, SampleError};

use crate::worker::Stats;
pub use crate::worker::context::StartedRequest;
pub use crate::worker::in_flight::{
    CAPACITY, InFlightSnapshot, ListedMethod, MAX_PATH, VersionCode,
};

/// Starts this worker's heartbeats (RSS and request counts) from the calling tokio runtime, so
/// that a blocked runtime shows as silence to the master. regiment-axum's server calls it once
/// from the runtime that serves; further calls, and calls outside a cluster, do nothing.
pub fn start_heartbeat() {
    crate::worker::start_heartbeat();
}

/// [`crate::worker::request_replacement`] on behalf of a criterion: the master counts the
/// replacement under `criterion` (its metrics' `reason` label) rather than as the application's
/// own request. regiment-tower's layers fire through it. Only the first request of a process
/// is sent, whichever call makes it; outside a cluster it does nothing and returns `false`.
pub fn request_replacement_for(criterion: CriterionKind, reason: String) -> bool {
    crate::worker::request_replacement_for(criterion, reason)
}

/// Tells the master that this worker gives up its drain at its deadline, with `connections`
/// still open: the requests still in flight are counted as failed (what a canary counts) and
/// reported in a last heartbeat, then `drain-abandoned` says what was left, so that the master
/// books the exit as a drain given up whatever status the process exits with. Resolves once
/// both are written to the IPC channel (or at the drain deadline); call it from a tokio
/// runtime, just before exiting. regiment-axum's server does, before it returns
/// `Error::DrainDeadline`. Outside a cluster it does nothing.
pub async fn abandon_drain(connections: u64) {
    crate::worker::abandon_drain(connections).await;
}

/// True once this process has built a `Supervisor`: it is a master. A master holds the
/// application too (`serve(app)` gets it before it knows its role), so regiment-tower's
/// criteria can tell "master, nothing to replace" from "run outside a cluster, worth a
/// warning".
pub fn is_supervising() -> bool {
    crate::role::is_supervising()
}

/// Attaches this worker to its master, if it is one, and says whether it is attached: takes
/// the IPC channel and starts the thread that talks to the master (and drains the worker on
/// its word, its death or SIGTERM/SIGINT). Idempotent. regiment-axum's server attaches first
/// thing; every worker call and `listen::take_inherited` attach too.
pub fn attach_worker() -> bool {
    crate::worker::attach()
}

/// Counts a request in, in the counters the heartbeats report (one more request, one more in
/// flight), and lists it as in flight from now (see [`in_flight_requests`]). `path` is the
/// request's path alone: never pass its query string. regiment-axum calls it as it hands a
/// request to the service, and [`request_finished`] once the response body is done.
#[inline(always)]
pub fn request_started(
    stats: &Stats,
    method: ListedMethod,
    path: &str,
    version: VersionCode,
) -> StartedRequest {
    stats.request_started(method, path, version)
}

/// Counts a request out: one fewer in flight, taken off the list, and its time from its start
/// to now counted in the latency the heartbeats report. Once per [`request_started`].
#[inline(always)]
pub fn request_finished(stats: &Stats, request: StartedRequest) {
    stats.request_finished(request);
}

/// The requests in flight in the process that counts in `stats` (a worker's are
/// [`crate::worker::stats`]), as they are now: method, path (no query), HTTP version and age,
/// oldest first. Readable from any thread while the runtime that serves them is blocked: the
/// request path writes them without a lock. For the report the master takes before it kills
/// a worker.
///
/// ```
/// use regiment_core::plumbing::{self, ListedMethod, VersionCode};
///
/// let stats = plumbing::new_stats();
/// let version = VersionCode::of(http::Version::HTTP_11);
/// let request = plumbing::request_started(stats, ListedMethod::of(&http::Method::GET), "/orders/42", version);
/// let listed = std::thread::spawn(|| plumbing::in_flight_requests(stats)).join().unwrap();
/// assert_eq!(listed.requests[0].path, "/orders/42");
/// plumbing::request_finished(stats, request);
/// assert!(plumbing::in_flight_requests(stats).requests.is_empty());
/// ```
pub fn in_flight_requests(stats: &Stats) -> InFlightSnapshot {
    stats.in_flight_requests()
}

/// Counts a response with a 5xx status.
pub fn response_5xx(stats: &Stats) {
    stats.count_5xx();
}

/// Counts a request that ended without a complete response: the application panicked,
/// returned an error, or its response body failed.
pub fn failure(stats: &Stats) {
    stats.count_failure();
}

/// Counters of their own, for regiment-axum's in-process tests of its engine (a worker's are
/// [`crate::worker::stats`]).
pub fn new_stats() -> &'static Stats {
    Box::leak(Box::new(Stats::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EnvOverrides;

    #[test]
    fn requests_are_counted_in_and_out_and_read_by_the_getters() {
        let stats = Stats::new();
        let version = VersionCode::of(http::Version::HTTP_11);
        let first = request_started(&stats, ListedMethod::of(&http::Method::GET), "/", version);
        let second = request_started(&stats, ListedMethod::of(&http::Method::GET), "/", version);
        request_finished(&stats, first);
        assert_eq!((stats.requests(), stats.in_flight()), (2, 1));
        request_finished(&stats, second);
        assert_eq!((stats.requests(), stats.in_flight()), (2, 0));
    }

    #[test]
    fn a_process_that_built_a_supervisor_is_supervising() {
        let _supervisor = crate::Builder::new()
            .workers(1)
            .env_overrides(EnvOverrides::Ignore)
            .build()
            .unwrap();
        assert!(is_supervising());
    }
}
