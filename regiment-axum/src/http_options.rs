//! The HTTP options of the worker's server, their defaults and environment overrides.

use std::time::Duration;

use crate::Error;

/// Default [`crate::Server::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`crate::Server::idle_grace`].
pub const DEFAULT_IDLE_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub(crate) struct HttpOptions {
    pub header_read_timeout: Duration,
    pub idle_grace: Duration,
    pub tcp_nodelay: bool,
    /// What a new worker must pass before it reports ready.
    pub health_check: Option<crate::HealthCheck>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_grace: DEFAULT_IDLE_GRACE,
            tcp_nodelay: true,
            health_check: None,
        }
    }
}

impl HttpOptions {
    /// Applies `REGIMENT_HEADER_READ_TIMEOUT` and `REGIMENT_IDLE_GRACE`, then checks the values.
    /// The master and its workers run this on the same environment, so a bad value stops the
    /// master before any worker starts.
    pub(crate) fn finish(mut self, env_overrides: bool) -> Result<Self, Error> {
        if env_overrides {
            if let Some(d) = env_duration("REGIMENT_HEADER_READ_TIMEOUT")? {
                self.header_read_timeout = d;
            }
            if let Some(d) = env_duration("REGIMENT_IDLE_GRACE")? {
                self.idle_grace = d;
            }
        }
        for (option, d) in [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_grace", self.idle_grace),
        ] {
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

fn env_duration(name: &'static str) -> Result<Option<Duration>, Error> {
    let Some(v) = std::env::var(name).ok().filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    humantime::parse_duration(v.trim())
        .map(Some)
        .map_err(|_| Error::InvalidOption {
            option: name,
            value: v,
            expected: "a duration such as 10s or 500ms",
        })
}
