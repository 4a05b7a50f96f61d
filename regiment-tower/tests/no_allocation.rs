//! The performance contract, the part a test can check without a clock: the layers allocate
//! nothing per request, before or after firing. (No lock and no syscall hold by construction:
//! the request path is relaxed atomics; BENCHMARKS.md has the nanoseconds.)
//!
//! A counting global allocator counts, per thread, the allocations made while a request goes
//! through a stack; each test runs on its own thread, so the tests do not see each other.

// A counting global allocator: GlobalAlloc is an unsafe trait (SAFETY comments in
// support/counting_allocator.rs).
#![allow(unsafe_code)]

use std::convert::Infallible;

use regiment_tower::{
    Criterion, CriterionLayer, MaxAge, MemoryFootprint, Replacer, RequestCount, Verdict,
};
use tower::{Layer, Service, ServiceBuilder, service_fn};

#[path = "support/counting_allocator.rs"]
mod counting_allocator;

use counting_allocator::{Counting, allocations_for};

#[global_allocator]
static GLOBAL: Counting = Counting;

fn bare_u64() -> impl Service<u64, Response = u64, Error = Infallible> + Clone {
    service_fn(|x: u64| async move { Ok::<_, Infallible>(x) })
}

fn bare_http()
-> impl Service<http::Request<()>, Response = http::Response<()>, Error = Infallible> + Clone {
    service_fn(|_req: http::Request<()>| async { Ok::<_, Infallible>(http::Response::new(())) })
}

#[test]
fn the_bare_service_allocates_nothing_so_the_count_is_the_layers() {
    let mut svc = bare_u64();
    assert_eq!(allocations_for(&mut svc, || 1, 1000), 0);
    let mut svc = bare_http();
    assert_eq!(
        allocations_for(&mut svc, || http::Request::new(()), 1000),
        0
    );
}

#[test]
fn the_counter_sees_an_allocation() {
    // The instrument works: a service that allocates per request is counted.
    let mut svc = service_fn(|x: u64| async move { Ok::<_, Infallible>(vec![x; 4]) });
    assert_eq!(allocations_for(&mut svc, || 1, 10), 10);
}

#[test]
fn memory_footprint_and_request_count_allocate_nothing_before_or_after_firing() {
    let replacer = Replacer::new(|_| {});
    let mut svc = ServiceBuilder::new()
        .layer(MemoryFootprint::bytes(u64::MAX).with_replacer(replacer.clone()))
        .layer(RequestCount::new(5000).with_replacer(replacer.clone()))
        .service(bare_u64());
    assert_eq!(allocations_for(&mut svc, || 1, 4999), 0);
    assert!(!replacer.fired());
    // The request that fires builds the reason string: the one allocation, once.
    let firing = allocations_for(&mut svc, || 1, 1);
    assert!(replacer.fired());
    assert!(firing >= 1);
    assert_eq!(allocations_for(&mut svc, || 1, 1000), 0);

    let fired = Replacer::new(|_| {});
    let mut svc = MemoryFootprint::bytes(1)
        .with_replacer(fired.clone())
        .layer(bare_u64());
    allocations_for(&mut svc, || 1, 1);
    assert!(fired.fired());
    assert_eq!(allocations_for(&mut svc, || 1, 1000), 0);
}

#[path = "support/server_errors.rs"]
mod server_errors;
use server_errors::ServerErrors;

#[test]
fn criterion_layers_allocate_nothing_per_request() {
    let mut svc =
        CriterionLayer::with_replacer(ServerErrors::<50>::default(), Replacer::new(|_| {}))
            .layer(bare_http());
    assert_eq!(
        allocations_for(&mut svc, || http::Request::new(()), 1000),
        0
    );
    let mut svc =
        CriterionLayer::with_replacer(MaxAge::hours(6), Replacer::new(|_| {})).layer(bare_http());
    assert_eq!(
        allocations_for(&mut svc, || http::Request::new(()), 1000),
        0
    );
}
