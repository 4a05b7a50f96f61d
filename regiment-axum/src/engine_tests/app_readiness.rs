//! Apps that are not always ready (a concurrency limit, a load shedder): tower's contract is
//! kept, `poll_ready` before `call`, and a request that comes while the app is not ready waits
//! for it, woken by the app, instead of hanging, over HTTP/1 and HTTP/2; an app that fails when
//! asked ends the connection without an answer. What an app reserves for a request when asked
//! (a concurrency limit's place in line) goes with that request, and is let go with it: an
//! idle connection holds none. And where the app is called:
//! an HTTP/2 stream's in the stream's own task, so that a panic there ends that stream only.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tower_service::Service;

use super::{CEILING, GET, h2_handshake, read_head, start};
use crate::app_service::AppService;
use crate::http_options::HttpOptions;

/// An app that answers "ok" once its gate is open, and says so in `poll_ready`.
#[derive(Clone, Default)]
struct Gated(Arc<Gate>);

#[derive(Default)]
struct Gate {
    open: AtomicBool,
    /// `poll_ready` answers an error instead of `Pending` while the gate is closed.
    fails: bool,
    /// Times `poll_ready` was asked while the gate was closed.
    asked: AtomicUsize,
    asked_notify: tokio::sync::Notify,
    /// The waker of the latest `poll_ready` that answered `Pending`.
    waker: Mutex<Option<Waker>>,
    /// Requests called before their `poll_ready` said ready: must stay 0.
    called_unready: AtomicUsize,
}

impl Gate {
    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().unwrap().take() {
            w.wake();
        }
    }

    async fn wait_asked(&self, times: usize) {
        tokio::time::timeout(CEILING, async {
            while self.asked.load(Ordering::SeqCst) < times {
                self.asked_notify.notified().await;
            }
        })
        .await
        .expect("the app asked whether it is ready");
    }
}

impl Service<Request<Incoming>> for Gated {
    type Response = Response<String>;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Response<String>, std::io::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.0.open.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
        self.0.asked.fetch_add(1, Ordering::SeqCst);
        self.0.asked_notify.notify_one();
        if self.0.fails {
            return Poll::Ready(Err(std::io::Error::other("the gate broke")));
        }
        Poll::Pending
    }

    fn call(&mut self, _req: Request<Incoming>) -> Self::Future {
        if !self.0.open.load(Ordering::SeqCst) {
            self.0.called_unready.fetch_add(1, Ordering::SeqCst);
        }
        std::future::ready(Ok(Response::new("ok".into())))
    }
}

/// Serves `app` with no timer that could poll a connection before the test's ceiling: only the
/// app's own wake-up can get a waiting request served.
fn serve(app: Gated) -> std::net::SocketAddr {
    let options = HttpOptions {
        header_read_timeout: CEILING * 3,
        ..HttpOptions::default()
    };
    start(AppService::new(app), options).0
}

