//! The HTTP options of the worker's server, their defaults and environment overrides.

use std::time::Duration;

use regiment_core::MAX_DURATION;
use regiment_core::plumbing::{PassedOnVariable, RegimentVar};

use crate::{Error, HealthCheck};

/// Default [`crate::Server::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`crate::Server::idle_grace`].
pub const DEFAULT_IDLE_GRACE: Duration = Duration::from_secs(1);

/// Whether Nagle's algorithm runs on accepted TCP connections ([`crate::Server::nagle`]): with
/// it, the kernel holds a small write back until the previous one is acknowledged.
///
/// ```no_run
/// use regiment_axum::Nagle;
/// # async fn run(app: axum::Router) -> Result<(), regiment_axum::Error> {
/// // Fewer, fuller packets for a bulk-transfer service that tolerates the added latency.
/// regiment_axum::Server::new().nagle(Nagle::On).serve(app).await
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Nagle {
    /// Small answers leave at once: `TCP_NODELAY` is set (the default).
    #[default]
    Off,
    /// The kernel's default: small writes may wait to be sent together.
    On,
}

#[derive(Debug, Clone)]
pub(crate) struct HttpOptions {
    pub header_read_timeout: Duration,
    pub idle_grace: Duration,
    pub nagle: Nagle,
    /// The HTTP/2 keep-alive PING interval; `None`: no PINGs.
    pub http2_keep_alive: Option<Duration>,
    /// What a new worker must pass before it reports ready.
    pub health_check: Option<HealthCheck>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_grace: DEFAULT_IDLE_GRACE,
            nagle: Nagle::Off,
            http2_keep_alive: None,
            health_check: None,
        }
    }
}

impl HttpOptions {
    /// Applies `REGIMENT_HEADER_READ_TIMEOUT`, `REGIMENT_IDLE_GRACE` and
    /// `REGIMENT_HTTP2_KEEP_ALIVE`. The master and its workers run this on the same
    /// environment, so a bad value stops the master before any worker starts.
    pub(crate) fn with_env(mut self) -> Result<Self, Error> {
        // regiment-core's parsers: the bounds and errors of every REGIMENT_* duration.
        // Read as `PassedOnVariable`s: the master hands those on to its workers, whatever
        // `worker_env` says.
        if let Some(v) = RegimentVar::read(PassedOnVariable::HEADER_READ_TIMEOUT) {
            self.header_read_timeout = v.duration()?;
        }
        if let Some(v) = RegimentVar::read(PassedOnVariable::IDLE_GRACE) {
            self.idle_grace = v.duration()?;
        }
        if let Some(v) = RegimentVar::read(PassedOnVariable::HTTP2_KEEP_ALIVE) {
            self.http2_keep_alive = v.duration_or_off()?;
        }
        Ok(self)
    }

    /// Checks the values, whichever way they were set: each duration above zero (the health
    /// check's may be zero: one attempt) and at most [`MAX_DURATION`], as regiment-core bounds
    /// its own. The worker adds them to the clock: `Duration::MAX` would panic there, once a
    /// connection or a health check comes, rather than here, before any worker starts.
    pub(crate) fn checked(self) -> Result<Self, Error> {
        let keep_alive = self.http2_keep_alive.map(|d| ("http2_keep_alive", d));
        for (option, d) in [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_grace", self.idle_grace),
        ]
        .into_iter()
        .chain(keep_alive)
        {
            if d.is_zero() || d > MAX_DURATION {
                return Err(Error::InvalidOption {
                    option,
                    value: format!("{d:?}"),
                    expected: "a duration above zero and at most 365 days, such as 1s or 500ms",
                });
            }
        }
        if let Some(within) = self.health_check.as_ref().map(HealthCheck::time_allowed)
            && within > MAX_DURATION
        {
            return Err(Error::InvalidOption {
                option: "health_check",
                value: format!("within({within:?})"),
                expected: "a time of at most 365 days, such as 10s",
            });
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_keep_alive_from_the_builder_is_refused() {
        let zero = HttpOptions {
            http2_keep_alive: Some(Duration::ZERO),
            ..HttpOptions::default()
        };
        let e = zero.checked().unwrap_err().to_string();
        assert!(e.contains("http2_keep_alive"), "{e}");
    }

    /// A setting of one option.
    type Set = fn(crate::Server) -> crate::Server;

    /// This test process is not a worker: `serve` checks the HTTP options before anything
    /// starts, and refuses a duration the worker could not add to its clock, under the option's
    /// name, rather than a worker panicking at its first connection.
    #[tokio::test]
    async fn durations_that_would_overflow_are_refused_naming_the_option() {
        let overflowing: [(&str, Set); 4] = [
            ("header_read_timeout", |s| {
                s.header_read_timeout(Duration::MAX)
            }),
            ("idle_grace", |s| s.idle_grace(Duration::MAX)),
            ("http2_keep_alive", |s| s.http2_keep_alive(Duration::MAX)),
            ("health_check", |s| {
                s.health_check(crate::HealthCheck::path("/").within(Duration::MAX))
            }),
        ];
        for (option, set) in overflowing {
            let server = set(crate::Server::new().workers(1).bind("127.0.0.1:0"))
                .env_overrides(regiment_core::EnvOverrides::Ignore)
                .on_master(|_| panic!("refused options start nothing"));
            let err = server.serve(axum::Router::new()).await.unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(&format!("`{option}`")) && text.contains("at most 365 days"),
                "{option}: {text}"
            );
        }
        // The bound itself is accepted.
        let at_bound = HttpOptions {
            header_read_timeout: MAX_DURATION,
            ..HttpOptions::default()
        };
        assert!(at_bound.checked().is_ok());
    }
}
