//! The [`Builder`] options of rolling restarts: how a deploy is judged (canary, settle time,
//! failure limit) and how long it may take.

use std::time::Duration;

use super::builder::Builder;

impl Builder {
    /// How long the last new worker of a rolling restart must serve before the rollout
    /// completes (default 5 s; zero: at once). New workers that crash before then count as
    /// failures of the rollout, so that a build that dies soon after it is ready never becomes
    /// the good program.
    ///
    /// ```
    /// use std::time::Duration;
    /// use regiment_core::{Builder, EnvOverrides};
    /// // This service's fatal bugs show within a minute: only then is a deploy done.
    /// let builder = Builder::new().rollout_settle(Duration::from_secs(60));
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// ```
    pub fn rollout_settle(mut self, d: Duration) -> Self {
        self.rollout_settle = d;
        self
    }

    /// How long a rolling restart may take before it is aborted (the good generation stays,
    /// [`crate::Handle::rolling_restart_and_wait`] answers `Aborted` with a reason naming this
    /// option). By default it is derived when each rollout starts, from the number of workers
    /// then: one start timeout for each wave of `max_surge` replacements (a canary's workers are
    /// a wave of their own), as many again as [`Builder::rollout_failure_limit`] (failed starts
    /// that do not abort are retried), the longest backoff (a slot may still back off from an
    /// earlier failure), the canary's window and the settle time. With the defaults and 8
    /// workers that is (4 + 3) × 30 s + 30 s + 5 s = 4 min 5 s: a healthy rollout whose every
    /// worker is as slow to start as [`Builder::start_timeout`] allows still ends in time, and a
    /// stuck one ends within minutes instead of leaving a deploy script (and systemd's
    /// `reloading`) waiting forever. `REGIMENT_ROLLOUT_TIMEOUT` overrides it. A time no rollout
    /// could meet, not longer than the canary's window and the settle time together, is
    /// refused at build.
    ///
    /// ```
    /// use std::time::Duration;
    /// use regiment_core::{Builder, EnvOverrides};
    /// // A deploy pipeline gives up after 10 minutes: so does the master.
    /// let builder = Builder::new().rollout_timeout(Duration::from_secs(600));
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// // Zero would abort every rollout as it starts: refused; so is a time shorter than the
    /// // settle time every rollout waits out (5 s by default).
    /// let builder = Builder::new().rollout_timeout(Duration::ZERO);
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_err());
    /// let builder = Builder::new().rollout_timeout(Duration::from_secs(3));
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_err());
    /// ```
    pub fn rollout_timeout(mut self, d: Duration) -> Self {
        self.rollout_timeout = Some(d);
        self
    }

    /// Consecutive failed starts of new workers after which a rolling restart is aborted.
    ///
    /// ```
    /// use regiment_core::{Builder, EnvOverrides};
    /// // Workers of this service are slow to start and sometimes flaky: allow 5 failures.
    /// let builder = Builder::new().rollout_failure_limit(5);
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// // A limit of 0 would abort every deploy before it starts: refused.
    /// let builder = Builder::new().rollout_failure_limit(0);
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_err());
    /// ```
    pub fn rollout_failure_limit(mut self, n: u32) -> Self {
        self.rollout_failures = n;
        self
    }

    /// Rolling restarts start with a canary, judged on its failure ratio (5xx answers and
    /// requests that got none) before the other workers are replaced (off by default). See
    /// [`crate::Canary`].
    ///
    /// ```
    /// use regiment_core::{Builder, Canary, EnvOverrides};
    /// let builder = Builder::new().workers(4).canary(Canary::new());
    /// assert!(builder.env_overrides(EnvOverrides::Ignore).build().is_ok());
    /// ```
    pub fn canary(mut self, canary: crate::Canary) -> Self {
        self.canary = Some(canary);
        self
    }
}
