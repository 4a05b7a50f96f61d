//! The admin listener ([`crate::Builder::admin_bind`]): HTTP/1.1 served by the master itself,
//! for scrapers and probes. `GET /metrics` (the Prometheus text format), `/status` (the
//! [`Status`] as JSON), `/reports` (the [`crate::KillReport`]s kept, oldest first, as a JSON
//! array), `/healthz` (200 while the supervisor loop turns) and `/readyz` (200
//! while at least one worker is ready and its heartbeats are not overdue, see
//! [`heartbeat_overdue`]). `HEAD` as `GET`; other methods 405; other paths 404.
//!
//! Bound at build, close-on-exec (workers never inherit it), served only while
//! [`crate::Supervisor::run`] runs. Clients are untrusted: headers must arrive within
//! [`HEADER_READ_TIMEOUT`], at most [`connections::MAX_CONNECTIONS`] are served at once, each
//! for a bounded time and with a write deadline, and whatever a client sends, or leaves
//! unread, ends at worst its own connection (see [`connections`]).

mod connections;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use self::connections::{Bounded, Connections, MAX_LIFETIME};
use super::Handle;
use super::metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, STALLED_AFTER};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::events::{Status, WorkerState};
use crate::listen::{self, Listener};

/// How long a client has to send a request's headers (and an idle connection may wait).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Heartbeat intervals a ready worker may stay silent before `/readyz` counts it out, when no
/// heartbeat timeout is configured; see [`heartbeat_overdue`].
const OVERDUE_INTERVALS: u32 = 3;

/// The admin listener, bound, and what its probes judge by.
#[derive(Debug)]
pub(super) struct Admin {
    pub(super) listener: Listener,
    heartbeat_overdue: Duration,
}

impl Admin {
    /// The admin listener an old master handed over, served under `config`'s options.
    pub(super) fn handed_over(listener: Listener, config: &Config) -> Self {
        Admin {
            listener,
            heartbeat_overdue: heartbeat_overdue(
                config.spawn.heartbeat_interval,
                config.policy.heartbeat_timeout,
            ),
        }
    }
}

/// Binds the admin listener, if one is configured; an error names the option that gave it.
pub(super) fn bind(config: &Config) -> Result<Option<Admin>> {
    let Some(admin) = &config.listen.admin else {
        return Ok(None);
    };
    let listener = listen::bind(&admin.addr).map_err(|source| Error::Bind {
        option: admin.option,
        addr: admin.addr.to_string(),
        source,
    })?;
    Ok(Some(Admin {
        listener,
        heartbeat_overdue: heartbeat_overdue(
            config.spawn.heartbeat_interval,
            config.policy.heartbeat_timeout,
        ),
    }))
}

/// How long a ready worker may go unheard before `/readyz` no longer counts it: its runtime is
/// blocked, and connections the kernel queues for it wait. The heartbeat timeout when one is
/// configured (the silence after which the master replaces it: one tolerance for both), else
/// [`OVERDUE_INTERVALS`] heartbeat intervals: one late heartbeat (a loaded machine, a long poll
/// of the worker's runtime) must not flap a probe, three in a row mean the runtime runs no
/// timers; at the default 1 s interval, 3 s, under a probe's usual period.
pub(super) fn heartbeat_overdue(interval: Duration, timeout: Option<Duration>) -> Duration {
    timeout.unwrap_or(interval * OVERDUE_INTERVALS)
}

