//! The criterion that the unit tests, the allocation test and the benchmark of the `Criterion`
//! trait use, written once: `src/criterion/tests.rs`, `tests/no_allocation.rs` and
//! `benches/layers.rs` include this file with `#[path]` (it is no test target of its own:
//! cargo builds only the files directly in `tests/`). `Criterion` and `Verdict` come from the
//! module that includes it, which is the crate itself in the unit tests.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::{Criterion, Verdict};

/// Replaces after `LIMIT` consecutive 5xx responses; any other status starts the streak over.
/// The limit is a constant, as a hand-written criterion's would be, so the benchmark measures
/// no extra load.
#[derive(Default)]
pub(super) struct ServerErrors<const LIMIT: u32>(AtomicU32);

impl<const LIMIT: u32> Criterion for ServerErrors<LIMIT> {
    fn on_response<B>(&self, res: &http::Response<B>) -> Verdict {
        if !res.status().is_server_error() {
            self.0.store(0, Relaxed);
            return Verdict::Keep;
        }
        let n = self.0.fetch_add(1, Relaxed) + 1;
        Verdict::replace_if(n >= LIMIT, || {
            format!("server-errors: {n} consecutive 5xx >= {LIMIT}")
        })
    }
}
