//! [`KillReport`]: what the master saw of a worker just before it killed it.

use serde::{Deserialize, Serialize};

/// What the master learnt of a live worker just before it sent the SIGKILL it decided (the
/// worker's start timeout or drain deadline passed, or it fell silent): what the worker
/// answered when asked (its requests in flight, the stack of each of its threads) and what
/// `/proc` tells of each thread (name, state, kernel wait channel, system call) and of the
/// process's resident memory. The evidence of why a worker hung, kept after the process is
/// gone.
///
/// Taken within `Builder::kill_report_timeout` (1 s by default), then the kill goes ahead:
/// whatever was read by then is the report ([`KillReport::complete`] says whether every thread
/// was). Bounded: at most [`KillReport::MAX_THREADS`] threads (the others counted in
/// [`KillReport::threads_left_out`]), each text at most [`KillReport::MAX_TEXT`] bytes. The
/// master keeps the last [`KillReport::KEPT`]: [`crate::Handle::kill_reports`], `regiment
/// reports`, the admin listener's `/reports`.
///
/// ```
/// use regiment_core::KillReport;
/// // As `regiment reports --json` and `/reports` serve them.
/// let json = r#"{"id":3,"at_ms":1700000000000,"slot":1,"pid":4242,"generation":2,
///     "why":"drain deadline","rss":52428800,"complete":true,"threads_left_out":0,
///     "threads":[{"tid":4242,"name":"app","state":"S (sleeping)",
///                 "wchan":"futex_wait_queue","syscall":"futex"}]}"#;
/// let report: KillReport = serde_json::from_str(json).unwrap();
/// assert_eq!(report.threads[0].syscall.as_deref(), Some("futex"));
/// assert_eq!(report.summary(), "1 thread, 1 in futex; the worker did not answer");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KillReport {
    /// Its number, from 1, in the order the master took them (a new master starts again at 1).
    pub id: u64,
    /// When it was taken, in Unix milliseconds.
    pub at_ms: u64,
    /// The worker's slot.
    pub slot: usize,
    /// The worker's process id.
    pub pid: u32,
    /// The worker's generation.
    pub generation: u64,
    /// Why the master killed it: `start timeout`, `drain deadline`.
    pub why: String,
    /// The process's resident memory in bytes, if it could be read.
    pub rss: Option<u64>,
    /// Whether every thread was read within the time allowed (`false`: the kill went ahead
    /// with the threads read by then).
    pub complete: bool,
    /// Threads past [`KillReport::MAX_THREADS`], not in the report.
    pub threads_left_out: usize,
    /// The process's threads, by thread id.
    pub threads: Vec<ThreadReport>,
    /// Whether the worker answered the master's asking in time, with its requests in flight
    /// and its threads' stacks; when it did not (stopped, its capture too slow, a worker of an
    /// earlier build), the report holds what `/proc` tells.
    #[serde(default)]
    pub worker_answered: bool,
    /// The worker's requests in flight, oldest first, at most 32.
    #[serde(default)]
    pub requests: Vec<ReportedRequest>,
    /// Requests in flight the report does not list.
    #[serde(default)]
    pub requests_left_out: u64,
}

/// One thread of a [`KillReport`], as `/proc/PID/task/TID/` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ThreadReport {
    /// The thread id.
    pub tid: u32,
    /// Its name (`comm`): a tokio runtime's threads are `tokio-runtime-w`.
    pub name: String,
    /// Its scheduler state: `R (running)`, `S (sleeping)`, `D (disk sleep)`, `T (stopped)`...
    pub state: String,
    /// The kernel function it waits in (`futex_wait_queue`, `ep_poll`), if it waits and the
    /// kernel tells.
    pub wchan: Option<String>,
    /// The system call it is blocked in, by name (`futex`, `epoll_wait`; `syscall N` for a
    /// number this build does not name), or `running` when it is on a CPU; `None` when it is
    /// in no system call or the kernel does not tell.
    pub syscall: Option<String>,
    /// Its stack, innermost frame first, as the worker captured it on the master's asking;
    /// empty when the worker did not answer in time (stopped, or its capture timed out) or
    /// this thread did not.
    #[serde(default)]
    pub stack: Vec<StackFrame>,
}

/// One frame of a thread's stack in a [`KillReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StackFrame {
    /// The function, demangled without its hash (`my_app::handlers::checkout`); its address
    /// (`0x55d0c0ffee12`) when the worker could not name it in time.
    pub function: String,
    /// The source file, where the binary's debug info has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line in [`StackFrame::file`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// One request the worker had in flight when its [`KillReport`] was taken: never its query
/// string, headers or body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReportedRequest {
    /// Its method (`GET`).
    pub method: String,
    /// Its path, without the query string, cut at 256 bytes (and marked `…`).
    pub path: String,
    /// Its HTTP version (`HTTP/1.1`, `HTTP/2`).
    pub version: String,
    /// How long it had been in flight, in milliseconds.
    pub age_ms: u64,
}

impl KillReport {
    /// The most threads a report holds.
    pub const MAX_THREADS: usize = 256;
    /// The most bytes of any text a report holds (a thread's name, state, wait channel).
    pub const MAX_TEXT: usize = 64;
    /// How many reports the master keeps: the last ones.
    pub const KEPT: usize = 16;

    /// The threads in a few words, for a log line or a table: `9 threads, 7 in futex, 2 in
    /// epoll_wait` (the three most common system calls; `running` for threads on a CPU).
    pub fn summary(&self) -> String {
        let total = self.threads.len() + self.threads_left_out;
        let mut text = format!("{total} thread{}", if total == 1 { "" } else { "s" });
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for call in self.threads.iter().filter_map(|t| t.syscall.as_deref()) {
            match counts.iter_mut().find(|(c, _)| *c == call) {
                Some((_, n)) => *n += 1,
                None => counts.push((call, 1)),
            }
        }
        // Most common first; ties in the order first seen (by thread id).
        counts.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        for (call, n) in counts.into_iter().take(3) {
            match call {
                "running" => text.push_str(&format!(", {n} running")),
                _ => text.push_str(&format!(", {n} in {call}")),
            }
        }
        if !self.complete {
            text.push_str(" (cut short)");
        }
        if !self.worker_answered {
            text.push_str("; the worker did not answer");
        }
        let requests = self.requests.len() as u64 + self.requests_left_out;
        if requests > 0 {
            let s = if requests == 1 { "" } else { "s" };
            text.push_str(&format!("; {requests} request{s} in flight"));
            if let Some(oldest) = self.requests.first() {
                text.push_str(&format!(
                    ", oldest {} {} for {:.1} s",
                    oldest.method,
                    oldest.path,
                    oldest.age_ms as f64 / 1000.0
                ));
            }
        }
        text
    }
}
