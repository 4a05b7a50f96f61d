//! Upgrades (HTTP/1 `Upgrade:`, HTTP/2 extended CONNECT) across the drain: taken before it,
//! they are the application's; asked for during it, they are refused.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{AnswerAfterDrain, CEILING, GET, echo_upgrades, h2_connection, read_head, start};
use crate::http_options::HttpOptions;

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