/// Serves the admin endpoints until dropped (its connections with it).
pub(super) async fn serve(admin: Admin, handle: Handle) {
    let Admin {
        listener,
        heartbeat_overdue,
    } = admin;
    let acceptor = match Acceptor::new(listener) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "the admin listener cannot be served");
            return;
        }
    };
    let mut connections = Connections::new();
    loop {
        let accepted = match &acceptor {
            Acceptor::Tcp(l) => l.accept().await.map(|(s, _)| Stream::Tcp(s)),
            Acceptor::Unix(l) => l.accept().await.map(|(s, _)| Stream::Unix(s)),
        };
        match accepted {
            Ok(Stream::Tcp(s)) => {
                connections
                    .serve(s, |io| connection(io, handle.clone(), heartbeat_overdue))
                    .await
            }
            Ok(Stream::Unix(s)) => {
                connections
                    .serve(s, |io| connection(io, handle.clone(), heartbeat_overdue))
                    .await
            }
            Err(e) => {
                // Out of descriptors, most likely: no hot loop while it lasts.
                tracing::warn!(error = %e, "admin listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

enum Acceptor {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl Acceptor {
    fn new(listener: Listener) -> std::io::Result<Self> {
        Ok(match listener {
            Listener::Tcp(l) => Acceptor::Tcp(tokio::net::TcpListener::from_std(l)?),
            Listener::Unix(l) => Acceptor::Unix(tokio::net::UnixListener::from_std(l)?),
        })
    }
}

/// Serves one connection; at the end of its lifetime, it finishes the answer it is writing, if
/// any, and closes.
async fn connection<S>(stream: Bounded<S>, handle: Handle, heartbeat_overdue: Duration)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let response = respond(
            request.method(),
            request.uri().path(),
            &handle,
            heartbeat_overdue,
        );
        async move { Ok::<_, Infallible>(response) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        () = tokio::time::sleep(MAX_LIFETIME) => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "admin connection ended with an error");
    }
}

const PATHS: [&str; 5] = ["/metrics", "/status", "/reports", "/healthz", "/readyz"];

fn respond(
    method: &Method,
    path: &str,
    handle: &Handle,
    heartbeat_overdue: Duration,
) -> Response<Full<Bytes>> {
    if !PATHS.contains(&path) {
        return text(
            StatusCode::NOT_FOUND,
            format!("not found; the admin endpoints are {}\n", PATHS.join(", ")),
        );
    }
    if method != Method::GET && method != Method::HEAD {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: GET or HEAD\n".into(),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match path {
        "/metrics" => with_type(
            StatusCode::OK,
            METRICS_CONTENT_TYPE,
            handle.metrics.encode(handle.status()),
        ),
        "/status" => json(&handle.status()),
        "/reports" => json(&handle.kill_reports()),
        "/healthz" => {
            let since = handle.metrics.since_loop_turned();
            if since < STALLED_AFTER {
                text(StatusCode::OK, "ok\n".into())
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "the supervisor loop has not turned for {} s\n",
                        since.as_secs()
                    ),
                )
            }
        }
        _ => readiness(&handle.status(), heartbeat_overdue),
    }
}

/// 200 while at least one worker is ready and heard from within `heartbeat_overdue`: a rolling
/// restart keeps the old workers serving until their replacements are, so it never fails a
/// readiness probe, but workers whose runtimes are all blocked serve nothing.
fn readiness(status: &Status, heartbeat_overdue: Duration) -> Response<Full<Bytes>> {
    let (code, line) = judge_readiness(status, heartbeat_overdue);
    text(code, line)
}

/// The status code and the line of [`readiness`].
fn judge_readiness(status: &Status, heartbeat_overdue: Duration) -> (StatusCode, String) {
    let overdue_ms = u64::try_from(heartbeat_overdue.as_millis()).unwrap_or(u64::MAX);
    let (mut ready, mut silent) = (0, 0);
    for w in status
        .workers
        .iter()
        .filter(|w| w.state == WorkerState::Ready)
    {
        if w.silent_ms.is_some_and(|ms| ms > overdue_ms) {
            silent += 1;
        } else {
            ready += 1;
        }
    }
    let mut line = format!("{ready} of {} workers ready", status.workers_wanted);
    if silent > 0 {
        line.push_str(&format!(
            " ({silent} more silent for over {overdue_ms} ms: heartbeat overdue)"
        ));
    }
    line.push('\n');
    if ready > 0 {
        (StatusCode::OK, line)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, line)
    }
}

