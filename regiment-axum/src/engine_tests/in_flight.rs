//! The requests in flight, read from a thread of the test while the runtime's only worker
//! thread is blocked in a handler: what a report before a kill reads of a hung worker.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use regiment_core::plumbing::{self, InFlightSnapshot};
use regiment_core::worker::Stats;

use super::{CEILING, start_counting};
use crate::http_options::HttpOptions;

/// Reads the requests in flight until `until` holds of them, within [`CEILING`].
fn wait_for(stats: &Stats, until: impl Fn(&InFlightSnapshot) -> bool) -> InFlightSnapshot {
    let deadline = Instant::now() + CEILING;
    loop {
        let snapshot = plumbing::in_flight_requests(stats);
        if until(&snapshot) || Instant::now() > deadline {
            return snapshot;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `request` to a server whose handler blocks the runtime's only worker thread until
/// `inspect` has read the requests in flight (from this thread), then lets it answer. Returns
/// the answer, once the request is off the list.
fn while_blocked(request: &'static [u8], inspect: impl FnOnce(&'static Stats)) -> String {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let stats = plumbing::new_stats();
    // The handler blocks the runtime's only worker thread (`std::thread::sleep` would do the
    // same) until the test lets it go.
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (release, release_rx) = mpsc::channel::<()>();
    let handler = Arc::new(Mutex::new((entered_tx, release_rx)));
    let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
        let handler = handler.clone();
        async move {
            let (entered, release) = &*handler.lock().unwrap();
            let _ = entered.send(());
            let _ = release.recv_timeout(CEILING);
            Ok::<_, std::convert::Infallible>(Response::new("done".to_string()))
        }
    });
    let addr = runtime.block_on(async {
        let (addr, _) = start_counting(service, HttpOptions::default(), Some(stats));
        addr
    });

    let client = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(CEILING)).unwrap();
        stream.write_all(request).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    });
    entered
        .recv_timeout(CEILING)
        .expect("the request reached the handler");
    // The runtime's only worker thread is in the handler: this thread reads all the same.
    inspect(stats);

    release.send(()).unwrap();
    let answer = client.join().unwrap();
    let done = wait_for(stats, |s| s.requests.is_empty());
    assert_eq!(done.requests, [], "taken off the list once answered");
    assert_eq!((stats.requests(), stats.in_flight()), (1, 0));
    runtime.shutdown_timeout(CEILING);
    answer
}

#[test]
fn the_requests_in_flight_are_read_while_the_runtime_is_blocked_without_their_query() {
    let request = b"GET /orders/42?token=s3cret&email=a@b.c HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer hidden\r\nConnection: close\r\n\r\n";
    let answer = while_blocked(request, |stats| {
        let blocked = wait_for(stats, |s| !s.requests.is_empty());
        assert_eq!(blocked.requests.len(), 1, "{blocked:?}");
        assert_eq!(blocked.unlisted, 0);
        let request = &blocked.requests[0];
        assert_eq!(
            (
                request.method.as_str(),
                request.path.as_str(),
                request.version.as_str()
            ),
            ("GET", "/orders/42", "HTTP/1.1")
        );
        let listed = format!("{blocked:?}");
        for secret in ["s3cret", "token", "a@b.c", "hidden", "Bearer"] {
            assert!(!listed.contains(secret), "{secret} kept: {listed}");
        }
        // It ages while it is blocked.
        let later = wait_for(stats, |s| {
            s.requests
                .first()
                .is_some_and(|r| r.age_ms > request.age_ms)
        });
        assert!(later.requests[0].age_ms > request.age_ms, "{later:?}");
    });
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("done"), "{answer}");
}

/// A method other than the nine of RFC 9110 is served out of line (where its name is copied):
/// it is answered and listed by its name all the same.
#[test]
fn a_request_with_an_extension_method_is_served_and_listed_by_its_name() {
    let request =
        b"PROPFIND /dav/notes.txt?lock=s3cret HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let answer = while_blocked(request, |stats| {
        let blocked = wait_for(stats, |s| !s.requests.is_empty());
        let listed: Vec<_> = blocked
            .requests
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str(), r.version.as_str()))
            .collect();
        assert_eq!(listed, [("PROPFIND", "/dav/notes.txt", "HTTP/1.1")]);
    });
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("done"), "{answer}");
}
