//! Long-lived connections across idleness and replacements, with real clients:
//! - an HTTP/2 connection that completed its preface may stay idle: a client that connects,
//!   idles several header read timeouts, then sends requests is served on the same connection,
//!   without GOAWAY; a peer that never completes the preface is still cut by that timeout;
//! - a draining worker refuses a WebSocket handshake with `503`, `Connection: close` and
//!   `Retry-After: 0`, and closes the WebSocket it already serves with code 1001;
//! - WebSocket clients of the `live` example through five rolling restarts: each is closed
//!   with 1001 at every restart and reconnects, and every message the server confirmed is in
//!   its journal exactly once (the client resends what was not confirmed);
//! - a server-sent-events stream ends on drain with a `retry: 0` hint, and resumes on another
//!   worker from the `Last-Event-ID`.

mod http_common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use http_common::{
    End, connect, idle_connection, read_end, runtime, start_hello, until_drain_answered,
    wait_progress,
};
use hyper_util::rt::TokioIo;
use nix::sys::signal::Signal;
use tests::cluster::{CEILING, Cluster, pid_of, wait_gone};
use tokio_tungstenite::tungstenite::{self, Message, protocol::frame::coding::CloseCode};

/// The header read timeout of the idle test, and how long its client idles: five times that.
/// The rule is the same with the default (10 s) and any idle; these keep the test short.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);
const IDLE: Duration = Duration::from_secs(5);

#[test]
fn an_idle_http2_connection_is_kept_and_served_on_the_same_connection() {
    let timeout = format!("{}ms", HEADER_READ_TIMEOUT.as_millis());
    let cluster = start_hello(1, &[("REGIMENT_HEADER_READ_TIMEOUT", &timeout)]);
    let pid = *cluster.wait_serving(1).get(&0).expect("slot 0");
    let addr = cluster.addr();
    let rt = runtime();
    rt.block_on(async {
        // The client preface and SETTINGS go out with the handshake; no request follows.
        let mut h2 = tests::load::http2_connection(addr)
            .await
            .expect("an HTTP/2 connection");
        let idle_from = Instant::now();

        // Meanwhile, a peer that sends half the preface and stalls is cut by the same timeout:
        // the rule still holds for connections that never complete the preface.
        let half = tokio::spawn(half_preface_end(addr));
        let end = tokio::time::timeout(CEILING, half)
            .await
            .expect("the half-preface connection closed within the ceiling")
            .unwrap();
        assert_eq!(end, "FIN", "a stalled preface must be cut cleanly");

        // The deliberate idle: the behaviour under test. The HTTP/2 connection was accepted
        // before the half-preface one, so its own header read timeout has passed too.
        tokio::time::sleep_until((idle_from + IDLE).into()).await;
        assert!(
            !h2.goaway.load(Ordering::Relaxed),
            "an idle HTTP/2 connection received GOAWAY outside any drain"
        );
        assert!(!h2.task.is_finished(), "the idle connection was closed");

        for i in 0..3 {
            let req = http::Request::get(format!("http://{addr}/pid"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let res = tokio::time::timeout(CEILING, h2.sender.send_request(req))
                .await
                .expect("an answer within the ceiling")
                .unwrap_or_else(|e| panic!("request {i} after the idle: {e}"));
            assert_eq!(res.status(), 200);
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, pid.to_string().as_bytes(), "request {i}");
        }
        assert!(
            !h2.goaway.load(Ordering::Relaxed),
            "GOAWAY on the idle connection"
        );
        assert!(
            !h2.task.is_finished(),
            "the connection {} ended",
            h2.local_addr
        );
    });
    // Nothing was replaced meanwhile: the same worker, never told to drain.
    assert!(
        !cluster
            .events()
            .iter()
            .any(|e| e["event"] == "draining" || e["event"] == "killed"),
        "a worker drained during the test"
    );
}

/// Sends the first 14 bytes of the HTTP/2 preface, then nothing; returns how the server ended
/// the connection.
async fn half_preface_end(addr: SocketAddr) -> &'static str {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0").await.unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf).await {
        Ok(0) => "FIN",
        Ok(_) => "data",
        Err(_) => "error",
    }
}

