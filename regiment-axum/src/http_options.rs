//! The HTTP options of the worker's server, their defaults and environment overrides.

use std::time::Duration;

use regiment_core::plumbing::EnvVar;

use crate::Error;

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
    pub health_check: Option<crate::HealthCheck>,
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
        if let Some(v) = EnvVar::read("REGIMENT_HEADER_READ_TIMEOUT") {
            self.header_read_timeout = v.duration()?;
        }
        if let Some(v) = EnvVar::read("REGIMENT_IDLE_GRACE") {
            self.idle_grace = v.duration()?;
        }
        if let Some(v) = EnvVar::read("REGIMENT_HTTP2_KEEP_ALIVE") {
            self.http2_keep_alive = v.duration_or_off()?;
        }
        Ok(self)
    }

    /// Checks the values, whichever way they were set.
    pub(crate) fn checked(self) -> Result<Self, Error> {
        let keep_alive = self.http2_keep_alive.map(|d| ("http2_keep_alive", d));
        for (option, d) in [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_grace", self.idle_grace),
        ]
        .into_iter()
        .chain(keep_alive)
        {
            if d.is_zero() {
                return Err(Error::InvalidOption {
                    option,
                    value: "0s".into(),
                    expected: "a duration above zero, such as 1s or 500ms",
                });
            }
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
}
