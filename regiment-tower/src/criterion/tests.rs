use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::task::Context;
use std::time::Duration;

use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

use super::{Criterion, CriterionLayer, Verdict};
use crate::sampler;
use crate::test_support::{Recorder, memory_lock, wait_until};

#[path = "../../tests/support/server_errors.rs"]
mod server_errors;
use server_errors::ServerErrors;

/// Answers with the status in the request's path: `/503` -> 503.
fn status_echo()
-> impl Service<http::Request<()>, Response = http::Response<()>, Error = Infallible, Future: Send>
+ Clone {
    service_fn(|req: http::Request<()>| async move {
        let code: u16 = req.uri().path()[1..].parse().unwrap();
        Ok::<_, Infallible>(http::Response::builder().status(code).body(()).unwrap())
    })
}

fn get(path: &str) -> http::Request<()> {
    http::Request::get(path).body(()).unwrap()
}

#[tokio::test]
async fn on_response_sees_statuses_and_fires_once_on_the_streak() {
    let rec = Recorder::new();
    let mut svc = CriterionLayer::with_replacer(ServerErrors::<3>::default(), rec.replacer())
        .layer(status_echo());
    for path in ["/500", "/502", "/200", "/500", "/503"] {
        svc.ready().await.unwrap().call(get(path)).await.unwrap();
    }
    assert_eq!(rec.calls(), 0, "a 200 broke the streak");
    let res = svc.ready().await.unwrap().call(get("/504")).await.unwrap();
    assert_eq!(
        res.status(),
        504,
        "the response is passed through untouched"
    );
    assert_eq!(rec.calls(), 1);
    assert_eq!(
        rec.reason().unwrap(),
        "server-errors: 3 consecutive 5xx >= 3"
    );
    for _ in 0..10 {
        svc.ready().await.unwrap().call(get("/500")).await.unwrap();
    }
    assert_eq!(rec.calls(), 1);
}

struct CountCalls {
    requests: AtomicUsize,
    responses: AtomicUsize,
}

impl Criterion for CountCalls {
    fn on_request<B>(&self, req: &http::Request<B>) -> Verdict {
        self.requests.fetch_add(1, Relaxed);
        Verdict::replace_if(req.uri().path() == "/418", || {
            "teapot: asked for 418".into()
        })
    }
    fn on_response<B>(&self, _res: &http::Response<B>) -> Verdict {
        self.responses.fetch_add(1, Relaxed);
        Verdict::Keep
    }
}

#[tokio::test]
async fn on_request_fires_and_then_the_criterion_rests() {
    let rec = Recorder::new();
    let layer = CriterionLayer::with_replacer(
        CountCalls {
            requests: AtomicUsize::new(0),
            responses: AtomicUsize::new(0),
        },
        rec.replacer(),
    );
    let mut svc = ServiceBuilder::new()
        .layer(layer.clone())
        .service(status_echo());
    svc.ready().await.unwrap().call(get("/200")).await.unwrap();
    let res = svc.ready().await.unwrap().call(get("/418")).await.unwrap();
    assert_eq!(res.status(), 418, "the request that fires is still served");
    assert_eq!(rec.calls(), 1);
    assert_eq!(rec.reason().unwrap(), "teapot: asked for 418");
    for _ in 0..5 {
        svc.ready().await.unwrap().call(get("/200")).await.unwrap();
    }
    let c = layer.criterion();
    assert_eq!(c.requests.load(Relaxed), 2, "not asked once fired");
    assert_eq!(
        c.responses.load(Relaxed),
        1,
        "only the one before the firing"
    );
}

#[tokio::test]
async fn errors_pass_through_without_on_response() {
    let rec = Recorder::new();
    let failing =
        service_fn(|_req: http::Request<()>| async { Err::<http::Response<()>, _>("boom") });
    let mut svc =
        CriterionLayer::with_replacer(ServerErrors::<3>::default(), rec.replacer()).layer(failing);
    for _ in 0..5 {
        assert_eq!(
            svc.ready().await.unwrap().call(get("/")).await.unwrap_err(),
            "boom"
        );
    }
    assert_eq!(rec.calls(), 0);
}

struct NoResponses;

impl Criterion for NoResponses {
    const ON_RESPONSE: bool = false;
    fn on_response<B>(&self, _res: &http::Response<B>) -> Verdict {
        panic!("ON_RESPONSE is false: responses are not shown");
    }
}

