//! The last few statuses, and the rates read from them: a worker's requests per second is the
//! change of its request count over the time between two statuses.
//!
//! Workers report their counts in heartbeats (every second by default), so two statuses a
//! second apart may hold the same count, or two heartbeats' worth: the rate is taken over the
//! oldest status within [`WINDOW`] that knew the worker, which smooths that out.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use regiment_core::Status;

/// How far back a rate looks.
pub(crate) const WINDOW: Duration = Duration::from_secs(5);

/// A status, and when it was read.
#[derive(Clone)]
pub(crate) struct Reading {
    pub(crate) status: Status,
    pub(crate) at: Instant,
}

/// The statuses of the last [`WINDOW`], oldest first.
#[derive(Default)]
pub(crate) struct History {
    readings: VecDeque<Reading>,
}

impl History {
    /// Adds the newest reading, and forgets those older than the window needs.
    pub(crate) fn push(&mut self, reading: Reading) {
        let at = reading.at;
        self.readings.push_back(reading);
        // Keep one reading at or beyond the window: a rate spans it whole.
        while self.readings.len() > 2 && self.readings[1].at + WINDOW <= at {
            self.readings.pop_front();
        }
    }

    /// The newest reading.
    pub(crate) fn latest(&self) -> Option<&Reading> {
        self.readings.back()
    }

    /// Requests per second of the worker `pid` up to the newest reading; `None` until two
    /// readings know it.
    pub(crate) fn requests_per_second(&self, pid: u32) -> Option<f64> {
        let latest = self.latest()?;
        let now = latest.status.workers.iter().find(|w| w.pid == pid)?;
        let (then, at) = self.readings.iter().find_map(|r| {
            let w = r.status.workers.iter().find(|w| w.pid == pid)?;
            (r.at < latest.at).then_some((w, r.at))
        })?;
        let seconds = latest.at.duration_since(at).as_secs_f64();
        Some(now.requests.saturating_sub(then.requests) as f64 / seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(workers: &[(u32, u64)]) -> Status {
        let workers: Vec<_> = workers
            .iter()
            .map(|(pid, requests)| {
                serde_json::json!({"slot": 0, "pid": pid, "generation": 1, "state": "ready",
                    "age_ms": 1000, "rss": 0, "requests": requests, "in_flight": 0,
                    "responses_5xx": 0, "failures": 0, "replace_reason": null, "program": null})
            })
            .collect();
        let mut s = Status::default();
        s.workers = serde_json::from_value(serde_json::Value::Array(workers)).unwrap();
        s
    }

    #[test]
    fn a_rate_is_the_change_of_the_count_over_the_oldest_reading_in_the_window() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut h = History::default();
        h.push(Reading {
            status: status(&[(7, 100)]),
            at: at(0),
        });
        assert_eq!(h.requests_per_second(7), None, "one reading: no rate yet");
        h.push(Reading {
            status: status(&[(7, 100), (8, 5)]),
            at: at(1),
        });
        assert_eq!(h.requests_per_second(7), Some(0.0));
        assert_eq!(h.requests_per_second(8), None, "a new worker: no rate yet");
        h.push(Reading {
            status: status(&[(7, 300), (8, 25)]),
            at: at(2),
        });
        assert_eq!(h.requests_per_second(7), Some(100.0));
        assert_eq!(h.requests_per_second(8), Some(20.0));
        for s in 3..=9 {
            h.push(Reading {
                status: status(&[(7, 300 + 50 * (s - 2))]),
                at: at(s),
            });
        }
        // Over the last 5 s: 50 a second, whatever came before.
        assert_eq!(h.requests_per_second(7), Some(50.0));
        assert!(h.readings.len() <= 7, "{}", h.readings.len());
        assert_eq!(h.requests_per_second(8), None, "gone");
    }
}
