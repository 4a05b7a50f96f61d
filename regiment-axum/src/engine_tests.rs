//! In-process tests of the engine (accept loops, connections, drain) on a real socket of
//! 127.0.0.1, without a master.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode, header};
use http_body_util::channel::Channel;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use regiment_core::listen::Listener;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::connection::{Shared, http_builder};
use crate::drain::Drain;
use crate::http_options::HttpOptions;

const CEILING: Duration = Duration::from_secs(20);

/// Serves `service` on an ephemeral port; returns the address and the drain state.
fn start<S, B>(service: S, options: HttpOptions) -> (SocketAddr, &'static Drain)
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<crate::BoxError>,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let drain = Drain::leak();
    let shared = Arc::new(Shared {
        http: http_builder(&options),
        service,
        options,
        drain,
        stats: None,
    });
    crate::accept::spawn_all(vec![Listener::Tcp(listener)], shared).unwrap();
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

/// [`echo_upgrades`], which answers requests marked `X-Answer-After-Drain` only once the drain
/// of `hold` started: an upgrade asked for before the drain and answered during it.
fn echo_upgrades_holding(
    hold: &'static AnswerAfterDrain,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<String>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    hyper::service::service_fn(move |mut req: Request<Incoming>| {
        if req.headers().contains_key("x-answer-after-drain") {
            req.extensions_mut().insert(hold);
        }
        echo_upgrades(req)
    })
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

const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n";

#[tokio::test]
async fn an_upgrade_made_before_the_drain_keeps_its_connection_until_the_app_drops_it() {
    let service = hyper::service::service_fn(echo_upgrades);
    let (addr, drain) = start(service, HttpOptions::default());
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut r = BufReader::new(stream);

    r.get_mut().write_all(UPGRADE).await.unwrap();
    let head = read_head(&mut r).await;
    assert!(head[0].contains("101"), "{head:?}");
    assert!(head.contains(&"connection: upgrade".to_owned()), "{head:?}");
    assert!(!head.contains(&"connection: close".to_owned()), "{head:?}");

    drain.start();
    r.get_mut().write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    tokio::time::timeout(CEILING, r.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"ping");
    // Well past the idle grace: the upgraded connection is the application's, still open.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(drain.open_connections(), 1);

    drop(r);
    tokio::time::timeout(CEILING, drain.all_closed())
        .await
        .expect("the drain ends once the upgraded connection is closed");
}

/// A keep-alive connection to `addr` after one answered `GET`.
async fn keep_alive_connection(addr: SocketAddr) -> BufReader<TcpStream> {
    let mut r = BufReader::new(TcpStream::connect(addr).await.unwrap());
    r.get_mut().write_all(GET).await.unwrap();
    let head = read_head(&mut r).await;
    assert!(head[0].contains("200"), "{head:?}");
    let mut body = [0u8; 2];
    r.read_exact(&mut body).await.unwrap();
    r
}

/// Reads `r` to its end; panics on a reset.
async fn read_to_fin(r: &mut BufReader<TcpStream>) -> Vec<u8> {
    let mut rest = Vec::new();
    tokio::time::timeout(CEILING, r.read_to_end(&mut rest))
        .await
        .expect("the connection ends within the ceiling")
        .expect("FIN, not RST");
    rest
}

