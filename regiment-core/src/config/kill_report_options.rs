//! The [`Builder`] option of the reports taken before a kill.

use std::time::Duration;

use super::builder::Builder;

impl Builder {
    /// How long the master may take to gather a report of a worker before the SIGKILL it
    /// decided (its start timeout or drain deadline passed, or it fell silent): what the worker
    /// answers when asked (its requests in flight, its threads' stacks; asked once `/proc` is
    /// read, it is to answer by seven eighths of this) and what `/proc` tells of each thread (see [`crate::KillReport`]). The
    /// kill comes once the report is in, and at most this much later than decided, whatever
    /// the report has by then (default 1 s; zero: no report, the kill at once).
    /// `REGIMENT_KILL_REPORT_TIMEOUT` overrides it. A worker names its frames with its binary's
    /// debug info, read the first time: a binary with full debug info (a debug build) may need
    /// more than a second for names rather than addresses.
    ///
    /// ```
    /// use std::time::Duration;
    /// use regiment_core::{Builder, EnvOverrides};
    /// // A debug build, whose debug info takes a while to read: stacks with names.
    /// let builder = Builder::new().kill_report_timeout(Duration::from_secs(5));
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// // Off: kills at once, without a report.
    /// let builder = Builder::new().kill_report_timeout(Duration::ZERO);
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// ```
    pub fn kill_report_timeout(mut self, d: Duration) -> Self {
        self.kill_report_timeout = d;
        self
    }
}
