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
            tcp_nodelay: true,
            http2_keep_alive: None,
            health_check: None,
        }
    }
}

impl HttpOptions {
    /// Applies `REGIMENT_HEADER_READ_TIMEOUT`, `REGIMENT_IDLE_GRACE` and
    /// `REGIMENT_HTTP2_KEEP_ALIVE`, then checks the values.
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
            if let Some(v) = env_value("REGIMENT_HTTP2_KEEP_ALIVE") {
                self.http2_keep_alive = parse_keep_alive(&v)?;
            }
        }
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

/// `REGIMENT_HTTP2_KEEP_ALIVE`: a duration above zero, or `off`.
fn parse_keep_alive(v: &str) -> Result<Option<Duration>, Error> {
    if v.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    humantime::parse_duration(v.trim())
        .ok()
        .filter(|d| !d.is_zero())
        .map(Some)
        .ok_or_else(|| Error::InvalidOption {
            option: "REGIMENT_HTTP2_KEEP_ALIVE",
            value: v.to_owned(),
            expected: "a duration above zero such as 30s, or off",
        })
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_duration(name: &'static str) -> Result<Option<Duration>, Error> {
    let Some(v) = env_value(name) else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http2_keep_alive_is_a_duration_or_off() {
        assert_eq!(
            parse_keep_alive("30s").unwrap(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_keep_alive(" Off ").unwrap(), None);
        for bad in ["0s", "often", "-1s"] {
            let e = parse_keep_alive(bad).unwrap_err().to_string();
            assert!(
                e.contains("REGIMENT_HTTP2_KEEP_ALIVE") && e.contains("or off"),
                "{bad}: {e}"
            );
        }
        let zero = HttpOptions {
            http2_keep_alive: Some(Duration::ZERO),
            ..HttpOptions::default()
        };
        let e = zero.finish(false).unwrap_err().to_string();
        assert!(e.contains("http2_keep_alive"), "{e}");
    }
}