#[tokio::test]
async fn an_upgrade_asked_for_during_the_drain_is_refused_with_503_and_connection_close() {
    let hold: &'static AnswerAfterDrain = Box::leak(Box::default());
    let (addr, drain) = start(echo_upgrades_holding(hold), HttpOptions::default());
    hold.drain.set(drain).unwrap();

    // Asked for before the drain, answered during it (the handler waits for the drain).
    let mut asked_before = BufReader::new(TcpStream::connect(addr).await.unwrap());
    let ask = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: echo\r\nX-Answer-After-Drain: 1\r\n\r\n";
    asked_before.get_mut().write_all(ask).await.unwrap();
    tokio::time::timeout(CEILING, hold.received.notified())
        .await
        .unwrap();
    let mut asked_during = keep_alive_connection(addr).await;
    let mut h2c = keep_alive_connection(addr).await;

    drain.start();
    asked_during.get_mut().write_all(UPGRADE).await.unwrap();
    let head = tokio::time::timeout(CEILING, read_head(&mut asked_during))
        .await
        .unwrap();
    assert!(head[0].contains("503"), "{head:?}");
    assert!(head.contains(&"connection: close".to_owned()), "{head:?}");
    assert!(head.contains(&"retry-after: 0".to_owned()), "{head:?}");
    assert!(head.contains(&"content-length: 0".to_owned()), "{head:?}");
    let rest = read_to_fin(&mut asked_during).await;
    assert!(rest.is_empty(), "nothing after the refusal: {rest:?}");

    // `Upgrade: h2c` asks for nothing an application does: an ordinary request, served.
    h2c.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n")
        .await
        .unwrap();
    let head = tokio::time::timeout(CEILING, read_head(&mut h2c))
        .await
        .unwrap();
    assert!(head[0].contains("200"), "{head:?}");
    assert!(head.contains(&"connection: close".to_owned()), "{head:?}");
    assert_eq!(read_to_fin(&mut h2c).await, b"ok");

    // The one asked for before the drain switches: the application's to close.
    let head = tokio::time::timeout(CEILING, read_head(&mut asked_before))
        .await
        .unwrap();
    assert!(head[0].contains("101"), "{head:?}");
    asked_before.get_mut().write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    asked_before.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping");

    drop((asked_before, asked_during, h2c));
    tokio::time::timeout(CEILING, drain.all_closed())
        .await
        .expect("no refused upgrade holds the drain");
}

