//! Reports of what may repeat without end, thinned: the first [`FIRST`], then one in
//! [`EVERY`], each with its number, so that a flood shows in the log, and how large it is,
//! without filling the log. Used for a worker's invalid messages (counted per worker, by the
//! policy) and for the connections the control socket refuses (counted together).

use std::sync::atomic::{AtomicU64, Ordering};

/// Occurrences reported one by one before the reports are thinned.
pub(crate) const FIRST: u64 = 10;
/// Past [`FIRST`], one occurrence in this many is reported.
pub(crate) const EVERY: u64 = 1000;

/// Whether the `n`th occurrence (counted from 1) is reported.
pub(crate) fn reported(n: u64) -> bool {
    n <= FIRST || n.is_multiple_of(EVERY)
}

/// A count of occurrences shared by tasks.
#[derive(Debug, Default)]
pub(crate) struct Tally(AtomicU64);

impl Tally {
    /// Counts one occurrence more: its number, if it is to be reported.
    pub(crate) fn count(&self) -> Option<u64> {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        reported(n).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_ten_then_one_in_a_thousand() {
        let tally = Tally::default();
        let reported: Vec<u64> = (0..3500).filter_map(|_| tally.count()).collect();
        let mut expected: Vec<u64> = (1..=10).collect();
        expected.extend([1000, 2000, 3000]);
        assert_eq!(reported, expected);
    }
}