fn json(value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_string(value) {
        Ok(json) => with_type(StatusCode::OK, "application/json", json + "\n"),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    with_type(status, "text/plain; charset=utf-8", body)
}

fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EnvOverrides;
    use crate::events::WorkerStatus;

    fn handle() -> Handle {
        crate::Builder::new()
            .workers(2)
            .env_overrides(EnvOverrides::Ignore)
            .build()
            .expect("builds")
            .handle()
    }

    #[test]
    fn paths_and_methods() {
        let h = handle();
        let overdue = Duration::from_secs(3);
        let status = |m: Method, p: &str| respond(&m, p, &h, overdue).status();
        assert_eq!(status(Method::GET, "/metrics"), StatusCode::OK);
        assert_eq!(status(Method::HEAD, "/status"), StatusCode::OK);
        assert_eq!(status(Method::GET, "/reports"), StatusCode::OK);
        assert_eq!(status(Method::GET, "/nope"), StatusCode::NOT_FOUND);
        assert_eq!(status(Method::POST, "/nope"), StatusCode::NOT_FOUND);
        let post = respond(&Method::POST, "/metrics", &h, overdue);
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[ALLOW], "GET, HEAD");
        let metrics = respond(&Method::GET, "/metrics", &h, overdue);
        assert_eq!(
            metrics.headers()[CONTENT_TYPE],
            "text/plain; version=0.0.4; charset=utf-8"
        );
    }

    /// A client that keeps asking, one request every few seconds, still has its connection
    /// closed at the end of its lifetime: the answer in flight is finished first.
    #[tokio::test(start_paused = true)]
    async fn a_connection_closes_at_the_end_of_its_lifetime() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let (ours, mut client) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(connection(
            connections::bounded(ours),
            handle(),
            Duration::from_secs(3),
        ));
        let started = tokio::time::Instant::now();
        let mut answers = 0;
        let closed = loop {
            let sent = client
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
                .await;
            let mut answer = vec![0; 4096];
            let n = client.read(&mut answer).await.unwrap_or(0);
            if sent.is_err() || n == 0 {
                break true;
            }
            assert!(answer.starts_with(b"HTTP/1.1 200"));
            answers += 1;
            if String::from_utf8_lossy(&answer[..n]).contains("connection: close") {
                let mut rest = Vec::new();
                client.read_to_end(&mut rest).await.unwrap();
                break true;
            }
            assert!(started.elapsed() < MAX_LIFETIME * 2, "still open");
            tokio::time::sleep(Duration::from_secs(5)).await;
        };
        assert!(closed && answers >= 10, "{answers} answers");
        assert!(started.elapsed() >= MAX_LIFETIME);
        served.await.unwrap();
    }

    #[test]
    fn ready_while_one_worker_is_and_its_heartbeats_are_not_overdue() {
        let worker = |state, silent_ms| WorkerStatus {
            slot: 0,
            pid: 1,
            generation: 1,
            state,
            age_ms: 0,
            rss: 0,
            requests: 0,
            in_flight: 0,
            responses_5xx: 0,
            failures: 0,
            latency_p50_us: None,
            latency_p99_us: None,
            silent_ms,
            replace_reason: None,
            program: None,
            memory: None,
        };
        let overdue = Duration::from_millis(3000);
        let mut status = Status {
            workers_wanted: 2,
            ..Status::default()
        };
        let probe = |status: &Status| judge_readiness(status, overdue);
        assert_eq!(probe(&status).0, StatusCode::SERVICE_UNAVAILABLE);
        status.workers = vec![
            worker(WorkerState::Starting, None),
            worker(WorkerState::Draining, Some(0)),
        ];
        assert_eq!(probe(&status).0, StatusCode::SERVICE_UNAVAILABLE);
        // Silent longer than allowed: its runtime is blocked, it serves nothing.
        status.workers.push(worker(WorkerState::Ready, Some(3001)));
        let (code, body) = probe(&status);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            "0 of 2 workers ready (1 more silent for over 3000 ms: heartbeat overdue)\n"
        );
        // Heard from just in time, or never sending heartbeats at all (not judged).
        status.workers.push(worker(WorkerState::Ready, Some(3000)));
        assert_eq!(probe(&status).0, StatusCode::OK);
        status.workers.truncate(3);
        status.workers.push(worker(WorkerState::Ready, None));
        assert_eq!(probe(&status).0, StatusCode::OK);
    }

    #[test]
    fn a_heartbeat_is_overdue_after_the_timeout_or_three_intervals() {
        let second = Duration::from_secs(1);
        assert_eq!(heartbeat_overdue(second, None), 3 * second);
        assert_eq!(heartbeat_overdue(second, Some(10 * second)), 10 * second);
    }
}
