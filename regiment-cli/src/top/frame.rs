//! One frame of `regiment top`, as text: the header, a row per worker and the latest events.
//! The live view draws it with ratatui; `--once` prints it as it is.
//!
//! ```text
//! master 4242 · generation 2 · 2/2 workers ready · up 3m12s
//! rollout: none under way; last: generation 2 done: 2 workers replaced in 1.3s
//! listeners: 127.0.0.1:8080 · admin 127.0.0.1:9100
//! memory: 16.2 MiB, no budget (limit 2.1 GiB, the machine's memory) · master 4.1 MiB
//!
//! SLOT  PID   GEN  STATE  AGE    REQ/S  IN FLIGHT  P50    P99   5XX  FAILED  PSS      RESTARTS  LAST REASON
//! 0     4250  2    ready  1m02s  12.0   1          850µs  12ms  0    0       6.1 MiB  1         rolling restart
//! ```

use std::fmt::Write;
use std::time::SystemTime;

use regiment_core::Status;
use regiment_core::events::{RolloutOutcome, WorkerState};

use super::history::History;
use super::pane::{self, Pane};
use crate::describe::{self, bytes, duration, latency};
use crate::memory;
use crate::printable::printable;

/// The worker table's columns.
pub(crate) const COLUMNS: [&str; 14] = [
    "SLOT",
    "PID",
    "GEN",
    "STATE",
    "AGE",
    "REQ/S",
    "IN FLIGHT",
    "P50",
    "P99",
    "5XX",
    "FAILED",
    "PSS",
    "RESTARTS",
    "LAST REASON",
];

/// A worker's row: a cell per column of [`COLUMNS`].
pub(crate) type WorkerRow = [String; COLUMNS.len()];

/// A frame's text.
pub(crate) struct Frame {
    /// The header's lines.
    pub(crate) header: Vec<String>,
    /// A row per worker, in slot order, a cell per column of [`COLUMNS`].
    pub(crate) rows: Vec<WorkerRow>,
}

/// The frame of the newest reading of `history`, as of `now`.
pub(crate) fn frame(history: &History, now: SystemTime) -> Frame {
    let Some(latest) = history.latest() else {
        return Frame {
            header: vec!["waiting for the master's first answer".into()],
            rows: Vec::new(),
        };
    };
    let s = &latest.status;
    Frame {
        header: header(s, now),
        rows: rows(s, history),
    }
}

fn header(s: &Status, now: SystemTime) -> Vec<String> {
    let ready = s
        .workers
        .iter()
        .filter(|w| w.state == WorkerState::Ready)
        .count();
    let mut first = format!("master {} · generation {}", s.master_pid, s.generation);
    if s.good_generation != s.generation {
        let _ = write!(first, " (good {})", s.good_generation);
    }
    let _ = write!(first, " · {ready}/{} workers ready", s.workers_wanted);
    if s.master_started_at_ms > 0 {
        let now_ms = describe::unix_ms(now);
        let _ = write!(
            first,
            " · up {}",
            duration(now_ms.saturating_sub(s.master_started_at_ms))
        );
    }
    if s.stopping {
        first.push_str(" · stopping");
    }
    let mut lines = vec![first, rollout(s)];
    let mut listeners = if s.listeners.is_empty() {
        "listeners: none".to_owned()
    } else {
        format!("listeners: {}", s.listeners.join(", "))
    };
    if let Some(admin) = &s.admin {
        let _ = write!(listeners, " · admin {admin}");
    }
    lines.push(printable(&listeners).into_owned());
    if let Some(line) = memory::line(&s.memory) {
        lines.push(line);
    }
    lines
}

/// The rollout under way and its stage, else the last one's outcome.
fn rollout(s: &Status) -> String {
    let record = s.last_rollout.as_ref();
    let line = match (s.rollout, record) {
        (Some(g), Some(r)) if r.generation == g && r.outcome == RolloutOutcome::InProgress => {
            let mut line = format!(
                "rollout: generation {g} under way, {} of {} slots replaced",
                r.replaced, s.workers_wanted
            );
            if let Some(v) = &r.canary {
                let _ = write!(line, " · {}", pane::canary(v));
            }
            line
        }
        (Some(g), _) => format!("rollout: generation {g} under way"),
        (None, Some(r)) => format!("rollout: none under way; last: {}", describe::outcome(r)),
        (None, None) => "rollout: none yet".to_owned(),
    };
    printable(&line).into_owned()
}

