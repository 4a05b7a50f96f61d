use std::convert::Infallible;
use std::sync::Arc;
use std::task::Context;
use std::time::Duration;

use tower::{Layer, Service, ServiceBuilder, service_fn};

use super::MemoryFootprint;
use super::watch::{MIB, fmt_mb};
use crate::sampler::{self, Measure};
use crate::test_support::{Recorder, call_now, memory_lock, wait_until};

fn echo() -> impl Service<u32, Response = u32, Error = Infallible, Future: Send> + Clone {
    service_fn(|x: u32| async move { Ok::<_, Infallible>(x) })
}

/// RSS right now, sampled through the sampler as the layers see it.
fn rss_now() -> u64 {
    sampler::run_now();
    sampler::current(Measure::Rss).expect("a layer registered RSS")
}

#[test]
fn fires_once_past_the_threshold_and_not_below() {
    let _serial = memory_lock();
    let rec = Recorder::new();
    // Keep the thread out of it: an hour between its samples, so only run_now samples.
    let hour = Duration::from_secs(3600);
    let _probe = MemoryFootprint::bytes(u64::MAX)
        .with_interval(hour)
        .with_replacer(Recorder::new().replacer())
        .layer(echo());
    let threshold = rss_now() + 64 * MIB;
    let mut svc = MemoryFootprint::bytes(threshold)
        .with_interval(hour)
        .with_replacer(rec.replacer())
        .layer(echo());
    for i in 0..10 {
        assert_eq!(call_now(&mut svc, i).unwrap(), i);
    }
    assert_eq!(rec.calls(), 0, "below the threshold: no fire");

    // Grow by 128 MiB of touched pages, then sample. black_box: the ballast is never read,
    // and a release build could otherwise drop the allocation or never touch its pages.
    let ballast = std::hint::black_box(vec![7u8; 128 << 20]);
    assert!(rss_now() > threshold, "the ballast is resident");
    for i in 0..10 {
        assert_eq!(call_now(&mut svc, i).unwrap(), i);
    }
    assert_eq!(rec.calls(), 1, "fired exactly once");
    let reason = rec.reason().unwrap();
    assert!(reason.starts_with("memory-footprint: rss "), "{reason}");
    assert!(
        reason.ends_with(&format!("> {}", fmt_mb(threshold))),
        "{reason}"
    );
    drop(std::hint::black_box(ballast));
}

#[test]
fn the_request_path_fires_without_the_sampler() {
    let _serial = memory_lock();
    let rec = Recorder::new();
    // Registration samples RSS once; the thread will not sample again for an hour, and
    // nothing here calls run_now: only the request can fire.
    let mut svc = ServiceBuilder::new()
        .layer(
            MemoryFootprint::bytes(1)
                .with_interval(Duration::from_secs(3600))
                .with_replacer(rec.replacer()),
        )
        .service(echo());
    assert_eq!(rec.calls(), 0);
    assert_eq!(call_now(&mut svc, 1).unwrap(), 1);
    assert_eq!(rec.calls(), 1);
    assert!(rec.reason().unwrap().ends_with("> 0.0 MB"));
}

#[test]
fn the_sampler_fires_an_idle_worker() {
    let _serial = memory_lock();
    let rec = Recorder::new();
    let _svc = MemoryFootprint::mb(1)
        .with_interval(Duration::from_secs(3600))
        .with_replacer(rec.replacer())
        .layer(echo());
    assert_eq!(rec.calls(), 0, "registration alone does not fire");
    sampler::run_now();
    assert_eq!(rec.calls(), 1);
    sampler::run_now();
    assert_eq!(rec.calls(), 1);
}

#[test]
fn several_layers_fire_one_replacer_once() {
    let _serial = memory_lock();
    let rec = Recorder::new();
    let layer = |m| {
        MemoryFootprint::bytes(1)
            .with_measure(m)
            .with_replacer(rec.replacer())
    };
    let mut svc = ServiceBuilder::new()
        .layer(layer(Measure::Rss))
        .layer(layer(Measure::Rss))
        .layer(layer(Measure::Pss))
        .layer(layer(Measure::Uss))
        .service(echo());
    for i in 0..100 {
        call_now(&mut svc, i).unwrap();
    }
    sampler::run_now();
    assert_eq!(rec.calls(), 1);
}