/// An HTTP/2 connection to `addr` whose SETTINGS from the server have arrived (one request
/// answered): its sender and its connection task.
async fn h2_connection(
    addr: SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<String>,
    tokio::task::JoinHandle<Result<(), hyper::Error>>,
) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    let task = tokio::spawn(conn);
    let res = sender
        .send_request(Request::get("http://a/").body(String::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    (sender, task)
}

/// An extended CONNECT on a stream opened as the drain starts, before the connection's GOAWAY
/// (the drain flag is set, the connection not yet told).
#[tokio::test]
async fn an_http2_extended_connect_during_the_drain_is_refused_with_503() {
    let service = hyper::service::service_fn(echo_upgrades);
    let (addr, drain) = start(service, HttpOptions::default());
    let (mut sender, _task) = h2_connection(addr).await;

    drain.set_draining_flag();
    let mut connect = Request::connect("http://a/").body(String::new()).unwrap();
    connect
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let res = tokio::time::timeout(CEILING, sender.send_request(connect))
        .await
        .unwrap()
        .expect("an answer to the CONNECT");
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[header::RETRY_AFTER], "0");
    assert!(!res.headers().contains_key(header::CONNECTION));
    drop(res);
    drain.start();
    tokio::time::timeout(CEILING, drain.all_closed())
        .await
        .expect("the HTTP/2 connection ends after its GOAWAY");
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_read_timeout() {
    let service = hyper::service::service_fn(echo_upgrades);
    let options = HttpOptions {
        header_read_timeout: Duration::from_millis(300),
        ..HttpOptions::default()
    };
    let (addr, drain) = start(service, options);
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(CEILING, silent.read(&mut buf))
        .await
        .expect("the server closes a connection that never sends a request")
        .expect("with FIN, not RST");
    assert_eq!(n, 0);
    drop(silent);
    assert!(!drain.is_draining());
    tokio::time::timeout(CEILING, drain.all_closed())
        .await
        .unwrap();
}

/// Header read timeout of the idle tests, and how long their HTTP/2 client idles: five times
/// that. Real time: the deliberate idle is the behaviour under test.
const SHORT_HEADER_TIMEOUT: Duration = Duration::from_millis(200);
const IDLE: Duration = Duration::from_secs(1);

#[tokio::test]
async fn an_http2_connection_past_its_preface_may_stay_idle_past_the_header_read_timeout() {
    let service = hyper::service::service_fn(echo_upgrades);
    let options = HttpOptions {
        header_read_timeout: SHORT_HEADER_TIMEOUT,
        ..HttpOptions::default()
    };
    let (addr, drain) = start(service, options);
    let stream = TcpStream::connect(addr).await.unwrap();
    // The preface and SETTINGS go out with the handshake; no request yet.
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    let task = tokio::spawn(conn);
    tokio::time::sleep(IDLE).await;
    assert!(!task.is_finished(), "the idle HTTP/2 connection was closed");
    for _ in 0..3 {
        let res = tokio::time::timeout(
            CEILING,
            sender.send_request(Request::get("http://a/").body(String::new()).unwrap()),
        )
        .await
        .unwrap()
        .expect("served on the connection that idled");
        assert_eq!(res.status(), 200);
    }
    assert!(!task.is_finished());
    assert_eq!(drain.open_connections(), 1);
}

/// Writes `bytes` on a new connection to `addr`, then waits for the server to end it.
async fn end_after(addr: SocketAddr, bytes: &[u8]) -> usize {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(CEILING, stream.read_to_end(&mut rest))
        .await
        .expect("the server closes a connection that never completes the HTTP/2 preface")
        .expect("with FIN, not RST")
}

#[tokio::test]
async fn a_peer_that_never_completes_the_http2_preface_is_cut_by_the_header_read_timeout() {
    let service = hyper::service::service_fn(echo_upgrades);
    let options = HttpOptions {
        header_read_timeout: SHORT_HEADER_TIMEOUT,
        ..HttpOptions::default()
    };
    let (addr, drain) = start(service, options);
    // Half the magic; the whole magic without its SETTINGS frame.
    end_after(addr, b"PRI * HTTP/2.0").await;
    end_after(addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    assert!(!drain.is_draining());
    tokio::time::timeout(CEILING, drain.all_closed())
        .await
        .unwrap();
}

/// A peer that completed the preface and then says nothing, not even to a PING: keep-alive
/// closes it once a PING goes unanswered for 20 s (the clock is paused); a hyper client, which
/// answers PINGs, stays.
#[tokio::test(start_paused = true)]
async fn http2_keep_alive_closes_a_peer_that_does_not_answer_pings() {
    let service = hyper::service::service_fn(echo_upgrades);
    let options = HttpOptions {
        http2_keep_alive: Some(Duration::from_secs(5)),
        ..HttpOptions::default()
    };
    let (addr, drain) = start(service, options);
    let (mut sender, task) = h2_connection(addr).await;

    let mut mute = TcpStream::connect(addr).await.unwrap();
    mute.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let from = tokio::time::Instant::now();
    // Read (and ignore) what the server sends: its SETTINGS, PINGs, then the end.
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(120), mute.read_to_end(&mut rest)).await;
    assert!(end.is_ok(), "the mute peer was kept for 2 minutes");
    let after = from.elapsed();
    assert!(
        after >= crate::connection::HTTP2_KEEP_ALIVE_TIMEOUT,
        "closed after {after:?}, before a PING could go unanswered for 20 s"
    );
    assert!(
        rest.windows(9).any(|h| h[3] == 0x6 && h[0..3] == [0, 0, 8]),
        "no PING was sent"
    );

    // The live client answered every PING meanwhile.
    assert!(!task.is_finished(), "a peer answering PINGs was closed");
    let res = sender
        .send_request(Request::get("http://a/").body(String::new()).unwrap())
        .await
        .expect("served");
    assert_eq!(res.status(), 200);
    assert_eq!(drain.open_connections(), 1);
}

#[tokio::test]
async fn answers_get_connection_close_only_once_draining() {
    let service = hyper::service::service_fn(echo_upgrades);
    let (addr, drain) = start(service, HttpOptions::default());
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut r = BufReader::new(stream);
    let mut body = [0u8; 2];

    r.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut r).await;
    assert!(!head.contains(&"connection: close".to_owned()), "{head:?}");
    r.read_exact(&mut body).await.unwrap();

    drain.start();
    r.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut r).await;
    assert!(head.contains(&"connection: close".to_owned()), "{head:?}");
    r.read_exact(&mut body).await.unwrap();
    let mut rest = Vec::new();
    let n = tokio::time::timeout(CEILING, r.read_to_end(&mut rest))
        .await
        .unwrap()
        .expect("FIN, not RST");
    assert_eq!(n, 0);
    drop(r);
    tokio::time::timeout(CEILING, drain.all_closed())
        .await
        .unwrap();
}

