//! Request latency in fixed buckets, shared by both sides of the IPC channel: a worker counts
//! each request's time in the bucket it falls in (one relaxed increment, no lock, no
//! allocation), sends the counts of each heartbeat's interval, and the master estimates the
//! interval's p50 and p99 from them.
//!
//! The buckets double from 128 µs to about 16.8 s (bucket `i` holds the times below
//! `128 µs << i`), and a last one holds everything slower: [`BUCKETS`] in all. Doubling
//! buckets find a bucket with one shift and one count of leading zeros, and the quantiles are
//! interpolated inside their bucket, as Prometheus's `histogram_quantile` does: within a
//! factor of two of the truth at worst, much closer for latencies spread over a bucket.
//! A build that changes the buckets changes [`BUCKETS`] too: a master reads the counts of a
//! worker only if it has as many as its own buckets.

use std::sync::atomic::{AtomicU64, Ordering};

/// How many buckets a histogram has: 18 doubling ones from 128 µs and one for the rest.
pub(crate) const BUCKETS: usize = 19;

/// The upper bound of the first bucket, in microseconds, as a shift (128 µs).
const FIRST_BOUND_SHIFT: u32 = 7;

/// Now, in nanoseconds on the system's monotonic clock (`CLOCK_MONOTONIC`, which
/// `std::time::Instant` reads on Linux), as a plain number: a request's start and end are
/// subtracted without `Instant`'s arithmetic, which costs the request path more than the read.
/// Not tokio's clock: a request takes the time it takes, whether or not a test paused tokio's.
#[inline]
#[allow(unsafe_code)]
pub(crate) fn now_ns() -> u64 {
    // libc's own, through the vDSO: nix's wrapper costs the request path as much again, and
    // rustix's, which reads the vDSO itself, crashes under valgrind.
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux, and
    // on a failure `t` is left at zero.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

/// The bucket a request of `elapsed` falls in.
#[cfg(test)]
pub(crate) fn bucket_of(elapsed: std::time::Duration) -> usize {
    let micros = elapsed
        .as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(elapsed.subsec_micros()));
    bucket_of_us(micros)
}

/// The bucket a request of `micros` microseconds falls in.
#[inline]
fn bucket_of_us(micros: u64) -> usize {
    let index = (u64::BITS - (micros >> FIRST_BOUND_SHIFT).leading_zeros()) as usize;
    index.min(BUCKETS - 1)
}

/// The lower and upper bounds of bucket `i`, in microseconds; the last bucket has no upper
/// bound, and is given its lower bound for both.
fn bounds_us(i: usize) -> (u64, u64) {
    let upper = |i: usize| 1u64 << (FIRST_BOUND_SHIFT as usize + i);
    match i {
        0 => (0, upper(0)),
        i if i >= BUCKETS - 1 => (upper(BUCKETS - 2), upper(BUCKETS - 2)),
        i => (upper(i - 1), upper(i)),
    }
}

/// The counters of one process: how many requests fell in each bucket since it started.
#[derive(Debug)]
pub(crate) struct Histogram {
    counts: [AtomicU64; BUCKETS],
}

impl Histogram {
    pub(crate) const fn new() -> Self {
        Self {
            counts: [const { AtomicU64::new(0) }; BUCKETS],
        }
    }

    /// Counts one request that took `elapsed_ns` nanoseconds.
    #[inline]
    pub(crate) fn record_ns(&self, elapsed_ns: u64) {
        self.counts[bucket_of_us(elapsed_ns / 1_000)].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts as they are now.
    pub(crate) fn counts(&self) -> [u64; BUCKETS] {
        std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed))
    }
}

/// The counts of `now` since `earlier`, bucket by bucket.
pub(crate) fn since(now: &[u64; BUCKETS], earlier: &[u64; BUCKETS]) -> [u64; BUCKETS] {
    std::array::from_fn(|i| now[i].saturating_sub(earlier[i]))
}

/// The median and 99th percentile of one interval, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quantiles {
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
}

/// Why the counts a worker sent cannot be read (a worker of a build with other buckets, or
/// one gone wrong).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a latency histogram of {0} buckets, where this build has {BUCKETS}")]
pub(crate) struct OtherBuckets(pub(crate) usize);

