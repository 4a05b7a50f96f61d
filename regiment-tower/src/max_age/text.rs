//! Durations as reasons show them.

use std::time::Duration;

/// A running time with its two leading units: `6h 0m`, `12m 5s`, `42s`, `350ms`.
pub(super) fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        3600.. => format!("{}h {}m", s / 3600, s % 3600 / 60),
        60.. => format!("{}m {}s", s / 60, s % 60),
        1.. => format!("{s}s"),
        0 => format!("{}ms", d.as_millis()),
    }
}

/// A duration without its zero units: `6h`, `6h 12m`, `1m 30s`, `0s`.
pub(super) fn compact(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 && d.subsec_millis() > 0 {
        return format!("{}ms", d.subsec_millis());
    }
    let parts: Vec<String> = [(s / 3600, "h"), (s % 3600 / 60, "m"), (s % 60, "s")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}