/// `live` (built here as `live_under_test`) with `workers` workers on an ephemeral port of
/// 127.0.0.1, printing its events, with `env` on top.
fn start_live(workers: usize, env: &[(&str, &str)]) -> Cluster {
    let workers = workers.to_string();
    let mut all = vec![
        ("LIVE_WORKERS", workers.as_str()),
        ("LIVE_PRINT_EVENTS", "true"),
        ("RUST_LOG", "warn"),
    ];
    all.extend_from_slice(env);
    Cluster::start(Path::new(env!("CARGO_BIN_EXE_live_under_test")), &all)
}

#[test]
fn a_draining_worker_refuses_websocket_handshakes_and_closes_its_websockets_with_1001() {
    let cluster = start_live(
        1,
        &[
            ("REGIMENT_DRAIN_TIMEOUT", "60s"),
            // Keep-alive connections stay open while the probe confirms the drain.
            ("REGIMENT_IDLE_GRACE", "20s"),
            ("REGIMENT_HEADER_READ_TIMEOUT", "40s"),
        ],
    );
    let old = *cluster.wait_serving(1).get(&0).expect("slot 0");
    let addr = cluster.addr();

    // A WebSocket opened before the drain, and two keep-alive connections to the same worker.
    let (mut socket, _) =
        tungstenite::client(format!("ws://{addr}/ws"), connect(addr)).expect("a WebSocket");
    socket.send(Message::text("before")).unwrap();
    assert_eq!(socket.read().unwrap(), Message::text("ok before"));
    let (mut probe, mut probe_reader) = idle_connection(addr, old);
    let (handshake, handshake_reader) = idle_connection(addr, old);

    let from = cluster.events().len();
    cluster.signal(Signal::SIGHUP);
    cluster.wait_event("the old worker draining", from, |e| {
        e["event"] == "draining" && pid_of(e) == old
    });
    until_drain_answered(&mut probe, &mut probe_reader, old);

    // The worker itself drains now: a handshake on a connection it still holds is refused.
    let refused = match tungstenite::client(format!("ws://{addr}/ws"), handshake) {
        Ok(_) => panic!("a draining worker accepted a WebSocket handshake"),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(res))) => res,
        Err(e) => panic!("the handshake failed without an answer: {e}"),
    };
    assert_eq!(refused.status(), 503, "{refused:?}");
    let header = |name: &str| {
        refused
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    assert_eq!(
        header("connection").as_deref(),
        Some("close"),
        "{refused:?}"
    );
    assert_eq!(header("retry-after").as_deref(), Some("0"), "{refused:?}");
    let mut handshake_reader: BufReader<_> = handshake_reader;
    assert_eq!(read_end(&mut handshake_reader), End::Fin);

    // The WebSocket opened before is closed by the application: going away.
    let close = match socket.read() {
        Ok(Message::Close(frame)) => frame,
        Ok(other) => panic!("unexpected {other:?} on a draining WebSocket"),
        Err(e) => panic!("the WebSocket ended without a close frame: {e}"),
    };
    let close = close.expect("a close frame with a code");
    assert_eq!(close.code, CloseCode::Away, "{close:?}");
    drop(socket);
    drop((probe, probe_reader));

    // Nothing holds the old worker now: it exits by itself.
    let (_, e) = cluster.wait_event("the old worker exiting", 0, |e| {
        matches!(e["event"].as_str(), Some("exited" | "crashed" | "killed")) && pid_of(e) == old
    });
    assert_eq!(e["event"], "exited", "{e}");
    assert_eq!(e["status"], "exit 0", "{e}");
    wait_gone(old, CEILING);
}

const WORKERS: usize = 2;
const RESTARTS: usize = 5;
const CLIENTS: usize = 4;
/// Messages a client sends before it has their confirmations.
const WINDOW: usize = 4;

