//! The kill reports in the pane: each report the master keeps is told once, when top first
//! sees it, in a line at the time it was taken; `regiment report ID` prints it whole.
//!
//! ```text
//! 14:02:03  kill report #3: slot 1 pid 4242 gen 2, drain deadline: 9 threads, 7 in futex (regiment report 3)
//! ```

use regiment_core::KillReport;

use super::pane::Pane;
use crate::describe;

/// The reports already told.
#[derive(Default)]
pub(crate) struct Told {
    /// The reports of the last answer, by id and time: a master keeps its last
    /// [`KillReport::KEPT`], and one that dropped a report never serves it again, so a report
    /// not among them is new. The time tells apart the report 1 of a master that started again
    /// (in place, with the same pid, after an upgrade) from the report 1 told before.
    last: Vec<(u64, u64)>,
}

impl Told {
    /// Tells in `pane` the reports of `kept` (the master's answer, oldest first) not told yet.
    pub(crate) fn tell(&mut self, kept: &[KillReport], pane: &mut Pane) {
        for r in kept {
            if !self.last.contains(&(r.id, r.at_ms)) {
                pane.push(Some(describe::at_unix_ms(r.at_ms)), &line(r));
            }
        }
        self.last = kept.iter().map(|r| (r.id, r.at_ms)).collect();
    }
}

/// `kill report #3: slot 1 pid 4242 gen 2, drain deadline: 9 threads, 7 in futex (regiment
/// report 3)`, as the master logs it; made printable by the pane.
fn line(r: &KillReport) -> String {
    format!(
        "kill report #{}: slot {} pid {} gen {}, {}: {} (regiment report {})",
        r.id,
        r.slot,
        r.pid,
        r.generation,
        r.why,
        r.summary(),
        r.id
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn report(id: u64, at_ms: u64, why: &str) -> KillReport {
        serde_json::from_value(serde_json::json!({"id": id, "at_ms": at_ms, "slot": 1,
            "pid": 4242, "generation": 2, "why": why, "rss": 52_428_800, "complete": true,
            "threads_left_out": 0, "worker_answered": true,
            "threads": [
              {"tid": 4242, "name": "app", "state": "S (sleeping)", "wchan": "do_epoll_wait",
               "syscall": "epoll_wait"},
              {"tid": 4243, "name": "tokio-runtime-w", "state": "S (sleeping)",
               "wchan": "futex_wait_queue", "syscall": "futex"},
              {"tid": 4244, "name": "tokio-runtime-w", "state": "S (sleeping)",
               "wchan": "futex_wait_queue", "syscall": "futex"}]}))
        .unwrap()
    }

    fn texts(pane: &Pane) -> Vec<String> {
        pane.newest(100).map(|e| e.line()).collect()
    }

    #[test]
    fn each_report_is_told_once_at_the_time_it_was_taken() {
        let first = report(1, 1_796_632_007_081, "drain deadline");
        let mut told = Told::default();
        let mut pane = Pane::default();
        told.tell(std::slice::from_ref(&first), &mut pane);
        assert_eq!(
            texts(&pane),
            [
                "08:26:47  kill report #1: slot 1 pid 4242 gen 2, drain deadline: 3 threads, 2 in \
              futex, 1 in epoll_wait (regiment report 1)"
            ]
        );
        assert_eq!(
            pane.newest(1).next().unwrap().at,
            Some(UNIX_EPOCH + Duration::from_millis(first.at_ms))
        );

        // The same again: nothing new. A second: told alone. Its text is the master's, made
        // printable.
        told.tell(std::slice::from_ref(&first), &mut pane);
        assert_eq!(texts(&pane).len(), 1);
        let second = report(2, 1_796_632_067_000, "start timeout\u{1b}[2J");
        told.tell(&[first.clone(), second], &mut pane);
        let lines = texts(&pane);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[1].starts_with(
                "08:27:47  kill report #2: slot 1 pid 4242 gen 2, start \
                                  timeout\\u{1b}[2J: 3 threads"
            ),
            "{lines:?}"
        );

        // A master that started again numbers from 1: its report 1 is another.
        let again = report(1, 1_796_632_127_000, "drain deadline");
        told.tell(std::slice::from_ref(&again), &mut pane);
        let lines = texts(&pane);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[2].starts_with("08:28:47  kill report #1:"),
            "{lines:?}"
        );
    }
}
