//! The health check a new worker must pass before it reports ready: a request to a path of its
//! own app, sent in-process over an in-memory connection (the listener is shared by every
//! worker, so a request to its address could be answered by another one), or a closure. A
//! worker that does not pass it within the time allowed exits before ready, which the master
//! counts as a failed start: a build whose health check fails never replaces a good worker,
//! and a rollout of it is aborted.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{HttpService, ResponseBody};

/// How long a health check is retried by default.
pub const DEFAULT_HEALTH_CHECK_WITHIN: Duration = Duration::from_secs(10);

type CheckFn = dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync;

/// What a new worker must pass before it counts as ready, given to
/// [`crate::Server::health_check`]. Retried every 100 ms until it passes or its time is up
/// (10 s by default); then the worker exits, a failed start.
///
/// ```
/// use std::time::Duration;
/// use regiment_axum::HealthCheck;
/// // `GET /healthz` on the worker's own app must answer 2xx within 20 s of its start.
/// let check = HealthCheck::path("/healthz").within(Duration::from_secs(20));
/// // Or any async check: a database ping, a warm cache.
/// let check = HealthCheck::with(|| async { Ok::<(), String>(()) });
/// # drop(check);
/// ```
#[derive(Clone)]
pub struct HealthCheck {
    kind: Kind,
    within: Duration,
}

#[derive(Clone)]
enum Kind {
    Path(String),
    With(Arc<CheckFn>),
}

impl std::fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Path(p) => p.as_str(),
            Kind::With(_) => "<closure>",
        };
        f.debug_struct("HealthCheck")
            .field("check", &kind)
            .field("within", &self.within)
            .finish()
    }
}

impl HealthCheck {
    /// `GET path` on the worker's own app must answer 2xx.
    pub fn path(path: impl Into<String>) -> Self {
        Self {
            kind: Kind::Path(path.into()),
            within: DEFAULT_HEALTH_CHECK_WITHIN,
        }
    }

    /// `check` must return `Ok`; an `Err` says why not.
    pub fn with<F, Fut>(check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            kind: Kind::With(Arc::new(move || Box::pin(check()))),
            within: DEFAULT_HEALTH_CHECK_WITHIN,
        }
    }

    /// How long the check is retried before the worker gives up (default 10 s).
    pub fn within(mut self, d: Duration) -> Self {
        self.within = d;
        self
    }

    /// How long the check is retried ([`HealthCheck::within`]).
    pub(crate) fn time_allowed(&self) -> Duration {
        self.within
    }

    /// Runs the check until it passes, or returns the last reason it did not.
    pub(crate) async fn pass<S, B>(&self, service: &S) -> Result<(), String>
    where
        S: HttpService<B>,
        B: ResponseBody,
    {
        let deadline = tokio::time::Instant::now() + self.within;
        loop {
            // Each attempt is bounded too: a check that never answers fails in time, with its
            // own reason rather than the master's start timeout.
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let attempt = async {
                match &self.kind {
                    Kind::Path(path) => get(service, path).await,
                    Kind::With(check) => check().await,
                }
            };
            let outcome = tokio::time::timeout(left.max(RETRY), attempt)
                .await
                .unwrap_or_else(|_| Err("no answer in time".to_string()));
            match outcome {
                Ok(()) => return Ok(()),
                Err(why) if tokio::time::Instant::now() + RETRY >= deadline => {
                    return Err(format!("health check failed for {:?}: {why}", self.within));
                }
                Err(_) => tokio::time::sleep(RETRY).await,
            }
        }
    }
}

const RETRY: Duration = Duration::from_millis(100);

/// `GET path` through the app, over an in-memory HTTP/1.1 connection; `Ok` for a 2xx.
async fn get<S, B>(service: &S, path: &str) -> Result<(), String>
where
    S: HttpService<B>,
    B: ResponseBody,
{
    let (mut client, server) = tokio::io::duplex(16 * 1024);
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(server), service.clone());
    let serving = tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    client
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    // Bounded by the caller's deadline.
    let read = client.read_to_end(&mut answer).await;
    serving.abort();
    read.map_err(|e| e.to_string())?;
    let status_line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {:?}", status_line.trim()))?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("GET {path} answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get as route_get;
    use hyper_util::service::TowerToHyperService;

    #[tokio::test]
    async fn a_path_that_answers_2xx_passes_and_another_fails_with_its_status() {
        let app = TowerToHyperService::new(
            Router::new()
                .route("/healthz", route_get(|| async { "ok" }))
                .route(
                    "/sick",
                    route_get(|| async { (http::StatusCode::SERVICE_UNAVAILABLE, "no") }),
                ),
        );
        assert_eq!(HealthCheck::path("/healthz").pass(&app).await, Ok(()));
        let err = HealthCheck::path("/sick")
            .within(Duration::from_millis(300))
            .pass(&app)
            .await
            .unwrap_err();
        assert!(err.contains("GET /sick answered 503"), "{err}");
    }

    #[tokio::test]
    async fn a_check_is_retried_until_it_passes() {
        let tries = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = tries.clone();
        let check = HealthCheck::with(move || {
            let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                if n < 2 {
                    Err("warming up".to_string())
                } else {
                    Ok(())
                }
            }
        });
        let app = TowerToHyperService::new(Router::new());
        assert_eq!(check.pass(&app).await, Ok(()));
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