/// `/stream` answers "a" at once and "b" 1.5 s later; anything else answers "ok".
async fn streams(
    req: Request<Incoming>,
) -> Result<Response<Channel<hyper::body::Bytes>>, Infallible> {
    let (mut tx, body) = Channel::new(2);
    let streaming = req.uri().path() == "/stream";
    tokio::spawn(async move {
        if streaming {
            let _ = tx.send_data("a".into()).await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let _ = tx.send_data("b".into()).await;
        } else {
            let _ = tx.send_data("ok".into()).await;
        }
    });
    Ok(Response::new(body))
}

/// Reads a chunked body to its end; returns its data.
async fn read_chunked(r: &mut BufReader<TcpStream>) -> String {
    let mut data = String::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size).await.unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        let mut chunk = vec![0u8; n + 2];
        r.read_exact(&mut chunk).await.unwrap();
        if n == 0 {
            return data;
        }
        data.push_str(std::str::from_utf8(&chunk[..n]).unwrap());
    }
}

#[tokio::test]
async fn a_request_right_after_an_answer_streaming_across_the_drain_start_is_served() {
    let service = hyper::service::service_fn(streams);
    let (addr, drain) = start(service, HttpOptions::default());
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut r = BufReader::new(stream);

    // The head goes out before the drain, so it cannot say `Connection: close`.
    r.get_mut()
        .write_all(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut r).await;
    assert!(head[0].contains("200"), "{head:?}");
    assert!(!head.contains(&"connection: close".to_owned()), "{head:?}");
    drain.start();
    // The body ends 1.5 s later, past the 1 s idle grace; the client then sends at once.
    let body = tokio::time::timeout(CEILING, read_chunked(&mut r))
        .await
        .unwrap();
    assert_eq!(body, "ab");
    r.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let head = tokio::time::timeout(CEILING, read_head(&mut r))
        .await
        .unwrap();
    assert!(
        head[0].contains("200"),
        "the next request was served: {head:?}"
    );
    assert!(head.contains(&"connection: close".to_owned()), "{head:?}");
    assert_eq!(read_chunked(&mut r).await, "ok");
    let mut rest = Vec::new();
    assert_eq!(r.read_to_end(&mut rest).await.expect("FIN, not RST"), 0);
    drop(r);
    tokio::time::timeout(CEILING, drain.all_closed())
        .await
        .unwrap();
}

/// The status line and headers of a response head, lower-cased, or why there was none.
async fn try_read_head(r: &mut BufReader<TcpStream>) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        match r.read_line(&mut line).await {
            Ok(0) => return Err(format!("closed (FIN) after {lines:?}")),
            Ok(_) => {}
            Err(e) => return Err(format!("{e} after {lines:?}")),
        }
        let line = line.trim_end().to_ascii_lowercase();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";

