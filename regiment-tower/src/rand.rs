//! A tiny PRNG for jitter and splay: enough to spread workers' limits, no dependency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// splitmix64 (Steele, Lea, Flood 2014): one multiply-xorshift round per draw.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform draw in `0..=max`. Seeded from the pid and the clock, so workers of one cluster
/// (distinct pids, started at distinct instants) draw distinct values; a process-wide counter
/// keeps successive draws in one process distinct too.
pub(crate) fn up_to(max: u64) -> u64 {
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    if max == 0 {
        return 0;
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seed = mix(u64::from(std::process::id()) << 32 ^ nanos)
        ^ mix(DRAWS.fetch_add(1, Ordering::Relaxed));
    let x = mix(seed);
    // Lemire's multiply-shift maps 64 random bits onto 0..=max without a modulo's bias toward
    // small values (worth it when max is close to a power of two).
    match max.checked_add(1) {
        Some(n) => ((u128::from(x) * u128::from(n)) >> 64) as u64,
        None => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_bounds_and_spread() {
        let draws: Vec<u64> = (0..1000).map(|_| up_to(9)).collect();
        assert!(draws.iter().all(|d| *d <= 9));
        // Every value of 0..=9 shows up in 1000 draws (missing one has probability ~1e-45).
        for v in 0..=9 {
            assert!(draws.contains(&v), "{v} never drawn");
        }
        assert_eq!(up_to(0), 0);
        let _ = up_to(u64::MAX);
    }
}