#[tokio::test]
async fn a_request_that_comes_while_the_app_is_not_ready_is_served_once_it_is() {
    let app = Gated::default();
    let addr = serve(app.clone());
    let mut r = BufReader::new(TcpStream::connect(addr).await.unwrap());
    r.get_mut().write_all(GET).await.unwrap();
    // Asked when the request came, then again by the connection's poll: that one registered
    // the waker that opening the gate wakes.
    app.0.wait_asked(2).await;
    app.0.open();
    let head = tokio::time::timeout(CEILING, read_head(&mut r))
        .await
        .expect("the request, served once the app was ready");
    assert_eq!(head[0], "http/1.1 200 ok", "{head:?}");
    assert_eq!(app.0.called_unready.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_app_that_fails_when_asked_if_it_is_ready_ends_the_connection_without_an_answer() {
    let app = Gated(Arc::new(Gate {
        fails: true,
        ..Gate::default()
    }));
    let addr = serve(app.clone());
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(GET).await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(CEILING, s.read_to_end(&mut rest))
        .await
        .expect("the connection ended");
    assert!(
        read.is_err() || rest.is_empty(),
        "no answer: {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert_eq!(app.0.asked.load(Ordering::SeqCst), 1, "asked once");
    assert_eq!(app.0.called_unready.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_http2_stream_that_comes_while_the_app_is_not_ready_is_served_once_it_is() {
    let app = Gated::default();
    let addr = serve(app.clone());
    let (mut sender, _conn) = h2_handshake(addr).await;
    let answer = tokio::spawn(async move {
        sender
            .send_request(Request::get("http://a/").body(String::new()).unwrap())
            .await
    });
    app.0.wait_asked(2).await;
    app.0.open();
    let res = tokio::time::timeout(CEILING, answer)
        .await
        .expect("the stream, served once the app was ready")
        .unwrap()
        .expect("an answer");
    assert_eq!(res.status(), 200);
    assert_eq!(app.0.called_unready.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_panic_in_the_apps_call_on_an_http2_stream_ends_that_stream_not_the_connection() {
    // Panics in `call` itself, before any future exists: a bug of the app's, which must cost
    // the one stream that met it.
    let app = tower::service_fn(|req: Request<Incoming>| {
        assert!(req.uri().path() != "/panic", "the app's bug");
        std::future::ready(Ok::<_, std::convert::Infallible>(Response::new(
            String::from("ok"),
        )))
    });
    let options = HttpOptions::default();
    let addr = start(AppService::new(app), options).0;
    let (mut sender, conn) = h2_handshake(addr).await;
    let get = |path: &str| {
        Request::get(format!("http://a{path}"))
            .body(String::new())
            .unwrap()
    };
    let failed = tokio::time::timeout(CEILING, sender.send_request(get("/panic")))
        .await
        .expect("the panicking stream ends");
    assert!(failed.is_err(), "no answer to the stream that panicked");
    let res = tokio::time::timeout(CEILING, sender.send_request(get("/")))
        .await
        .expect("an answer on the same connection")
        .expect("the connection still serves");
    assert_eq!(res.status(), 200);
    assert!(!conn.is_finished(), "the connection is still open");
}

/// Counts the `Pending` answers of the app it wraps.
#[derive(Clone)]
struct CountPending<S> {
    inner: S,
    pending: Arc<(AtomicUsize, tokio::sync::Notify)>,
}

impl<S: Service<Request<Incoming>>> Service<Request<Incoming>> for CountPending<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let ready = self.inner.poll_ready(cx);
        if ready.is_pending() {
            self.pending.0.fetch_add(1, Ordering::SeqCst);
            self.pending.1.notify_one();
        }
        ready
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        self.inner.call(req)
    }
}

#[tokio::test]
async fn a_request_that_waits_for_a_concurrency_limit_is_served_once_the_permit_is_free() {
    // One request at a time. The instance of the app asked for the second request queues for
    // the permit; that place in line must go with the request. Left behind (with an instance
    // the connection kept), it would take the permit when the first request ends, and keep it,
    // while the request waited behind it for ever.
    let (routes, release, entered) = slow_and_fast();
    let pending = Arc::new((AtomicUsize::new(0), tokio::sync::Notify::new()));
    let app = CountPending {
        inner: tower::limit::ConcurrencyLimit::new(routes, 1),
        pending: pending.clone(),
    };
    let addr = start(AppService::new(app), HttpOptions::default()).0;

    let mut slow = take_the_permit(addr, &entered).await;
    let mut next = get_on_a_new_connection(addr).await;
    tokio::time::timeout(CEILING, async {
        while pending.0.load(Ordering::SeqCst) == 0 {
            pending.1.notified().await;
        }
    })
    .await
    .expect("the second request waits for the permit");

    release.add_permits(1);
    let head = tokio::time::timeout(CEILING, read_head(&mut slow))
        .await
        .expect("the slow request answered");
    assert_eq!(head[0], "http/1.1 200 ok", "{head:?}");
    let head = tokio::time::timeout(CEILING, read_head(&mut next))
        .await
        .expect("the waiting request served once the permit was free");
    assert_eq!(head[0], "http/1.1 200 ok", "{head:?}");
}

/// Sends `GET /slow` on a new connection; returns it once the request holds the permit.
async fn take_the_permit(
    addr: std::net::SocketAddr,
    entered: &tokio::sync::Notify,
) -> BufReader<TcpStream> {
    let mut slow = BufReader::new(TcpStream::connect(addr).await.unwrap());
    slow.get_mut()
        .write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    tokio::time::timeout(CEILING, entered.notified())
        .await
        .expect("the slow request holds the permit");
    slow
}

/// Sends `GET /` on a new connection.
async fn get_on_a_new_connection(addr: std::net::SocketAddr) -> BufReader<TcpStream> {
    let mut conn = BufReader::new(TcpStream::connect(addr).await.unwrap());
    conn.get_mut().write_all(GET).await.unwrap();
    conn
}

/// Routes for the concurrency tests: `/slow` answers once `release` has a permit (and says it
/// began on `entered`), any other path at once.
fn slow_and_fast() -> (
    impl Service<
        Request<Incoming>,
        Response = Response<String>,
        Error = std::convert::Infallible,
        Future: Send,
    > + Clone
    + Send
    + Sync
    + 'static,
    Arc<tokio::sync::Semaphore>,
    Arc<tokio::sync::Notify>,
) {
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let entered = Arc::new(tokio::sync::Notify::new());
    let routes = {
        let (release, entered) = (release.clone(), entered.clone());
        tower::service_fn(move |req: Request<Incoming>| {
            let (release, entered) = (release.clone(), entered.clone());
            async move {
                if req.uri().path() == "/slow" {
                    entered.notify_one();
                    let _ = release.acquire().await.expect("open");
                }
                Ok::<_, std::convert::Infallible>(Response::new(String::from("ok")))
            }
        })
    };
    (routes, release, entered)
}

#[tokio::test]
async fn a_shed_request_leaves_no_place_in_line_on_its_idle_connection() {
    // A load shedder over a limit of one request at a time, its refusals answered 503. A request
    // that comes while the permit is taken is shed; the limit it was asked through queued for the
    // permit meanwhile. That place in line must go when the request is answered: kept by the
    // idle connection, it would take the next free permit and hold it, and every request after
    // it would be shed.
    let (routes, release, entered) = slow_and_fast();
    let app = tower::ServiceBuilder::new()
        .map_result(|r: Result<Response<String>, tower::BoxError>| {
            Ok::<_, tower::BoxError>(r.unwrap_or_else(|_| {
                let mut res = Response::new(String::from("shed"));
                *res.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                res
            }))
        })
        .load_shed()
        .concurrency_limit(1)
        .service(routes);
    let addr = start(AppService::new(app), HttpOptions::default()).0;

    let mut slow = take_the_permit(addr, &entered).await;
    let mut shed = get_on_a_new_connection(addr).await;
    let head = tokio::time::timeout(CEILING, read_head(&mut shed))
        .await
        .expect("the second request answered");
    assert_eq!(head[0], "http/1.1 503 service unavailable", "{head:?}");

    release.add_permits(1);
    let head = tokio::time::timeout(CEILING, read_head(&mut slow))
        .await
        .expect("the slow request answered");
    assert_eq!(head[0], "http/1.1 200 ok", "{head:?}");
    // The shed request's connection stays open and idle; the permit is free for the next.
    let mut next = get_on_a_new_connection(addr).await;
    let head = tokio::time::timeout(CEILING, read_head(&mut next))
        .await
        .expect("the third request answered");
    assert_eq!(head[0], "http/1.1 200 ok", "{head:?}");
    drop(shed);
}