/// What the WebSocket clients saw, all together.
#[derive(Debug, Default)]
struct WsReport {
    /// Messages confirmed, by client, in the order confirmed.
    confirmed: BTreeMap<usize, Vec<String>>,
    /// Close frames with code 1001 received, by client.
    going_away: BTreeMap<usize, u64>,
    /// Handshakes refused with 503 (a worker that began draining as it was reached).
    refused: u64,
    /// Messages resent after a close had left them unconfirmed.
    resent: u64,
    /// Anything else: abnormal closes, errors, confirmations out of order.
    failures: Vec<String>,
}

#[test]
fn websocket_clients_through_five_rolling_restarts_store_every_message_once() {
    let dir = std::env::temp_dir().join(format!("regiment-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("journal");
    let _ = std::fs::remove_file(&journal);
    let cluster = start_live(
        WORKERS,
        &[("LIVE_JOURNAL", journal.to_str().expect("a UTF-8 path"))],
    );
    let first: BTreeSet<u32> = cluster.wait_serving(WORKERS).into_values().collect();
    let addr = cluster.addr();

    let rt = runtime();
    let stop = Arc::new(AtomicBool::new(false));
    let confirmed = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| rt.spawn(ws_client(addr, i, stop.clone(), confirmed.clone())))
        .collect();
    wait_progress(&confirmed, 50, CEILING);
    for i in 0..RESTARTS {
        let from = cluster.events().len();
        cluster.signal(Signal::SIGHUP);
        cluster.wait_event(&format!("rollout {} done", i + 1), from, |e| {
            e["event"] == "rollout-done"
        });
        // Messages must flow on the new workers before the next restart.
        wait_progress(&confirmed, 100, CEILING);
    }
    stop.store(true, Ordering::Relaxed);
    let mut report = WsReport::default();
    for (i, client) in clients.into_iter().enumerate() {
        let (confirmed, going_away, refused, resent, failures) =
            rt.block_on(client).expect("a client task");
        report.confirmed.insert(i, confirmed);
        report.going_away.insert(i, going_away);
        report.refused += refused;
        report.resent += resent;
        report.failures.extend(failures);
    }
    let total: usize = report.confirmed.values().map(Vec::len).sum();
    eprintln!(
        "websockets: {total} messages confirmed, {:?} closes going away by client, {} resent, \
         {} handshakes refused",
        report.going_away, report.resent, report.refused
    );

    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    for (client, closes) in &report.going_away {
        assert!(
            *closes >= RESTARTS as u64,
            "client {client} was closed with 1001 {closes} times in {RESTARTS} restarts"
        );
    }
    assert_journal_holds_each_confirmed_message_once(&journal, &report);
    let events = cluster.events();
    assert!(
        !events.iter().any(|e| e["event"] == "killed"),
        "a worker was killed at its deadline: a WebSocket held its drain"
    );
    let last: BTreeSet<u32> = cluster.wait_serving(WORKERS).into_values().collect();
    assert!(first.is_disjoint(&last), "{first:?} -> {last:?}");
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every confirmed message is in the journal once, and the journal holds nothing else: no
/// message stored without its confirmation (it would have been resent, and stored twice).
fn assert_journal_holds_each_confirmed_message_once(journal: &PathBuf, report: &WsReport) {
    let text = std::fs::read_to_string(journal).expect("the journal");
    let mut stored: BTreeMap<&str, usize> = BTreeMap::new();
    for line in text.lines() {
        *stored.entry(line).or_default() += 1;
    }
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    let confirmed: BTreeSet<&str> = report
        .confirmed
        .values()
        .flatten()
        .map(String::as_str)
        .collect();
    let total: usize = report.confirmed.values().map(Vec::len).sum();
    assert_eq!(confirmed.len(), total, "a message was confirmed twice");
    let unconfirmed: Vec<_> = stored.keys().filter(|m| !confirmed.contains(*m)).collect();
    assert!(
        unconfirmed.is_empty(),
        "stored without a confirmation: {unconfirmed:?}"
    );
    let lost: Vec<_> = confirmed
        .iter()
        .filter(|m| !stored.contains_key(*m))
        .collect();
    assert!(lost.is_empty(), "confirmed but not stored: {lost:?}");
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// What one client returns: its confirmed messages in order, closes going away, refused
/// handshakes, resent messages, failures.
type ClientOutcome = (Vec<String>, u64, u64, u64, Vec<String>);

/// One WebSocket client: sends `c{index}-{n}` messages, up to [`WINDOW`] unconfirmed, with a
/// short pause between sends; on a close going away it reconnects and resends what was not
/// confirmed, in order. Once `stop` is set it sends nothing new, waits for its confirmations
/// and closes. Bounded: at most 20 000 messages and 90 s.
async fn ws_client(
    addr: SocketAddr,
    index: usize,
    stop: Arc<AtomicBool>,
    progress: Arc<AtomicU64>,
) -> ClientOutcome {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut confirmed = Vec::new();
    let (mut going_away, mut refused, mut resent) = (0, 0, 0);
    let mut failures = Vec::new();
    let mut pending: VecDeque<String> = VecDeque::new();
    let mut next = 0u64;
    'connection: while Instant::now() < deadline && failures.len() < 5 {
        let mut ws = match ws_connect(addr).await {
            Ok(ws) => ws,
            Err(WsConnect::Refused) => {
                refused += 1;
                continue;
            }
            Err(WsConnect::Failed(why)) => {
                failures.push(format!("client {index}: connect: {why}"));
                continue;
            }
        };
        // What the last connection left unconfirmed goes first, in order.
        for m in &pending {
            if ws.send(Message::text(m.clone())).await.is_err() {
                continue 'connection;
            }
            resent += 1;
        }
        loop {
            let stopping = stop.load(Ordering::Relaxed) || next >= 20_000;
            if stopping && pending.is_empty() {
                let _ = ws.close(None).await;
                return (confirmed, going_away, refused, resent, failures);
            }
            if !stopping && pending.len() < WINDOW {
                let m = format!("c{index}-{next}");
                next += 1;
                pending.push_back(m.clone());
                // An error here means the server closed meanwhile: what it said is read next.
                let _ = ws.send(Message::text(m)).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            let msg = match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
                Err(_) => {
                    failures.push(format!("client {index}: no confirmation within 20 s"));
                    continue 'connection;
                }
                Ok(msg) => msg,
            };
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let Some(m) = t.as_str().strip_prefix("ok ") else {
                        failures.push(format!("client {index}: unexpected {t:?}"));
                        continue;
                    };
                    if pending.front().map(String::as_str) != Some(m) {
                        failures.push(format!(
                            "client {index}: confirmation of {m:?}, expected {:?}",
                            pending.front()
                        ));
                        continue;
                    }
                    confirmed.push(pending.pop_front().expect("checked"));
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(Message::Close(Some(f)))) if f.code == CloseCode::Away => {
                    going_away += 1;
                    // Answer the close, and read on to the end of the stream.
                    while let Some(Ok(_)) = ws.next().await {}
                    continue 'connection;
                }
                Some(Ok(Message::Close(f))) => {
                    failures.push(format!("client {index}: closed with {f:?}"));
                    continue 'connection;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    failures.push(format!("client {index}: {e}"));
                    continue 'connection;
                }
                None => {
                    failures.push(format!("client {index}: ended without a close frame"));
                    continue 'connection;
                }
            }
        }
    }
    failures.push(format!(
        "client {index}: gave up ({} unconfirmed)",
        pending.len()
    ));
    (confirmed, going_away, refused, resent, failures)
}