/// The p50 and p99 of an interval whose requests fell in `counts`; `None` if none did. Any
/// counts are taken (the sums saturate): a worker's figures are untrusted.
pub(crate) fn quantiles(counts: &[u64]) -> Result<Option<Quantiles>, OtherBuckets> {
    if counts.len() != BUCKETS {
        return Err(OtherBuckets(counts.len()));
    }
    let total: u128 = counts.iter().map(|&c| u128::from(c)).sum();
    if total == 0 {
        return Ok(None);
    }
    Ok(Some(Quantiles {
        p50_us: quantile(counts, total, 50),
        p99_us: quantile(counts, total, 99),
    }))
}

/// The `percent`th percentile of `total` requests, interpolated in its bucket.
fn quantile(counts: &[u64], total: u128, percent: u128) -> u64 {
    // The rank of the request sought, 1-based, rounded up: the p99 of 100 requests is the 99th.
    let rank = (total * percent).div_ceil(100).max(1);
    let mut below = 0u128;
    for (i, &count) in counts.iter().enumerate() {
        let count = u128::from(count);
        if count > 0 && below + count >= rank {
            let (lower, upper) = bounds_us(i);
            let into = (rank - below) as f64 / count as f64;
            return lower + ((upper - lower) as f64 * into) as u64;
        }
        below += count;
    }
    bounds_us(BUCKETS - 1).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_double_from_128_microseconds_to_the_last_one() {
        let us = Duration::from_micros;
        assert_eq!(bucket_of(Duration::ZERO), 0);
        assert_eq!(bucket_of(us(127)), 0);
        assert_eq!(bucket_of(us(128)), 1);
        assert_eq!(bucket_of(us(255)), 1);
        assert_eq!(bucket_of(us(256)), 2);
        assert_eq!(bucket_of(Duration::from_millis(1)), 3); // 1000 µs: 512..1024
        assert_eq!(bucket_of(us((128 << 17) - 1)), 17); // just under 16.8 s
        assert_eq!(bucket_of(us(128 << 17)), 18);
        assert_eq!(bucket_of(Duration::from_secs(3600)), BUCKETS - 1);
        assert_eq!(bucket_of(Duration::MAX), BUCKETS - 1);
        assert_eq!(bounds_us(0), (0, 128));
        assert_eq!(bounds_us(3), (512, 1024));
        assert_eq!(bounds_us(18), (128 << 17, 128 << 17));
    }

    #[test]
    fn a_histogram_counts_each_request_in_its_bucket() {
        let h = Histogram::new();
        h.record_ns(50_000);
        h.record_ns(60_000);
        h.record_ns(3_000_000);
        let before = h.counts();
        h.record_ns(3_000_000);
        let mut expected = [0; BUCKETS];
        expected[bucket_of(Duration::from_millis(3))] = 1;
        assert_eq!(since(&h.counts(), &before), expected);
        assert_eq!(before[0], 2);
    }

    #[test]
    fn quantiles_are_interpolated_in_their_bucket() {
        let mut counts = [0u64; BUCKETS];
        assert_eq!(quantiles(&counts), Ok(None), "no request: unknown");
        // 99 fast requests (under 128 µs) and one of 5 s.
        counts[0] = 99;
        counts[bucket_of(Duration::from_secs(5))] = 1;
        let q = quantiles(&counts).unwrap().unwrap();
        assert_eq!(q.p50_us, 64, "the 50th of 99 in 0..128 µs");
        assert_eq!(q.p99_us, 128, "the 99th is the last of the fast ones");
        counts[0] = 98;
        let q = quantiles(&counts).unwrap().unwrap();
        assert_eq!(
            q.p99_us, 8_388_608,
            "the slow one, at its bucket's upper bound"
        );
        // Everything past the last bound: its lower bound, the least it took.
        let mut slow = [0u64; BUCKETS];
        slow[BUCKETS - 1] = 3;
        assert_eq!(
            quantiles(&slow).unwrap().unwrap(),
            Quantiles {
                p50_us: 128 << 17,
                p99_us: 128 << 17
            }
        );
    }

    #[test]
    fn counts_of_other_buckets_or_absurd_counts_are_survived() {
        assert_eq!(quantiles(&[1, 2, 3]), Err(OtherBuckets(3)));
        assert_eq!(quantiles(&[0; BUCKETS + 1]), Err(OtherBuckets(BUCKETS + 1)));
        let absurd = [u64::MAX; BUCKETS];
        let q = quantiles(&absurd).unwrap().unwrap();
        assert!(q.p50_us <= q.p99_us);
    }
}
