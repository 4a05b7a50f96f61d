//! What one generator thread saw, and the summary of a whole run.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// How one request ended. Every request ends in exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A 2xx status with its whole body.
    Ok,
    /// A whole response with a status outside 2xx.
    NotSuccess,
    /// The connection could not be opened (or the HTTP/2 handshake failed).
    ConnectError,
    /// The connection was reset or closed before the whole response.
    Reset,
    /// No whole response within the request timeout.
    Timeout,
}

/// Requests by outcome, over a run or one second of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// 2xx answers with their whole body.
    pub ok: u64,
    /// Whole answers with a status outside 2xx.
    pub non_2xx: u64,
    /// Connections that could not be opened.
    pub connect_error: u64,
    /// Requests whose connection was reset or closed before the whole answer.
    pub reset: u64,
    /// Requests without a whole answer within the request timeout.
    pub timeout: u64,
    /// Requests sent again on a new connection because the reused one was closed before any
    /// byte of the answer, which a client may do for idempotent requests (RFC 9112 §9.3.1)
    /// and every HTTP client does; for HTTP/2, requests the server refused unprocessed
    /// (GOAWAY, REFUSED_STREAM). Not failures: each is counted again by its retry's outcome.
    pub retried: u64,
}

impl Counts {
    /// Requests that failed: every class but `ok` and `retried`.
    pub fn failures(&self) -> u64 {
        self.non_2xx + self.connect_error + self.reset + self.timeout
    }

    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::NotSuccess => self.non_2xx += 1,
            Outcome::ConnectError => self.connect_error += 1,
            Outcome::Reset => self.reset += 1,
            Outcome::Timeout => self.timeout += 1,
        }
    }

    fn merge(&mut self, other: &Counts) {
        self.ok += other.ok;
        self.non_2xx += other.non_2xx;
        self.connect_error += other.connect_error;
        self.reset += other.reset;
        self.timeout += other.timeout;
        self.retried += other.retried;
    }
}

/// Latencies in microseconds, from 1 µs to an hour, three significant digits.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// The recording of one generator thread: counts and latencies, overall and per second.
#[derive(Debug)]
pub(crate) struct Recorder {
    start: Instant,
    counts: Counts,
    /// Latency of every answered request (ok or not), in µs.
    latency: Histogram<u64>,
    seconds: Vec<SecondRecord>,
}

#[derive(Debug)]
struct SecondRecord {
    counts: Counts,
    latency: Histogram<u64>,
}

impl Recorder {
    pub(crate) fn new(start: Instant) -> Self {
        Recorder {
            start,
            counts: Counts::default(),
            latency: latency_histogram(),
            seconds: Vec::new(),
        }
    }

    fn second(&mut self, at: Instant) -> &mut SecondRecord {
        let index = at.saturating_duration_since(self.start).as_secs() as usize;
        while self.seconds.len() <= index {
            self.seconds.push(SecondRecord {
                counts: Counts::default(),
                latency: latency_histogram(),
            });
        }
        &mut self.seconds[index]
    }

    /// Records a request that started at `started` and ended now, in `outcome`.
    pub(crate) fn record(&mut self, started: Instant, outcome: Outcome) {
        let now = Instant::now();
        self.counts.add(outcome);
        let answered = matches!(outcome, Outcome::Ok | Outcome::NotSuccess);
        let micros = now.duration_since(started).as_micros().max(1) as u64;
        if answered {
            self.latency.saturating_record(micros);
        }
        let second = self.second(now);
        second.counts.add(outcome);
        if answered {
            second.latency.saturating_record(micros);
        }
    }

    /// Records a request sent again (see [`Counts::retried`]).
    pub(crate) fn retried(&mut self) {
        self.counts.retried += 1;
        self.second(Instant::now()).counts.retried += 1;
    }

    /// Forgets everything recorded so far, and starts the timeline again at `start` (the end
    /// of the warm-up).
    pub(crate) fn restart(&mut self, start: Instant) {
        *self = Recorder::new(start);
    }

    pub(crate) fn merge(&mut self, other: &Recorder) {
        self.counts.merge(&other.counts);
        self.latency
            .add(&other.latency)
            .expect("same histogram bounds");
        for (i, s) in other.seconds.iter().enumerate() {
            while self.seconds.len() <= i {
                self.seconds.push(SecondRecord {
                    counts: Counts::default(),
                    latency: latency_histogram(),
                });
            }
            self.seconds[i].counts.merge(&s.counts);
            self.seconds[i]
                .latency
                .add(&s.latency)
                .expect("same histogram bounds");
        }
    }

    /// The summary of this recording over `elapsed`.
    pub(crate) fn summary(&self, elapsed: Duration) -> Measured {
        let secs = elapsed.as_secs_f64().max(1e-9);
        Measured {
            seconds: secs,
            counts: self.counts,
            failures: self.counts.failures(),
            throughput: self.counts.ok as f64 / secs,
            latency: Latency::of(&self.latency),
            timeline: self
                .seconds
                .iter()
                .enumerate()
                .map(|(i, s)| Second {
                    second: i as u64,
                    ok: s.counts.ok,
                    failures: s.counts.failures(),
                    retried: s.counts.retried,
                    p99_us: s.latency.value_at_quantile(0.99),
                })
                .collect(),
        }
    }
}

/// Latency quantiles of answered requests, in microseconds (0 when nothing was answered).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Slowest.
    pub max_us: u64,
    /// Mean.
    pub mean_us: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: h.mean(),
        }
    }
}

/// One second of a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Seconds since the end of the warm-up.
    pub second: u64,
    /// Requests answered 2xx in that second.
    pub ok: u64,
    /// Requests that failed in that second.
    pub failures: u64,
    /// Requests sent again in that second.
    pub retried: u64,
    /// 99th percentile latency of the answers of that second.
    pub p99_us: u64,
}

/// What a run measured, after its warm-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Length of the measured part of the run.
    pub seconds: f64,
    /// Requests by outcome.
    pub counts: Counts,
    /// Failed requests (see [`Counts::failures`]).
    pub failures: u64,
    /// 2xx answers per second.
    pub throughput: f64,
    /// Latency of answered requests.
    pub latency: Latency,
    /// Per second.
    pub timeline: Vec<Second>,
}