enum WsConnect {
    /// 503 with `Retry-After: 0`: a worker that had just begun draining.
    Refused,
    Failed(String),
}

async fn ws_connect(addr: SocketAddr) -> Result<WsStream, WsConnect> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| WsConnect::Failed(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    match tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream),
    )
    .await
    {
        Err(_) => Err(WsConnect::Failed("handshake timed out".into())),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(res)))
            if res.status() == 503
                && res.headers().get("retry-after").is_some_and(|v| v == "0") =>
        {
            Err(WsConnect::Refused)
        }
        Ok(Err(e)) => Err(WsConnect::Failed(e.to_string())),
    }
}

#[test]
fn a_server_sent_events_stream_ends_on_drain_with_a_retry_hint_and_resumes_elsewhere() {
    let cluster = start_live(1, &[]);
    let old = *cluster.wait_serving(1).get(&0).expect("slot 0");
    let addr = cluster.addr();
    let rt = runtime();

    let (first, ended) = rt.block_on(async {
        let mut body = sse_request(addr, None).await;
        let mut text = String::new();
        // A few ticks before the drain, then the rest to the end of the stream.
        while text.matches("data: tick").count() < 3 {
            text.push_str(&next_chunk(&mut body).await.expect("ticks before the drain"));
        }
        let from = cluster.events().len();
        cluster.signal(Signal::SIGHUP);
        cluster.wait_event("the old worker draining", from, |e| {
            e["event"] == "draining" && pid_of(e) == old
        });
        while let Some(chunk) = next_chunk(&mut body).await {
            text.push_str(&chunk);
        }
        (text, true)
    });
    assert!(ended);
    let events = parse_sse(&first);
    let (last, ticks) = events.split_last().expect("events");
    assert_eq!(
        last.get("event").map(String::as_str),
        Some("draining"),
        "{first}"
    );
    assert_eq!(last.get("retry").map(String::as_str), Some("0"), "{first}");
    let ids: Vec<u64> = ticks
        .iter()
        .map(|e| e["id"].parse().expect("a numeric id"))
        .collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "{first}");
    assert!(
        ticks
            .iter()
            .all(|e| e["data"].ends_with(&format!("pid {old}"))),
        "{first}"
    );

    // The client reconnects at once with the last id it saw, as `retry: 0` says, and again
    // should it reach a worker that is draining (an EventSource does the same).
    let last_id = *ids.last().expect("at least three ticks");
    let resumed = rt.block_on(async {
        for _ in 0..50 {
            let mut body = sse_request(addr, Some(last_id)).await;
            let mut text = String::new();
            while !text.contains("\n\n") {
                text.push_str(
                    &next_chunk(&mut body)
                        .await
                        .expect("an event after resuming"),
                );
            }
            let first = parse_sse(&text).remove(0);
            if first.get("event").map(String::as_str) != Some("draining") {
                return first;
            }
        }
        panic!("50 reconnections all reached a draining worker");
    });
    assert_eq!(resumed["id"], (last_id + 1).to_string(), "{resumed:?}");
    assert!(
        !resumed["data"].ends_with(&format!("pid {old}")),
        "resumed on the draining worker: {resumed:?}"
    );
}

/// `GET /events?every_ms=50` on a new HTTP/1.1 connection, with `Last-Event-ID` if given; the
/// answer's body.
async fn sse_request(addr: SocketAddr, last_id: Option<u64>) -> hyper::body::Incoming {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::get("/events?every_ms=50").header("host", addr.to_string());
    if let Some(id) = last_id {
        req = req.header("last-event-id", id.to_string());
    }
    let res = sender
        .send_request(req.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    res.into_body()
}

/// The next data of `body`, `None` at its end; panics on an error (the stream must end
/// cleanly) or after the ceiling.
async fn next_chunk(body: &mut hyper::body::Incoming) -> Option<String> {
    loop {
        let frame = tokio::time::timeout(CEILING, body.frame())
            .await
            .expect("the stream moves within the ceiling")?
            .expect("the stream ends cleanly, not with an error");
        if let Ok(data) = frame.into_data() {
            return Some(String::from_utf8(data.to_vec()).expect("UTF-8"));
        }
    }
}

/// The events of an SSE text: each a map of field to value.
fn parse_sse(text: &str) -> Vec<BTreeMap<String, String>> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            e.lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.to_owned(), v.trim_start().to_owned()))
                .collect()
        })
        .collect()
}
