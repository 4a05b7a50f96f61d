//! Requests that end without a complete response are counted for the heartbeats, beside the
//! 5xx answers: a handler that panics (in `call`, in its future, in its response body), a
//! service that fails, a response body that fails. A panic ends the task that polled it (the
//! HTTP/1 connection, or the HTTP/2 stream) without a response, and the worker serves on.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use regiment_core::worker::Stats;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{CEILING, GET, h2_connection, read_head, start_counting};
use crate::http_options::HttpOptions;

/// What the app does, by path: `/panic` panics in its answer, `/panic-in-call` in `call`,
/// `/panic-in-body` and `/failing-body` while the body is sent, `/error` returns an error,
/// `/500` answers 500, `/500-failing-body` answers 500 with a body that fails; anything else
/// answers "ok".
#[derive(Clone)]
struct Misbehaving;

type Answer = Pin<Box<dyn Future<Output = Result<Response<Sent>, std::io::Error>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Misbehaving {
    type Response = Response<Sent>;
    type Error = std::io::Error;
    type Future = Answer;

    fn call(&self, req: Request<Incoming>) -> Answer {
        let path = req.uri().path().to_owned();
        if path == "/panic-in-call" {
            panic!("a bug in call");
        }
        Box::pin(async move {
            let body = match path.as_str() {
                "/panic" => panic!("a bug in the handler"),
                "/error" => return Err(std::io::Error::other("the service failed")),
                "/panic-in-body" => Sent::PanicAfterFirstChunk(false),
                "/failing-body" => Sent::FailAfterFirstChunk(false),
                "/500-failing-body" => {
                    let mut res = Response::new(Sent::FailAfterFirstChunk(false));
                    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    return Ok(res);
                }
                "/500" => {
                    let mut res = Response::new(Sent::Full(Full::new(Bytes::new())));
                    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    return Ok(res);
                }
                _ => Sent::Full(Full::new(Bytes::from_static(b"ok"))),
            };
            Ok(Response::new(body))
        })
    }
}

/// A response body: whole, or one that sends a first chunk and then panics or fails.
enum Sent {
    Full(Full<Bytes>),
    PanicAfterFirstChunk(bool),
    FailAfterFirstChunk(bool),
}

impl Body for Sent {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let first = Some(Ok(Frame::data(Bytes::from_static(b"first chunk"))));
        match self.get_mut() {
            Sent::Full(body) => Pin::new(body).poll_frame(cx).map_err(|e| match e {}),
            Sent::PanicAfterFirstChunk(sent) | Sent::FailAfterFirstChunk(sent) if !*sent => {
                *sent = true;
                Poll::Ready(first)
            }
            Sent::PanicAfterFirstChunk(_) => panic!("a bug in the response body"),
            Sent::FailAfterFirstChunk(_) => {
                Poll::Ready(Some(Err(std::io::Error::other("the body failed"))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Sent::Full(body) if body.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Sent::Full(body) => body.size_hint(),
            _ => SizeHint::default(),
        }
    }
}

/// (requests, 5xx answers, failures, in flight) once nothing is in flight any more.
async fn settled(stats: &Stats) -> (u64, u64, u64, u64) {
    tokio::time::timeout(CEILING, async {
        while stats.in_flight() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("every request ends");
    (
        stats.requests(),
        stats.responses_5xx(),
        stats.failures(),
        stats.in_flight(),
    )
}

/// Sends `GET path` on a new connection; what came back before the connection closed.
async fn get(addr: std::net::SocketAddr, path: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    // A reset is an answer too: the connection ended.
    let _ = tokio::time::timeout(CEILING, stream.read_to_end(&mut got))
        .await
        .expect("the connection ends");
    got
}

#[tokio::test]
async fn each_way_a_request_can_fail_counts_once_and_the_worker_serves_on() {
    let stats = regiment_core::plumbing::new_stats();
    let (addr, _) = start_counting(Misbehaving, HttpOptions::default(), Some(stats));
    for path in [
        "/panic",
        "/panic-in-call",
        "/error",
        "/panic-in-body",
        "/failing-body",
    ] {
        let before = stats.failures();
        let got = get(addr, path).await;
        let got = String::from_utf8_lossy(&got);
        // Nothing, or a head and a first chunk (as hyper had flushed them): never the chunked
        // body's end.
        assert!(
            got.is_empty() || (got.starts_with("HTTP/1.1 200") && !got.ends_with("0\r\n\r\n")),
            "{path}: a complete response: {got:?}"
        );
        let (_, _, failures, _) = settled(stats).await;
        assert_eq!(failures, before + 1, "{path}: counted once");
    }
    // The worker serves on; an answer, even a 500, is no failure.
    assert!(String::from_utf8_lossy(&get(addr, "/").await).starts_with("HTTP/1.1 200"));
    assert!(String::from_utf8_lossy(&get(addr, "/500").await).starts_with("HTTP/1.1 500"));
    assert_eq!(settled(stats).await, (7, 1, 5, 0));
    // A 500 whose body then fails is one failed request, not two.
    let _ = get(addr, "/500-failing-body").await;
    assert_eq!(settled(stats).await, (8, 2, 5, 0));
}

#[tokio::test]
async fn a_panic_during_the_drain_counts_too() {
    let stats = regiment_core::plumbing::new_stats();
    let (addr, drain) = start_counting(Misbehaving, HttpOptions::default(), Some(stats));
    drain.start();
    for path in ["/panic-in-call", "/panic"] {
        let before = stats.failures();
        let got = get(addr, path).await;
        assert!(got.is_empty(), "{path}: {}", String::from_utf8_lossy(&got));
        let (_, _, failures, _) = settled(stats).await;
        assert_eq!(failures, before + 1, "{path}: counted once");
    }
}

#[tokio::test]
async fn a_keep_alive_connection_counts_only_the_request_that_panicked() {
    let stats = regiment_core::plumbing::new_stats();
    let (addr, _) = start_counting(Misbehaving, HttpOptions::default(), Some(stats));
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut r = BufReader::new(stream);
    for _ in 0..3 {
        r.get_mut().write_all(GET).await.unwrap();
        assert_eq!(read_head(&mut r).await[0], "http/1.1 200 ok");
        let mut body = [0u8; 2];
        r.read_exact(&mut body).await.unwrap();
    }
    r.get_mut()
        .write_all(b"GET /panic HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(CEILING, r.read_to_end(&mut rest))
        .await
        .expect("the connection ends");
    assert!(rest.is_empty(), "no response to the request that panicked");
    assert_eq!(settled(stats).await, (4, 0, 1, 0));
}

#[tokio::test]
async fn an_http2_stream_that_panics_counts_once_and_its_connection_serves_on() {
    let stats = regiment_core::plumbing::new_stats();
    let (addr, _) = start_counting(Misbehaving, HttpOptions::default(), Some(stats));
    let (mut sender, _task) = h2_connection(addr).await;
    let panicked = sender
        .send_request(Request::get("http://a/panic").body(String::new()).unwrap())
        .await;
    assert!(panicked.is_err(), "the stream is reset: {panicked:?}");
    let res = sender
        .send_request(Request::get("http://a/").body(String::new()).unwrap())
        .await
        .expect("the connection serves on");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    // The connection's first request, the one that panicked, the one after.
    assert_eq!(settled(stats).await, (3, 0, 1, 0));
}