/// The clock is paused. The client writes its next request 1 ms before the idle grace ends,
/// then moves the clock by that 1 ms and yields: the runtime then collects the socket's
/// readiness and fires the grace's timer in one pass of its driver, so the connection wakes
/// with both ready. It must read and serve the request rather than close as idle. Were the
/// grace looked at first, with nothing read yet, that would be a coin toss per round: many
/// rounds make a lost request certain to show.
#[tokio::test(start_paused = true)]
async fn a_request_sent_as_the_idle_grace_ends_is_answered_with_connection_close() {
    for round in 0..32 {
        let service = hyper::service::service_fn(echo_upgrades);
        let options = HttpOptions::default();
        let grace = options.idle_grace;
        let (addr, drain) = start(service, options);
        let mut r = BufReader::new(TcpStream::connect(addr).await.unwrap());
        let mut body = [0u8; 2];
        r.get_mut().write_all(GET).await.unwrap();
        let head = read_head(&mut r).await;
        assert!(head[0].contains("200"), "{head:?}");
        assert!(!head.contains(&"connection: close".to_owned()), "{head:?}");
        r.read_exact(&mut body).await.unwrap();

        drain.start();
        // The connection arms its grace as it sees the drain, at this same (paused) instant.
        tokio::time::sleep(grace - Duration::from_millis(1)).await;
        r.get_mut().write_all(GET).await.unwrap();
        tokio::time::advance(Duration::from_millis(1)).await;
        let head = tokio::time::timeout(CEILING, try_read_head(&mut r))
            .await
            .expect("an answer within the ceiling")
            .unwrap_or_else(|e| panic!("round {round}: the request was lost: {e}"));
        assert!(head[0].contains("200"), "round {round}: {head:?}");
        assert!(
            head.contains(&"connection: close".to_owned()),
            "round {round}: {head:?}"
        );
        r.read_exact(&mut body).await.unwrap();
        assert_eq!(&body, b"ok");
        let mut rest = Vec::new();
        let n = tokio::time::timeout(CEILING, r.read_to_end(&mut rest))
            .await
            .unwrap()
            .expect("FIN, not RST");
        assert_eq!(n, 0, "round {round}");
        drop(r);
        tokio::time::timeout(CEILING, drain.all_closed())
            .await
            .unwrap();
    }
}

/// A header begun during the drain is not idleness: the grace passes and the connection stays
/// open, until hyper's header read timeout (which runs from the moment the connection went
/// idle) closes it. The clock is paused, so the bounds are exact.
#[tokio::test(start_paused = true)]
async fn a_header_begun_during_the_drain_is_cut_by_the_header_timeout_not_the_grace() {
    let service = hyper::service::service_fn(echo_upgrades);
    let options = HttpOptions {
        header_read_timeout: Duration::from_secs(6),
        idle_grace: Duration::from_secs(1),
        ..HttpOptions::default()
    };
    let (addr, drain) = start(service, options);
    let mut r = BufReader::new(TcpStream::connect(addr).await.unwrap());
    r.get_mut().write_all(GET).await.unwrap();
    read_head(&mut r).await;
    let mut body = [0u8; 2];
    r.read_exact(&mut body).await.unwrap();
    let idle_since = tokio::time::Instant::now();

    drain.start();
    r.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\nX-Half: ")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let n = tokio::time::timeout(CEILING, r.read_to_end(&mut rest))
        .await
        .expect("the header read timeout closes the connection")
        .expect("FIN, not RST");
    let open_for = idle_since.elapsed();
    assert!(
        open_for >= Duration::from_secs(6),
        "closed {open_for:?} after going idle: the grace (1 s) cut a header begun (header read \
         timeout 6 s); read {n} bytes: {rest:?}"
    );
    assert!(
        open_for < Duration::from_secs(6) + Duration::from_secs(2),
        "{open_for:?}"
    );
    drop(r);
    tokio::time::timeout(CEILING, drain.all_closed())
        .await
        .unwrap();
}
