//! The HTTP/1 drain: `Connection: close` on answers once draining, requests sent as the drain
//! starts or as the idle grace ends, and the grace that never cuts a request begun.

use std::convert::Infallible;
use std::time::Duration;

use http::{Request, Response};
use http_body_util::channel::Channel;
use hyper::body::Incoming;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{CEILING, GET, echo_upgrades, read_head, start};
use crate::http_options::HttpOptions;

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
/// open, until the header read timeout (which runs from the moment the connection went idle)
/// closes it. The clock is paused, so the bounds are exact.
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
