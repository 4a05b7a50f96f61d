//! The [`Builder`] option of the reports taken before a kill.

use std::time::Duration;

use super::builder::Builder;

impl Builder {
    /// How long the master may take to read a report of a worker before the SIGKILL it
    /// decided (its start timeout or drain deadline passed): each thread's name, state, kernel
    /// wait channel and system call, from `/proc` (see [`crate::KillReport`]). The kill comes
    /// once the report is read, and at most this much later than decided, whatever the report
    /// has by then (default 1 s; zero: no report, the kill at once). `REGIMENT_KILL_REPORT_TIMEOUT`
    /// overrides it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use regiment_core::{Builder, EnvOverrides};
    /// // A worker that holds a lot of memory: a quarter of a second is enough for /proc.
    /// let builder = Builder::new().kill_report_timeout(Duration::from_millis(250));
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