#[tokio::test]
async fn on_response_false_skips_responses() {
    let mut svc =
        CriterionLayer::with_replacer(NoResponses, Recorder::new().replacer()).layer(status_echo());
    for _ in 0..3 {
        let res = svc.ready().await.unwrap().call(get("/503")).await.unwrap();
        assert_eq!(res.status(), 503);
    }
}

struct TickAfter(AtomicU32, u32);

impl Criterion for TickAfter {
    fn tick_interval(&self) -> Duration {
        Duration::from_secs(3600)
    }
    fn on_tick(&self) -> Verdict {
        let n = self.0.fetch_add(1, Relaxed) + 1;
        Verdict::replace_if(n >= self.1, || format!("ticks: {n} >= {}", self.1))
    }
}

#[test]
fn on_tick_fires_without_any_request() {
    let _serial = memory_lock();
    let rec = Recorder::new();
    let layer = CriterionLayer::with_replacer(TickAfter(AtomicU32::new(0), 2), rec.replacer());
    assert_eq!(
        layer.criterion().0.load(Relaxed),
        0,
        "not ticked before use"
    );
    let _svc = layer.layer(status_echo());
    crate::sampler::run_now();
    assert_eq!(rec.calls(), 0);
    crate::sampler::run_now();
    assert_eq!(rec.calls(), 1);
    assert_eq!(rec.reason().unwrap(), "ticks: 2 >= 2");
    crate::sampler::run_now();
    assert_eq!(
        layer.criterion().0.load(Relaxed),
        2,
        "not ticked once fired"
    );
}

#[tokio::test]
async fn poll_ready_is_delegated() {
    let rec = Recorder::new();
    // tower's ConcurrencyLimit is not ready while its one permit is out: neither are we.
    let mut limited = CriterionLayer::with_replacer(ServerErrors::<3>::default(), rec.replacer())
        .layer(tower::limit::ConcurrencyLimit::new(status_echo(), 1));
    let fut = limited.ready().await.unwrap().call(get("/200"));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(limited.poll_ready(&mut cx).is_pending());
    assert_eq!(fut.await.unwrap().status(), 200);
    assert!(limited.poll_ready(&mut cx).is_ready());
    assert_eq!(rec.calls(), 0);
}

#[test]
fn a_fired_criterion_leaves_the_sampler_schedule() {
    // MaxAge of zero ticks every millisecond: once fired it must not keep waking the
    // sampler thread for the rest of the process.
    let rec = Recorder::new();
    let layer = CriterionLayer::with_replacer(crate::MaxAge::new(Duration::ZERO), rec.replacer());
    let svc = layer.layer(status_echo());
    // The weak reference keeps the allocation, so its address cannot be reused by a job
    // registered later by another test.
    let job = Arc::downgrade(&layer.judge);
    wait_until("the criterion fired and left the schedule", || {
        rec.calls() > 0 && !sampler::is_scheduled(job.as_ptr())
    });
    assert_eq!(rec.calls(), 1);
    assert!(rec.reason().unwrap().starts_with("max-age: up "));
    // Left for having fired, not for having been dropped.
    assert!(job.upgrade().is_some());
    drop((layer, svc));
}

#[tokio::test]
async fn works_on_an_axum_router() {
    let rec = Recorder::new();
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async { http::StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .layer(CriterionLayer::with_replacer(
            ServerErrors::<3>::default(),
            rec.replacer(),
        ));
    for _ in 0..3 {
        let req = http::Request::get("/")
            .body(axum::body::Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 500);
    }
    assert_eq!(rec.calls(), 1);
}

/// What the worker's request names to the master, for its metrics: the built-in `MaxAge` by
/// kind, a criterion of the application's own by its type's name, path and generic arguments
/// left out.
#[test]
fn a_firing_names_the_kind_of_its_criterion() {
    use regiment_core::plumbing::CriterionKind;

    use super::judge::kind_of;

    struct Never;
    impl Criterion for Never {}
    let custom = |name: &str| CriterionKind::Custom { name: name.into() };
    assert_eq!(kind_of::<crate::MaxAge>(), CriterionKind::MaxAge);
    assert_eq!(kind_of::<ServerErrors<3>>(), custom("ServerErrors"));
    assert_eq!(kind_of::<Never>(), custom("Never"));
}
