//! In-process tests of the engine (accept loops, connections, drain) on a real socket of
//! 127.0.0.1, without a master; by subject: upgrades, the timeouts of idle and silent
//! connections, the HTTP/1 drain, apps that are not always ready, and the requests counted
//! as failed. Here, what they share: a server, a service, and the
//! client's reads.

mod app_readiness;
mod failures;
mod http1_drain;
mod in_flight;
mod timeouts;
mod upgrades;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use regiment_core::listen;
use regiment_core::worker::Stats;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::connection::{Engine, http_builder};
use crate::drain::Drain;
use crate::http_options::HttpOptions;

const CEILING: Duration = Duration::from_secs(20);

/// Serves `service` on an ephemeral port; returns the address and the drain state.
fn start<S, B>(service: S, options: HttpOptions) -> (SocketAddr, &'static Drain)
where
    S: crate::HttpService<B>,
    B: crate::ResponseBody,
{
    start_counting(service, options, None)
}

/// [`start`], counting requests in `stats` as a worker counts them for its heartbeats.
fn start_counting<S, B>(
    service: S,
    options: HttpOptions,
    stats: Option<&'static Stats>,
) -> (SocketAddr, &'static Drain)
where
    S: crate::HttpService<B>,
    B: crate::ResponseBody,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let drain = Drain::leak();
    let engine = Arc::new(Engine {
        http: http_builder(&options),
        service,
        options,
        drain,
        stats,
    });
    // The accept loop runs until the test's runtime ends; a drain does not stop it here.
    crate::accept::spawn_all(vec![listen::Listener::Tcp(listener)], engine)
        .unwrap()
        .detach_all();
    (addr, drain)
}

/// Echoes the bytes of an upgraded connection (`Upgrade: echo`, or an HTTP/2 `CONNECT`);
/// answers "ok" otherwise. With `X-Answer-After-Drain`, answers only once the drain started.
async fn echo_upgrades(mut req: Request<Incoming>) -> Result<Response<String>, Infallible> {
    let connect = req.method() == http::Method::CONNECT;
    if req
        .headers()
        .get(header::UPGRADE)
        .is_none_or(|v| v != "echo")
        && !connect
    {
        return Ok(Response::new("ok".into()));
    }
    if let Some(hold) = req.extensions().get::<&'static AnswerAfterDrain>() {
        hold.received.notify_one();
        hold.drain.get().expect("set").started().await;
    }
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut io = TokioIo::new(upgraded);
        let mut buf = [0u8; 64];
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    if connect {
        return Ok(Response::new(String::new()));
    }
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "echo")
        .body(String::new())
        .unwrap())
}

/// Holds the answer to an upgrade until the drain started.
#[derive(Default)]
struct AnswerAfterDrain {
    drain: std::sync::OnceLock<&'static Drain>,
    /// Notified when such a request reached the service.
    received: tokio::sync::Notify,
}

/// Reads a response head; returns its lines, lower-cased.
async fn read_head(r: &mut BufReader<TcpStream>) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = r
            .read_line(&mut line)
            .await
            .expect("a response head, not a reset");
        assert!(n > 0, "the connection was closed before a response head");
        let line = line.trim_end().to_ascii_lowercase();
        if line.is_empty() {
            return lines;
        }
        lines.push(line);
    }
}

/// A client's HTTP/2 connection: its sender and its connection task.
type H2Client = (
    hyper::client::conn::http2::SendRequest<String>,
    tokio::task::JoinHandle<Result<(), hyper::Error>>,
);

/// An HTTP/2 connection to `addr` whose preface and SETTINGS went out; no request yet.
async fn h2_handshake(addr: SocketAddr) -> H2Client {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    (sender, tokio::spawn(conn))
}

/// An HTTP/2 connection to `addr` whose SETTINGS from the server have arrived (one request
/// answered).
async fn h2_connection(addr: SocketAddr) -> H2Client {
    let (mut sender, task) = h2_handshake(addr).await;
    let res = sender
        .send_request(Request::get("http://a/").body(String::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    (sender, task)
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
