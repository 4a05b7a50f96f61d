//! The stacks of every thread of this process, captured from inside it: what a worker sends its
//! master just before the master kills it (issue 25, a kill report's `stack`), so that a runtime
//! thread blocked in a handler shows the handler's frames (function, file, line).
//!
//! How: one thread at a time, the capturing thread (the worker's `regiment-ipc`) sends the
//! thread a real-time signal, [`signal::stack_signal`] (`SIGRTMIN + 4`, reserved by regiment in
//! its workers: an application must not use it), whose handler walks the interrupted thread's
//! stack and records the raw addresses of its frames. The capturing thread waits for that answer
//! for a share of the time left, then names the frames itself, afterwards, with the binary's own
//! debug info ([`symbolize`]). The capturing thread records its own stack directly.
//!
//! Why in the worker rather than from the master (`ptrace` plus a DWARF unwinder and a
//! symbolizer): no privilege is needed (`ptrace` is often denied in containers, or by Yama), it
//! is much less code, and the frames are named with the binary's own debug info. What it cannot
//! do (a stopped worker, a thread with signals blocked or stuck in the kernel) `/proc` still
//! tells, which the master reads anyway: such a thread is listed as [`Answer::NotInTime`].
//! Walking a stack in a signal handler is not strictly async-signal-safe (the unwinder may take
//! the loader's lock); what it could deadlock is a thread of a process killed right after.
//!
//! ```text
//! // In the worker's IPC thread, when the master asks before a kill:
//! let stacks = stacks::capture(Instant::now() + Duration::from_millis(500));
//! ```

// Installs the signal handler and sends the signal (SAFETY comments there).
#[allow(unsafe_code)]
mod signal;
mod symbolize;
#[cfg(test)]
mod tests;

use std::time::Instant;

use crate::events::StackFrame;

/// The most threads a capture lists (the lowest thread ids).
pub(crate) const MAX_THREADS: usize = 256;
/// The most frames listed per thread, innermost first.
pub(crate) const MAX_FRAMES: usize = 48;
/// The most bytes of a function's name kept (then marked `…`).
pub(crate) const MAX_FUNCTION: usize = 200;
/// The most bytes of a file's path kept, its end (then marked `…` in front).
pub(crate) const MAX_FILE: usize = 160;

/// One thread's stack, as [`capture`] got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ThreadStack {
    /// The thread id.
    pub(crate) tid: u32,
    /// Whether the thread recorded its stack in time.
    pub(crate) answer: Answer,
    /// Its frames, innermost first, from the code it was running; empty when it did not answer.
    pub(crate) frames: Vec<StackFrame>,
}

/// Whether a thread recorded its stack in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// It did (or it is the capturing thread).
    Answered,
    /// It did not by its share of the deadline: its signals blocked, stopped, stuck in the
    /// kernel, or just not scheduled in time.
    NotInTime,
}

/// The stacks of the process's threads (every thread in `/proc/self/task`, the calling one
/// included, at most [`MAX_THREADS`]), by thread id, each innermost frame first, beginning at
/// the code the thread was running (the signal handler's own frames and the signal trampoline
/// left out). Returns by `deadline` whatever it has: a thread that did not answer in time is
/// listed as [`Answer::NotInTime`] with no frames; frames not named by the deadline show their
/// address. A thread that exits during the capture is left out.
///
/// Half of the time left goes to collecting the stacks (each thread waited for a share of
/// what is left of that half), the rest to naming their frames, which is the slower part the
/// first time (the debug info is read then).
#[inline(never)] // its frame is where the calling thread's own stack is cut
pub(crate) fn capture(deadline: Instant) -> Vec<ThreadStack> {
    let start = Instant::now();
    let collect_by = start + deadline.saturating_duration_since(start) / 2;
    let own_tid = signal::current_tid();
    let tids = threads();
    let mut raw = Vec::with_capacity(tids.len());
    for (i, &tid) in tids.iter().enumerate() {
        if tid == own_tid {
            raw.push((
                tid,
                Some(signal::own_stack(
                    capture as fn(Instant) -> Vec<ThreadStack> as usize,
                )),
            ));
            continue;
        }
        let now = Instant::now();
        let share = collect_by.saturating_duration_since(now) / (tids.len() - i) as u32;
        match signal::ask(tid, now + share) {
            signal::Reply::Stack(stack) => raw.push((tid, Some(stack))),
            signal::Reply::NotInTime => raw.push((tid, None)),
            signal::Reply::Gone => {}
        }
    }
    raw.into_iter()
        .map(|(tid, stack)| match stack {
            Some(stack) => ThreadStack {
                tid,
                answer: Answer::Answered,
                frames: symbolize::frames(&stack, deadline),
            },
            None => ThreadStack {
                tid,
                answer: Answer::NotInTime,
                frames: Vec::new(),
            },
        })
        .collect()
}

/// The ids of this process's threads, lowest first, at most [`MAX_THREADS`].
fn threads() -> Vec<u32> {
    let mut tids: Vec<u32> = std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    tids.truncate(MAX_THREADS);
    tids
}
