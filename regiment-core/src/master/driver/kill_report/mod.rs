//! Kill reports: before the SIGKILL of a live worker that the master decided (its start
//! timeout or its drain deadline passed, or it fell silent), the driver asks the worker what it
//! is doing (its requests in flight, its threads' stacks: the worker's IPC thread answers, not
//! its application's runtime, which may be the one blocked) and reads what `/proc` tells of its
//! threads, both within a bound (`Builder::kill_report_timeout`), then kills it.
//!
//! The worker is asked once `/proc` is read (its capture interrupts every thread, which `/proc`
//! would then show running), or a quarter of the bound in, and is to answer by seven eighths of
//! it, so that its answer, on its way as it ends, still comes in time; a worker that does not
//! answer (stopped, its capture too slow, a worker of an earlier build) leaves the report with
//! what `/proc` tells.
//!
//! The reading runs on a blocking thread and hands over what it reads as it goes; a task
//! collects it until the reading ends or the bound passes, whichever comes first, and hands
//! the report to the driver's loop, which keeps it and sends the SIGKILL. So the loop never
//! waits on `/proc` (a thread of the worker stuck in the kernel can make its files slow to
//! read), and the kill comes at most the bound later than decided. The kill is sent by the
//! loop, not by the task: only the loop reaps, so only there is the pid known not to be reused.
//! The policy is not told: for it, the worker was killed when it decided so.

mod proc_threads;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::super::policy::{KillReason, WorkerId};
use super::channel::ToWorker;
use crate::events::{KillReport, ThreadReport};
use crate::protocol::WorkerReport;
use proc_threads::{Finding, read_process};

/// The worker a report is taken of, and why it is killed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Subject {
    pub(super) id: WorkerId,
    pub(super) slot: usize,
    pub(super) pid: u32,
    pub(super) generation: u64,
    pub(super) why: KillReason,
}

/// A report taken (its id not given yet: the store gives it), and of whom.
#[derive(Debug)]
pub(super) struct Taken {
    pub(super) subject: Subject,
    pub(super) report: KillReport,
}

/// The reports being taken, and where they arrive.
#[derive(Debug)]
pub(super) struct KillReporter {
    /// How long a report may take; zero: none is taken.
    bound: Duration,
    taken_tx: mpsc::UnboundedSender<Taken>,
    taken_rx: mpsc::UnboundedReceiver<Taken>,
    /// The workers whose report is being taken (their kill waits for it), and where their
    /// answer goes.
    taking: BTreeMap<WorkerId, Option<oneshot::Sender<WorkerReport>>>,
}

impl KillReporter {
    pub(super) fn new(bound: Duration) -> Self {
        let (taken_tx, taken_rx) = mpsc::unbounded_channel();
        Self {
            bound,
            taken_tx,
            taken_rx,
            taking: BTreeMap::new(),
        }
    }

    /// Whether a kill for `why` is preceded by a report: a kill of a live worker the master
    /// decided on its own. A forced stop is the operator's (at once, as asked), and a worker
    /// whose channel could not be set up never ran the program.
    pub(super) fn wanted(&self, why: KillReason) -> bool {
        !self.bound.is_zero()
            && match why {
                KillReason::StartTimeout | KillReason::DrainDeadline | KillReason::Unresponsive => {
                    true
                }
                KillReason::ForcedStop | KillReason::IpcSetupFailed => false,
            }
    }

    /// Whether a report is being taken: the master is not quiet enough for a handover.
    pub(super) fn is_taking(&self) -> bool {
        !self.taking.is_empty()
    }

    /// Starts taking a report of `subject`, at `at_ms` (Unix milliseconds), asking the worker
    /// through `to_worker`; it arrives through [`KillReporter::finished`] within the bound.
    /// Nothing new if its report is being taken already.
    pub(super) fn start(
        &mut self,
        subject: Subject,
        at_ms: u64,
        to_worker: mpsc::Sender<ToWorker>,
    ) {
        if self.taking.contains_key(&subject.id) {
            return;
        }
        let (answer_tx, answer) = oneshot::channel();
        self.taking.insert(subject.id, Some(answer_tx));
        let times = Times::from(Instant::now(), self.bound);
        let taken_tx = self.taken_tx.clone();
        tokio::spawn(async move {
            let report = take(subject, at_ms, times, answer, to_worker).await;
            let _ = taken_tx.send(Taken { subject, report });
        });
    }

    /// Worker `id` answered: its answer goes into its report if one is being taken (a worker
    /// that answers unasked, or twice, is ignored).
    pub(super) fn answered(&mut self, id: WorkerId, answer: WorkerReport) {
        match self.taking.get_mut(&id).and_then(Option::take) {
            Some(to_report) => {
                let _ = to_report.send(answer);
            }
            None => tracing::debug!(worker = ?id, "a report nobody asked for, ignored"),
        }
    }

    /// Worker `id`'s channel closed: no answer will come, its report need not wait for one.
    pub(super) fn channel_closed(&mut self, id: WorkerId) {
        if let Some(answer) = self.taking.get_mut(&id) {
            answer.take();
        }
    }

