use std::convert::Infallible;
use std::task::Context;

use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

use super::RequestCount;
use crate::test_support::Recorder;

fn echo() -> impl Service<u32, Response = u32, Error = Infallible, Future: Send> + Clone {
    service_fn(|x: u32| async move { Ok::<_, Infallible>(x) })
}

#[tokio::test]
async fn fires_exactly_at_the_nth_request_and_keeps_serving() {
    let rec = Recorder::new();
    let layer = RequestCount::new(5).with_replacer(rec.replacer());
    let mut svc = layer.layer(echo());
    for i in 1..=4u32 {
        assert_eq!(svc.ready().await.unwrap().call(i).await.unwrap(), i);
        assert_eq!(rec.calls(), 0, "not before the 5th (at {i})");
    }
    assert_eq!(svc.ready().await.unwrap().call(5).await.unwrap(), 5);
    assert_eq!(rec.calls(), 1, "at the 5th");
    for i in 6..=50u32 {
        assert_eq!(svc.ready().await.unwrap().call(i).await.unwrap(), i);
    }
    assert_eq!(rec.calls(), 1, "once");
    assert_eq!(layer.count(), 50);
    assert_eq!(rec.reason().unwrap(), "request-count: 5 requests >= 5");
}

#[tokio::test]
async fn services_of_one_layer_share_the_count() {
    let rec = Recorder::new();
    let layer = RequestCount::new(4).with_replacer(rec.replacer());
    let mut a = layer.layer(echo());
    let mut b = layer.layer(echo());
    let mut c = a.clone();
    for svc in [&mut a, &mut b, &mut c] {
        svc.ready().await.unwrap().call(0).await.unwrap();
    }
    assert_eq!(rec.calls(), 0);
    b.ready().await.unwrap().call(0).await.unwrap();
    assert_eq!(rec.calls(), 1);
    assert_eq!(layer.count(), 4);
}

#[test]
fn counts_concurrent_requests_exactly() {
    let rec = Recorder::new();
    let layer = RequestCount::new(4000).with_replacer(rec.replacer());
    std::thread::scope(|s| {
        for _ in 0..4 {
            let svc = layer.layer(echo());
            s.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let mut svc = svc;
                    for i in 0..1000 {
                        svc.ready().await.unwrap().call(i).await.unwrap();
                    }
                });
            });
        }
    });
    assert_eq!(layer.count(), 4000);
    assert_eq!(rec.calls(), 1);
}

#[tokio::test]
async fn two_layers_fire_their_shared_replacer_once() {
    let rec = Recorder::new();
    let mut svc = ServiceBuilder::new()
        .layer(RequestCount::new(2).with_replacer(rec.replacer()))
        .layer(RequestCount::new(3).with_replacer(rec.replacer()))
        .service(echo());
    for i in 0..10 {
        svc.ready().await.unwrap().call(i).await.unwrap();
    }
    assert_eq!(rec.calls(), 1);
    assert_eq!(rec.reason().unwrap(), "request-count: 2 requests >= 2");
}

#[test]
fn jitter_stays_in_its_bounds_and_spreads() {
    let limits: Vec<u64> = (0..500)
        .map(|_| RequestCount::new(1000).jitter(20).limit())
        .collect();
    assert!(limits.iter().all(|l| (1000..=1020).contains(l)));
    // Both ends and spread: 500 draws over 21 values.
    assert!(limits.contains(&1000) && limits.contains(&1020));
    let distinct: std::collections::HashSet<_> = limits.iter().collect();
    assert!(distinct.len() > 15, "{} distinct limits", distinct.len());
    assert_eq!(RequestCount::new(1000).jitter(0).limit(), 1000);
}

#[tokio::test]
async fn jittered_layer_fires_at_its_drawn_limit_and_says_so() {
    let rec = Recorder::new();
    let layer = RequestCount::new(10)
        .jitter(5)
        .with_replacer(rec.replacer());
    let limit = layer.limit();
    let mut svc = layer.layer(echo());
    for i in 1..limit {
        svc.ready().await.unwrap().call(i as u32).await.unwrap();
    }
    assert_eq!(rec.calls(), 0);
    svc.ready().await.unwrap().call(0).await.unwrap();
    assert_eq!(rec.calls(), 1);
    let reason = rec.reason().unwrap();
    assert_eq!(
        reason,
        format!(
            "request-count: {limit} requests >= {limit} (10 + jitter {} of 5)",
            limit - 10
        )
    );
}

#[tokio::test]
async fn poll_ready_and_errors_pass_through() {
    let rec = Recorder::new();
    let failing = service_fn(|x: u32| async move { if x == 0 { Err("zero") } else { Ok(x) } });
    let mut svc = RequestCount::new(1)
        .with_replacer(rec.replacer())
        .layer(failing);
    assert_eq!(svc.ready().await.unwrap().call(0).await, Err("zero"));
    assert_eq!(svc.ready().await.unwrap().call(3).await, Ok(3));
    // tower's ConcurrencyLimit is not ready while its one permit is out: neither are we.
    let mut limited = RequestCount::new(100)
        .with_replacer(rec.replacer())
        .layer(tower::limit::ConcurrencyLimit::new(echo(), 1));
    let fut = limited.ready().await.unwrap().call(1);
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(limited.poll_ready(&mut cx).is_pending());
    assert_eq!(fut.await.unwrap(), 1);
    assert!(limited.poll_ready(&mut cx).is_ready());
}
