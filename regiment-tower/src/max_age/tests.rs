use std::time::{Duration, Instant};

use tower::{Layer, service_fn};

use super::MaxAge;
use super::text::{clock, compact};
use crate::criterion::{Criterion, CriterionLayer, Verdict};
use crate::test_support::{Recorder, memory_lock};

#[test]
fn fires_at_its_age_and_not_before() {
    assert_eq!(MaxAge::hours(1).on_tick(), Verdict::Keep);
    let Some(two_seconds_ago) = Instant::now().checked_sub(Duration::from_secs(2)) else {
        return; // a clock that started under 2 s ago: nothing to test against
    };
    let old = MaxAge::new(Duration::from_secs(1)).since(two_seconds_ago);
    match old.on_tick() {
        Verdict::Replace(reason) => {
            assert!(reason.starts_with("max-age: up "), "{reason}");
            assert!(reason.ends_with("s >= 1s"), "{reason}");
        }
        Verdict::Keep => panic!("2 s >= 1 s"),
    }
    // Not yet, with a splay that pushes the limit past the age.
    let splayed = MaxAge::new(Duration::from_secs(1))
        .splay(Duration::from_secs(3600))
        .since(two_seconds_ago);
    assert_eq!(
        splayed.on_tick().is_replace(),
        splayed.age() >= splayed.limit()
    );
}

#[test]
fn splay_stays_in_its_bounds_and_spreads() {
    let base = Duration::from_secs(6 * 3600);
    let limits: Vec<Duration> = (0..500)
        .map(|_| MaxAge::new(base).splay(Duration::from_secs(60)).limit())
        .collect();
    assert!(
        limits
            .iter()
            .all(|l| *l >= base && *l <= base + Duration::from_secs(60))
    );
    let distinct: std::collections::HashSet<_> = limits.iter().collect();
    assert!(distinct.len() > 400, "{} distinct limits", distinct.len());
}

#[test]
fn the_layer_fires_from_the_sampler_thread_schedule_once() {
    let _serial = memory_lock();
    let rec = Recorder::new();
    let layer = CriterionLayer::with_replacer(MaxAge::new(Duration::ZERO), rec.replacer());
    let _svc = layer.layer(service_fn(|_req: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(()))
    }));
    crate::sampler::run_now();
    crate::sampler::run_now();
    assert_eq!(rec.calls(), 1);
    assert!(rec.reason().unwrap().starts_with("max-age: up "));
    assert!(rec.reason().unwrap().ends_with(">= 0s"));
}

#[test]
fn formats_durations() {
    assert_eq!(clock(Duration::from_secs(6 * 3600 + 59)), "6h 0m");
    assert_eq!(clock(Duration::from_secs(725)), "12m 5s");
    assert_eq!(clock(Duration::from_millis(350)), "350ms");
    assert_eq!(compact(Duration::from_secs(6 * 3600)), "6h");
    assert_eq!(compact(Duration::from_secs(6 * 3600 + 720)), "6h 12m");
    assert_eq!(compact(Duration::from_secs(90)), "1m 30s");
    assert_eq!(compact(Duration::ZERO), "0s");
}