    /// The next report taken.
    pub(super) async fn finished(&mut self) -> Taken {
        let taken = self
            .taken_rx
            .recv()
            .await
            .expect("the reporter holds a sender");
        self.taking.remove(&taken.subject.id);
        taken
    }
}

/// When a report's parts are due.
#[derive(Debug, Clone, Copy)]
struct Times {
    /// When the worker is asked, at the latest: `/proc` is read first.
    ask_at: Instant,
    /// By when the worker is asked to answer: room left for its answer's way.
    answer_by: Instant,
    /// The report's bound: the kill comes then, whatever it has.
    deadline: Instant,
}

impl Times {
    fn from(now: Instant, bound: Duration) -> Self {
        Self {
            ask_at: now + bound / 4,
            answer_by: now + bound * 7 / 8,
            deadline: now + bound,
        }
    }
}

/// Reads `/proc/PID` on a blocking thread, then asks the worker (once `/proc` is read, or a
/// quarter of the bound passed: the worker's capture interrupts every thread, which `/proc`
/// would then show running its signal handler rather than where it was), and waits for its
/// answer, until both are in or the deadline passes.
async fn take(
    subject: Subject,
    at_ms: u64,
    times: Times,
    answer: oneshot::Receiver<WorkerReport>,
    to_worker: mpsc::Sender<ToWorker>,
) -> KillReport {
    let mut report = KillReport {
        id: 0,
        at_ms,
        slot: subject.slot,
        pid: subject.pid,
        generation: subject.generation,
        why: subject.why.as_str().to_owned(),
        rss: None,
        complete: false,
        threads_left_out: 0,
        threads: Vec::new(),
        worker_answered: false,
        requests: Vec::new(),
        requests_left_out: 0,
    };
    let (findings_tx, mut findings) = mpsc::unbounded_channel();
    let dir = PathBuf::from(format!("/proc/{}", subject.pid));
    // Past the deadline the reader finds no one listening at its next finding, and stops.
    tokio::task::spawn_blocking(move || {
        read_process(&dir, &mut |finding| findings_tx.send(finding).is_ok());
    });
    let collect = async {
        while let Some(finding) = findings.recv().await {
            match finding {
                Finding::Rss(rss) => report.rss = rss,
                Finding::LeftOut(n) => report.threads_left_out = n,
                Finding::Thread(thread) => report.threads.push(thread),
            }
        }
    };
    let (read, answer) = {
        let mut collect = std::pin::pin!(collect);
        let read_before_asking = tokio::select! {
            () = &mut collect => true,
            () = tokio::time::sleep_until(times.ask_at.into()) => false,
        };
        let by = times.answer_by;
        if to_worker.try_send(ToWorker::AskReport { by }).is_err() {
            tracing::debug!(
                pid = subject.pid,
                "report not asked of the worker: its channel is full or closed"
            );
        }
        let deadline = times.deadline.into();
        tokio::join!(
            async {
                read_before_asking
                    || tokio::time::timeout_at(deadline, &mut collect)
                        .await
                        .is_ok()
            },
            tokio::time::timeout_at(deadline, answer),
        )
    };
    report.complete = read;
    if let Ok(Ok(answer)) = answer {
        with_answer(&mut report, answer);
    }
    report
}

