//! A run's figures as a table for people.

use std::fmt::Write as _;

use crate::load::Measured;

/// Milliseconds with two decimals, from microseconds.
pub fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// The summary of one run: throughput, outcomes by class, latency quantiles.
///
/// ```
/// # use regiment_bench::load::Measured;
/// fn show(m: &Measured) {
///     print!("{}", regiment_bench::report::summary(m));
/// }
/// ```
pub fn summary(m: &Measured) -> String {
    let c = &m.counts;
    let l = &m.latency;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:.0} requests/s over {:.1} s: {} ok, {} failed (non-2xx {}, connect {}, reset/eof {}, timeout {}), {} retried",
        m.throughput,
        m.seconds,
        c.ok,
        m.failures,
        c.non_2xx,
        c.connect_error,
        c.reset,
        c.timeout,
        c.retried
    );
    let _ = writeln!(
        s,
        "latency ms: p50 {} p90 {} p99 {} p99.9 {} max {}",
        ms(l.p50_us),
        ms(l.p90_us),
        ms(l.p99_us),
        ms(l.p999_us),
        ms(l.max_us)
    );
    s
}

/// The per-second timeline of a run, one line per second.
pub fn timeline(m: &Measured) -> String {
    let mut s = String::from("second        ok  failed retried  p99 ms\n");
    for t in &m.timeline {
        let _ = writeln!(
            s,
            "{:>6} {:>9} {:>7} {:>7} {:>7}",
            t.second,
            t.ok,
            t.failures,
            t.retried,
            ms(t.p99_us)
        );
    }
    s
}
