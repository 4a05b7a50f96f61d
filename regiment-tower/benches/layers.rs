//! Per-request cost of each layer against the bare service (a `service_fn`, and an axum
//! `Router`), and the cost of one memory sample by each method. Results and the command:
//! BENCHMARKS.md at the workspace root.
//!
//! `cargo bench -p regiment-tower --bench layers`
//!
//! Requests are driven by hand (poll_ready, call, poll with a no-op waker) rather than through
//! a runtime, so that what is measured is the service stack and nothing of a scheduler.

// criterion_group! defines an undocumented public function; a bench has no API to document.
#![allow(missing_docs)]

use std::convert::Infallible;
use std::hint::black_box;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion as Bench, criterion_group, criterion_main};
use regiment_tower::{
    Criterion, CriterionLayer, MaxAge, MemoryFootprint, Replacer, RequestCount, Verdict,
};
use tower::{Layer, Service, ServiceBuilder, service_fn};

/// One request through `svc`: ready, call, and the answer (the inner future is ready at once).
#[inline(always)]
fn drive<S: Service<R>, R>(svc: &mut S, req: R) -> Option<S::Response> {
    let mut cx = Context::from_waker(Waker::noop());
    match svc.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        _ => return None,
    }
    match std::pin::pin!(svc.call(req)).poll(&mut cx) {
        Poll::Ready(Ok(res)) => Some(res),
        _ => None,
    }
}

fn bare_u64() -> impl Service<u64, Response = u64, Error = Infallible> + Clone {
    service_fn(|x: u64| async move { Ok::<_, Infallible>(x ^ 1) })
}

fn bare_http()
-> impl Service<http::Request<()>, Response = http::Response<()>, Error = Infallible> + Clone {
    service_fn(
        |_req: http::Request<()>| async move { Ok::<_, Infallible>(http::Response::new(())) },
    )
}

/// A silent replacer for the "after firing" variants: the worker replacer, outside a cluster,
/// would log a warning once.
fn quiet() -> Replacer {
    Replacer::new(|_| {})
}

fn never_memory() -> MemoryFootprint {
    MemoryFootprint::bytes(u64::MAX).with_replacer(quiet())
}

fn never_count() -> RequestCount {
    RequestCount::new(u64::MAX).with_replacer(quiet())
}

#[path = "../tests/support/server_errors.rs"]
mod server_errors;
use server_errors::ServerErrors;

fn per_request(c: &mut Bench) {
    let mut g = c.benchmark_group("per_request_u64");
    let mut req = 0u64;
    let mut bench = |name: &str, mut svc: Box<dyn FnMut(u64) -> Option<u64>>| {
        g.bench_function(name, |b| {
            b.iter(|| {
                req = req.wrapping_add(1);
                black_box(svc(black_box(req)))
            })
        });
    };
    let mut s = bare_u64();
    bench("bare", Box::new(move |r| drive(&mut s, r)));
    let mut s = never_memory().layer(bare_u64());
    bench("memory_footprint", Box::new(move |r| drive(&mut s, r)));
    let mut s = never_count().layer(bare_u64());
    bench("request_count", Box::new(move |r| drive(&mut s, r)));
    let mut s = ServiceBuilder::new()
        .layer(never_memory())
        .layer(never_count())
        .service(bare_u64());
    bench("both", Box::new(move |r| drive(&mut s, r)));
    // After firing: every later request still goes through both layers.
    let fired = quiet();
    let mut s = ServiceBuilder::new()
        .layer(MemoryFootprint::bytes(1).with_replacer(fired.clone()))
        .layer(RequestCount::new(1).with_replacer(fired.clone()))
        .service(bare_u64());
    drive(&mut s, 0);
    assert!(fired.fired());
    bench("both_after_firing", Box::new(move |r| drive(&mut s, r)));
    g.finish();

    let mut g = c.benchmark_group("per_request_http");
    let mut bench = |name: &str, mut svc: Box<dyn FnMut() -> Option<http::Response<()>>>| {
        g.bench_function(name, |b| b.iter(|| black_box(svc())));
    };
    let mut s = bare_http();
    bench(
        "bare",
        Box::new(move || drive(&mut s, http::Request::new(()))),
    );
    let mut s = ServiceBuilder::new()
        .layer(never_memory())
        .layer(never_count())
        .service(bare_http());
    bench(
        "both",
        Box::new(move || drive(&mut s, http::Request::new(()))),
    );
    let mut s =
        CriterionLayer::with_replacer(ServerErrors::<50>::default(), quiet()).layer(bare_http());
    bench(
        "criterion_on_response",
        Box::new(move || drive(&mut s, http::Request::new(()))),
    );
    let mut s = CriterionLayer::with_replacer(MaxAge::hours(6), quiet()).layer(bare_http());
    bench(
        "max_age",
        Box::new(move || drive(&mut s, http::Request::new(()))),
    );
    g.finish();
}

