//! The timeouts that close idle or silent connections outside a drain: the header read
//! timeout (first request, HTTP/2 preface) and HTTP/2 keep-alive; and the idle HTTP/2
//! connection they leave alone.

use std::net::SocketAddr;
use std::time::Duration;

use http::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{CEILING, GET, echo_upgrades, h2_connection, h2_handshake, read_head, start};
use crate::drain::Drain;
use crate::http_options::HttpOptions;

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
    // The preface and SETTINGS go out with the handshake; no request yet.
    let (mut sender, task) = h2_handshake(addr).await;
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

/// Header read timeout of the keep-alive tests below, whose clock is paused: the bounds are
/// exact.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends one request on a new connection to `addr` and reads its answer ("ok"); returns the
/// connection and the moment the answer was read.
async fn one_answer(addr: SocketAddr) -> (BufReader<TcpStream>, tokio::time::Instant) {
    let mut r = BufReader::new(TcpStream::connect(addr).await.unwrap());
    r.get_mut().write_all(GET).await.unwrap();
    read_head(&mut r).await;
    let mut body = [0u8; 2];
    r.read_exact(&mut body).await.unwrap();
    (r, tokio::time::Instant::now())
}

fn keep_alive_options() -> HttpOptions {
    HttpOptions {
        header_read_timeout: KEEP_ALIVE_TIMEOUT,
        ..HttpOptions::default()
    }
}

/// Reads until the server closes `r` (FIN, no answer), and checks that this was one header
/// read timeout after `since`; then that the drain counts no connection left.
async fn assert_closed_one_timeout_after(
    mut r: BufReader<TcpStream>,
    since: tokio::time::Instant,
    drain: &Drain,
) {
    let mut rest = Vec::new();
    let n = tokio::time::timeout(CEILING, r.read_to_end(&mut rest))
        .await
        .expect("the header read timeout closes the connection")
        .expect("FIN, not RST");
    assert_eq!(n, 0, "no answer to an idle or half-sent request: {rest:?}");
    let open_for = since.elapsed();
    assert!(
        open_for >= KEEP_ALIVE_TIMEOUT,
        "closed {open_for:?} after the last answer: before the header read timeout"
    );
    assert!(
        open_for < KEEP_ALIVE_TIMEOUT + Duration::from_secs(1),
        "{open_for:?}"
    );
    drop(r);
    tokio::time::timeout(CEILING, drain.all_closed())
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_is_closed_one_timeout_after_its_last_answer() {
    let (addr, drain) = start(
        hyper::service::service_fn(echo_upgrades),
        keep_alive_options(),
    );
    // The connection's timer was set when it opened; the wait that counts starts at the answer.
    let (mut r, _) = one_answer(addr).await;
    tokio::time::sleep(KEEP_ALIVE_TIMEOUT / 2).await;
    r.get_mut().write_all(GET).await.unwrap();
    read_head(&mut r).await;
    let mut body = [0u8; 2];
    r.read_exact(&mut body).await.unwrap();
    let answered = tokio::time::Instant::now();
    assert_closed_one_timeout_after(r, answered, drain).await;
}

#[tokio::test(start_paused = true)]
async fn a_request_header_that_stalls_after_an_answer_is_cut_by_the_header_read_timeout() {
    let (addr, drain) = start(
        hyper::service::service_fn(echo_upgrades),
        keep_alive_options(),
    );
    let (mut r, answered) = one_answer(addr).await;
    tokio::time::sleep(KEEP_ALIVE_TIMEOUT / 2).await;
    r.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\nX-Half: ")
        .await
        .unwrap();
    assert_closed_one_timeout_after(r, answered, drain).await;
}
