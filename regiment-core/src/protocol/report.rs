//! What a worker answers when the master, about to kill it, asks what it is doing: its requests
//! in flight and the stacks of its threads, cut to fit one frame.

use serde::{Deserialize, Serialize};

use super::MAX_FRAME;
use crate::events::{ReportedRequest, StackFrame};

/// The most requests in flight a report lists (the oldest); the others are counted.
pub(crate) const MAX_REQUESTS: usize = 32;

/// A worker's answer to `MasterMessage::Report`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// Its requests in flight, oldest first: method, path without the query, version, age.
    pub requests: Vec<ReportedRequest>,
    /// Requests in flight not listed.
    #[serde(default)]
    pub requests_left_out: u64,
    /// Its threads' stacks, innermost frame first; empty for a thread that did not answer.
    #[serde(default)]
    pub stacks: Vec<ThreadStack>,
}

/// One thread's stack in a [`WorkerReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadStack {
    /// The thread's id, as `/proc/PID/task/` names it.
    pub tid: u32,
    /// Its frames, innermost first.
    pub frames: Vec<StackFrame>,
}

impl WorkerReport {
    /// This report, made small enough for one frame: at most [`MAX_REQUESTS`] requests, then
    /// fewer frames per thread (the innermost kept: where the thread is), then fewer threads,
    /// until it fits.
    pub(crate) fn fitted(mut self) -> Self {
        if self.requests.len() > MAX_REQUESTS {
            let cut = self.requests.len() - MAX_REQUESTS;
            self.requests.truncate(MAX_REQUESTS);
            self.requests_left_out += cut as u64;
        }
        let mut frames = self
            .stacks
            .iter()
            .map(|t| t.frames.len())
            .max()
            .unwrap_or(0);
        while !fits(&self) {
            if frames > 1 {
                frames /= 2;
                for thread in &mut self.stacks {
                    thread.frames.truncate(frames);
                }
            } else if self.stacks.pop().is_some() {
            } else if self.requests.pop().is_some() {
                self.requests_left_out += 1;
            } else {
                break;
            }
        }
        self
    }
}

/// Whether `report` fits in a frame, with room to spare for the envelope around it
/// (`"v":1,"type":"report",`, 22 bytes).
fn fits(report: &WorkerReport) -> bool {
    serde_json::to_vec(report).is_ok_and(|body| body.len() + 64 <= MAX_FRAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(i: usize) -> StackFrame {
        StackFrame {
            function: format!("my_app::handlers::function_number_{i}::{{{{closure}}}}"),
            file: Some(format!("/home/build/my_app/src/handlers/module_{i}.rs")),
            line: Some(i as u32),
        }
    }

    #[test]
    fn a_report_too_large_for_a_frame_keeps_the_innermost_frames_of_every_thread() {
        let report = WorkerReport {
            requests: (0..100)
                .map(|i| ReportedRequest {
                    method: "GET".into(),
                    path: format!("/orders/{i}"),
                    version: "HTTP/1.1".into(),
                    age_ms: 100 - i,
                })
                .collect(),
            requests_left_out: 3,
            stacks: (0..64)
                .map(|tid| ThreadStack {
                    tid,
                    frames: (0..48).map(frame).collect(),
                })
                .collect(),
        };
        assert!(!fits(&report));
        let fitted = report.fitted();
        let encoded = super::super::encode(&super::super::WorkerMessage::Report(fitted.clone()));
        assert!(encoded.len() <= 4 + MAX_FRAME);
        assert_eq!(fitted.requests.len(), MAX_REQUESTS);
        assert_eq!(fitted.requests[0].path, "/orders/0", "the oldest kept");
        assert_eq!(fitted.requests_left_out, 3 + 100 - MAX_REQUESTS as u64);
        assert_eq!(fitted.stacks.len(), 64, "every thread kept");
        assert!(
            fitted
                .stacks
                .iter()
                .all(|t| !t.frames.is_empty() && t.frames[0] == frame(0))
        );
    }

    #[test]
    fn a_report_that_fits_is_kept_whole() {
        let report = WorkerReport {
            requests: Vec::new(),
            requests_left_out: 0,
            stacks: vec![ThreadStack {
                tid: 7,
                frames: (0..48).map(frame).collect(),
            }],
        };
        assert_eq!(report.clone().fitted(), report);
    }
}