/// The real request path of an axum app: a `Router` with one route, bare and with both layers
/// as an app writes them (`Router::layer`, which wraps each route), driven by hand like the
/// others. The request is built in each iteration, in both cases alike, as a server would.
fn per_request_axum(c: &mut Bench) {
    let mut g = c.benchmark_group("per_request_axum");
    let router = || axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let req = || {
        http::Request::get("/")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let mut bench = |name: &str, mut app: axum::Router| {
        // The handler answers at once, so one poll gives the response: check it does, or the
        // figures would be those of a Pending.
        let status = drive(&mut app, req()).map(|res| res.status());
        assert_eq!(status, Some(http::StatusCode::OK), "{name} answers at once");
        g.bench_function(name, |b| b.iter(|| black_box(drive(&mut app, req()))));
    };
    bench("bare", router());
    // What axum's `Router::layer` costs by itself, whatever the layer: each call wraps every
    // route in a boxed, cloned-per-request service and boxes its future. Two identity layers
    // pay that twice and do nothing else: the baseline for `both`.
    let identity = tower::layer::util::Identity::new;
    bench(
        "two_identity_layers",
        router().layer(identity()).layer(identity()),
    );
    // As the README and hello write it: two `Router::layer` calls.
    bench("both", router().layer(never_memory()).layer(never_count()));
    // Both in one `Router::layer` call, so axum's wrapping is paid once.
    let stack = ServiceBuilder::new()
        .layer(never_memory())
        .layer(never_count());
    bench("one_identity_layer", router().layer(identity()));
    bench("both_in_one_layer_call", router().layer(stack));
    g.finish();
}

/// This process's memory as sysinfo reads it: one process refreshed, its memory only.
#[inline(always)]
fn sysinfo_memory(system: &mut sysinfo::System, pid: sysinfo::Pid) -> Option<u64> {
    system.refresh_processes_specifics(
        sysinfo::ProcessesToUpdate::Some(&[pid]),
        false,
        sysinfo::ProcessRefreshKind::nothing().with_memory(),
    );
    system.process(pid).map(|p| p.memory())
}

fn memory_sample(c: &mut Bench) {
    let mut g = c.benchmark_group("memory_sample");
    let pid = sysinfo::get_current_pid().unwrap();
    let mut system = sysinfo::System::new();
    g.bench_function("sysinfo_refresh_process", |b| {
        b.iter(|| black_box(sysinfo_memory(&mut system, pid)))
    });
    #[cfg(target_os = "linux")]
    {
        let mut statm = regiment_core::plumbing::Statm::open().unwrap();
        g.bench_function("statm_kept_open_pread", |b| {
            b.iter(|| black_box(statm.resident_bytes().unwrap()))
        });
        g.bench_function("statm_open_read_close", |b| {
            b.iter(|| black_box(std::fs::read("/proc/self/statm").unwrap()))
        });
        let mut smaps = regiment_tower::sampler::SmapsRollup::open().unwrap();
        g.bench_function("smaps_rollup_kept_open_pread", |b| {
            b.iter(|| black_box(smaps.read().unwrap()))
        });
        // The rollup walks every resident page's table entry: its cost grows with the heap,
        // statm's does not. 256 MiB of touched pages, as a leaking worker would have.
        let ballast = black_box(vec![1u8; 256 << 20]);
        g.bench_function("statm_kept_open_pread_plus_256MiB", |b| {
            b.iter(|| black_box(statm.resident_bytes().unwrap()))
        });
        g.bench_function("smaps_rollup_kept_open_pread_plus_256MiB", |b| {
            b.iter(|| black_box(smaps.read().unwrap()))
        });
        g.bench_function("sysinfo_refresh_process_plus_256MiB", |b| {
            b.iter(|| black_box(sysinfo_memory(&mut system, pid)))
        });
        drop(black_box(ballast));
    }
    g.finish();
}

fn config() -> Bench {
    Bench::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = per_request, per_request_axum, memory_sample
}
criterion_main!(benches);