#[cfg(target_os = "linux")]
#[test]
fn pss_and_uss_are_sampled_on_linux() {
    let _serial = memory_lock();
    let _svc = MemoryFootprint::mb(u64::MAX >> 20)
        .with_measure(Measure::Uss)
        .with_replacer(Recorder::new().replacer())
        .layer(echo());
    let _svc2 = MemoryFootprint::mb(u64::MAX >> 20)
        .with_measure(Measure::Pss)
        .with_replacer(Recorder::new().replacer())
        .layer(echo());
    sampler::run_now();
    let uss = sampler::current(Measure::Uss).unwrap();
    let pss = sampler::current(Measure::Pss).unwrap();
    assert!(uss > 0 && uss <= pss, "uss {uss} pss {pss}");
}

#[tokio::test]
async fn poll_ready_and_errors_pass_through() {
    use tower::ServiceExt;
    let rec = Recorder::new();
    let failing = service_fn(|x: u32| async move { if x == 0 { Err("zero") } else { Ok(x) } });
    let mut svc = MemoryFootprint::bytes(u64::MAX)
        .with_replacer(rec.replacer())
        .layer(failing);
    assert_eq!(svc.ready().await.unwrap().call(0).await, Err("zero"));
    assert_eq!(svc.ready().await.unwrap().call(3).await, Ok(3));
    // tower's ConcurrencyLimit is not ready while its one permit is out: neither are we.
    let mut limited = MemoryFootprint::bytes(u64::MAX)
        .with_replacer(rec.replacer())
        .layer(tower::limit::ConcurrencyLimit::new(echo(), 1));
    let fut = limited.ready().await.unwrap().call(1);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(limited.poll_ready(&mut cx).is_pending());
    assert_eq!(fut.await.unwrap(), 1);
    assert!(limited.poll_ready(&mut cx).is_ready());
    assert_eq!(rec.calls(), 0);
}

#[test]
fn the_sampler_forgets_a_watch_once_its_layers_and_services_are_dropped() {
    // What a master relies on: it drops the app it was given, and its sampler thread must
    // then stop sampling for it (and park once nothing is left).
    let _serial = memory_lock();
    let rec = Recorder::new();
    let layer = MemoryFootprint::bytes(u64::MAX)
        .with_interval(Duration::from_millis(1))
        .with_replacer(rec.replacer());
    let svc = layer.layer(echo());
    // The weak reference keeps the allocation, so its address cannot be reused by a job
    // registered later by another test.
    let watch = Arc::downgrade(&layer.watch);
    assert!(sampler::is_scheduled(watch.as_ptr()));
    drop((layer, svc));
    assert!(watch.upgrade().is_none());
    // The thread wakes within a millisecond for this watch's interval, and prunes it.
    wait_until("the dropped watch left the schedule", || {
        !sampler::is_scheduled(watch.as_ptr())
    });
    assert_eq!(rec.calls(), 0);
}

#[test]
fn a_fired_watch_leaves_the_schedule_while_its_layer_lives() {
    let _serial = memory_lock();
    let rec = Recorder::new();
    let layer = MemoryFootprint::bytes(1)
        .with_interval(Duration::from_millis(1))
        .with_replacer(rec.replacer());
    let svc = layer.layer(echo());
    let watch = Arc::downgrade(&layer.watch);
    // The thread fires it (1 byte: always above), then drops it from its schedule.
    wait_until("the watch fired and left the schedule", || {
        rec.calls() > 0 && !sampler::is_scheduled(watch.as_ptr())
    });
    assert_eq!(rec.calls(), 1);
    // Left for having fired, not for having been dropped.
    assert!(watch.upgrade().is_some());
    drop((layer, svc));
}

#[test]
fn formats_megabytes() {
    assert_eq!(fmt_mb(750 * MIB), "750 MB");
    assert_eq!(fmt_mb(812 * MIB + MIB / 2), "812.5 MB");
}