fn rows(s: &Status, history: &History) -> Vec<WorkerRow> {
    let mut workers: Vec<_> = s.workers.iter().collect();
    workers.sort_by_key(|w| (w.slot, w.pid));
    workers
        .into_iter()
        .map(|w| {
            let slot = s.slots.iter().find(|slot| slot.slot == w.slot);
            [
                w.slot.to_string(),
                w.pid.to_string(),
                w.generation.to_string(),
                match w.state {
                    WorkerState::Starting => "starting",
                    WorkerState::Ready => "ready",
                    WorkerState::Draining => "draining",
                }
                .into(),
                duration(w.age_ms),
                history
                    .requests_per_second(w.pid)
                    .map_or_else(|| "-".into(), |r| format!("{r:.1}")),
                w.in_flight.to_string(),
                latency(w.latency_p50_us),
                latency(w.latency_p99_us),
                w.responses_5xx.to_string(),
                w.failures.to_string(),
                w.memory.map_or_else(|| "-".into(), |m| bytes(m.pss)),
                slot.map_or(0, |s| s.restarts).to_string(),
                w.replace_reason
                    .as_deref()
                    .or_else(|| slot.and_then(|s| s.last_restart_reason.as_deref()))
                    .map_or_else(|| "-".into(), |why| printable(why).into_owned()),
            ]
        })
        .collect()
}

/// The frame as plain text, with the newest `events` of the pane under it (`--once`).
pub(crate) fn plain(frame: &Frame, pane: &Pane, events: usize) -> String {
    let mut out = String::new();
    for line in &frame.header {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
    let header = COLUMNS.map(String::from);
    out.push_str(&crate::columns::aligned(
        std::iter::once(&header).chain(&frame.rows),
    ));
    out.push_str("\nEVENTS (UTC)\n");
    let mut any = false;
    for entry in pane.newest(events) {
        any = true;
        let _ = writeln!(out, "{}", entry.line());
    }
    if !any {
        out.push_str("none yet\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::top::history::Reading;

    #[test]
    fn a_frame_shows_the_rollout_its_stage_and_a_row_per_worker() {
        let json = |requests: u64| {
            serde_json::json!({"master_pid": 42, "generation": 3, "good_generation": 2,
                "workers_wanted": 2, "rollout": 3, "stopping": false,
                "master_started_at_ms": 1_000_000,
                "last_rollout": {"generation": 3, "outcome": "in-progress", "why": null,
                    "replaced": 1, "started_at_ms": 1000, "ended_at_ms": null,
                    "canary": {"canary": {"requests": 10, "responses_5xx": 0, "failures": 1},
                               "good": {"requests": 20, "responses_5xx": 0, "failures": 0},
                               "passed": true}},
                "listeners": ["127.0.0.1:8080"], "admin": "127.0.0.1:9100",
                "slots": [{"slot": 0, "restarts": 1, "last_restart_reason": "rolling restart"},
                          {"slot": 1, "restarts": 0, "last_restart_reason": null}],
                "workers": [
                  {"slot": 1, "pid": 101, "generation": 2, "state": "ready", "age_ms": 62000,
                   "rss": 0, "requests": requests, "in_flight": 3, "responses_5xx": 4,
                   "failures": 5, "latency_p50_us": 850, "latency_p99_us": 12_700, "replace_reason": null, "program": null,
                   "memory": {"pss": 6396314, "uss": 5000000}},
                  {"slot": 0, "pid": 200, "generation": 3, "state": "starting", "age_ms": 850,
                   "rss": 0, "requests": 0, "in_flight": 0, "responses_5xx": 0, "failures": 0,
                   "replace_reason": null, "program": null}]})
        };
        let start = Instant::now();
        let mut history = History::default();
        for (s, requests) in [(0, 100), (2, 124)] {
            history.push(Reading {
                status: serde_json::from_value(json(requests)).unwrap(),
                at: start + Duration::from_secs(s),
            });
        }
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000 + 192_000);
        let f = frame(&history, now);
        assert_eq!(
            f.header,
            [
                "master 42 · generation 3 (good 2) · 1/2 workers ready · up 3m12s",
                "rollout: generation 3 under way, 1 of 2 slots replaced · canary passed: 1 of 10 \
                 failed (good: 0 of 20)",
                "listeners: 127.0.0.1:8080 · admin 127.0.0.1:9100",
            ]
        );
        assert_eq!(
            f.rows[0],
            [
                "0",
                "200",
                "3",
                "starting",
                "850ms",
                "0.0",
                "0",
                "-",
                "-",
                "0",
                "0",
                "-",
                "1",
                "rolling restart"
            ]
        );
        assert_eq!(
            f.rows[1],
            [
                "1", "101", "2", "ready", "1m02s", "12.0", "3", "850µs", "12ms", "4", "5",
                "6.1 MiB", "0", "-"
            ]
        );
        let text = plain(&f, &Pane::default(), 5);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[4],
            "SLOT  PID  GEN  STATE     AGE    REQ/S  IN FLIGHT  P50    P99   5XX  FAILED  PSS      \
             RESTARTS  LAST REASON"
        );
        assert_eq!(lines[lines.len() - 2..], ["EVENTS (UTC)", "none yet"]);
    }
}