/// Puts the worker's answer into its report: its requests, and each thread's stack beside what
/// `/proc` told of it (a thread `/proc` was not read for in time is listed with its stack
/// alone, its state unknown).
fn with_answer(report: &mut KillReport, answer: WorkerReport) {
    report.worker_answered = true;
    report.requests = answer.requests;
    report.requests_left_out = answer.requests_left_out;
    for stack in answer.stacks {
        let known = report.threads.len();
        match report.threads.iter_mut().find(|t| t.tid == stack.tid) {
            Some(thread) => thread.stack = stack.frames,
            None if known < KillReport::MAX_THREADS => {
                report.threads.push(ThreadReport {
                    tid: stack.tid,
                    name: String::new(),
                    state: "unknown".to_owned(),
                    wchan: None,
                    syscall: None,
                    stack: stack.frames,
                });
            }
            None => {}
        }
    }
    report.threads.sort_by_key(|t| t.tid);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ReportedRequest, StackFrame};
    use crate::protocol::ThreadStack;

    fn subject(pid: u32) -> Subject {
        Subject {
            id: WorkerId(7),
            slot: 1,
            pid,
            generation: 2,
            why: KillReason::DrainDeadline,
        }
    }

    #[tokio::test]
    async fn a_report_of_a_live_process_holds_its_threads_and_is_complete() {
        let mut child = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .unwrap();
        let mut reporter = KillReporter::new(Duration::from_secs(30));
        assert!(reporter.wanted(KillReason::DrainDeadline));
        assert!(reporter.wanted(KillReason::StartTimeout));
        assert!(!reporter.wanted(KillReason::ForcedStop));
        let (to_worker, mut asked) = mpsc::channel(4);
        reporter.start(subject(child.id()), 1234, to_worker);
        assert!(reporter.is_taking());
        // The worker is asked once /proc is read, long before the bound (30 s).
        let Some(ToWorker::AskReport { by }) = asked.recv().await else {
            panic!("the worker was not asked");
        };
        assert!(by > Instant::now() + Duration::from_secs(20));
        // As the driver does when the worker's channel closes: no answer will come.
        reporter.channel_closed(WorkerId(7));
        let taken = reporter.finished().await;
        assert!(!reporter.is_taking());
        child.kill().unwrap();
        child.wait().unwrap();
        let report = taken.report;
        assert!(report.complete);
        assert_eq!(
            (report.slot, report.pid, report.generation, report.at_ms),
            (1, child.id(), 2, 1234)
        );
        assert_eq!(report.why, "drain deadline");
        assert_eq!(report.threads.len(), 1, "{report:?}");
        assert_eq!(report.threads[0].name, "sleep");
        assert!(report.rss.is_some_and(|r| r > 0));
    }

    #[test]
    fn a_reading_that_does_not_end_in_time_is_cut_short_at_the_bound() {
        // A blocking pool of one thread, kept busy until the report arrives: the reading cannot
        // start before the bound. (Real time: a paused clock does not advance while a blocking
        // task runs.)
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let (release, busy_until) = std::sync::mpsc::channel::<()>();
        let taken = runtime.block_on(async {
            tokio::task::spawn_blocking(move || busy_until.recv());
            let mut reporter = KillReporter::new(Duration::from_millis(500));
            let (to_worker, _asked) = mpsc::channel(4);
            reporter.start(subject(std::process::id()), 0, to_worker);
            reporter.finished().await
        });
        release.send(()).unwrap();
        assert!(!taken.report.complete);
        assert!(taken.report.threads.is_empty());
        assert_eq!(taken.subject.id, WorkerId(7));
    }

    #[tokio::test]
    async fn the_workers_answer_puts_its_requests_and_stacks_beside_what_proc_tells() {
        let mut child = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut reporter = KillReporter::new(Duration::from_secs(30));
        let (to_worker, mut asked) = mpsc::channel(4);
        reporter.start(subject(pid), 0, to_worker.clone());
        // One report at a time: a second start while it is taken takes nothing, asks nothing.
        reporter.start(subject(pid), 0, to_worker);
        assert!(matches!(
            asked.recv().await,
            Some(ToWorker::AskReport { .. })
        ));
        reporter.answered(WorkerId(8), WorkerReport::default());
        let frame = |function: &str| StackFrame {
            function: function.into(),
            file: Some("src/main.rs".into()),
            line: Some(12),
        };
        let request = ReportedRequest {
            method: "GET".into(),
            path: "/slow".into(),
            version: "HTTP/1.1".into(),
            age_ms: 5230,
        };
        reporter.answered(
            WorkerId(7),
            WorkerReport {
                requests: vec![request.clone()],
                requests_left_out: 2,
                stacks: vec![
                    ThreadStack {
                        tid: pid,
                        frames: vec![frame("app::slow")],
                    },
                    // A thread /proc no longer shows (gone since): listed with its stack.
                    ThreadStack {
                        tid: u32::MAX,
                        frames: vec![frame("app::gone")],
                    },
                ],
            },
        );
        // A second answer is not taken.
        reporter.answered(WorkerId(7), WorkerReport::default());
        let report = reporter.finished().await.report;
        child.kill().unwrap();
        child.wait().unwrap();
        // The one report taken, nothing holds the channel any more: no second ask.
        assert!(asked.recv().await.is_none(), "one report at a time");
        assert!(report.complete && report.worker_answered);
        assert_eq!(
            (report.requests, report.requests_left_out),
            (vec![request], 2)
        );
        assert_eq!(report.threads.len(), 2, "{:?}", report.threads);
        assert_eq!(report.threads[0].name, "sleep");
        assert_eq!(report.threads[0].stack, [frame("app::slow")]);
        assert_eq!(report.threads[1].tid, u32::MAX);
        assert_eq!(report.threads[1].state, "unknown");
        assert_eq!(report.threads[1].stack, [frame("app::gone")]);
    }

    #[tokio::test]
    async fn a_worker_that_does_not_answer_leaves_what_proc_tells() {
        let mut child = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .unwrap();
        let mut reporter = KillReporter::new(Duration::from_millis(300));
        let (to_worker, _asked) = mpsc::channel(4);
        reporter.start(subject(child.id()), 0, to_worker);
        let report = reporter.finished().await.report;
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!report.worker_answered);
        assert!(report.requests.is_empty());
        assert!(report.threads.iter().all(|t| t.stack.is_empty()));
    }

    #[test]
    fn no_report_is_wanted_with_a_bound_of_zero() {
        let reporter = KillReporter::new(Duration::ZERO);
        assert!(!reporter.wanted(KillReason::DrainDeadline));
    }
}
