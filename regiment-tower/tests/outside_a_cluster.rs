//! Criteria firing through the process-wide [`Replacer::worker`] in a process that no regiment
//! master started: every request is still served, the replacer fires once with the reason of
//! the first criterion to fire, and exactly one warning, naming that reason, is logged.
//!
//! A test file of its own (so a process of its own): `Replacer::worker()` fires once per
//! process, and a capturing subscriber must see every warning of the process.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use regiment_tower::{Criterion, MemoryFootprint, Replace, Replacer, RequestCount, Verdict};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Every event of the process at WARN or above: (level, message and fields as text).
fn warnings() -> &'static Mutex<Vec<(Level, String)>> {
    static WARNINGS: OnceLock<Mutex<Vec<(Level, String)>>> = OnceLock::new();
    WARNINGS.get_or_init(Default::default)
}

/// A global subscriber (the sampler thread logs from its own thread) that keeps warnings.
struct Capture;

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::WARN
    }
    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _span: &Id, _values: &Record<'_>) {}
    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut text = Text(String::new());
        event.record(&mut text);
        warnings()
            .lock()
            .unwrap()
            .push((*event.metadata().level(), text.0));
    }
    fn enter(&self, _span: &Id) {}
    fn exit(&self, _span: &Id) {}
}

/// A custom criterion: replace at the `n`th request.
struct NthRequest(AtomicU64, u64);

impl Criterion for NthRequest {
    const ON_RESPONSE: bool = false;
    fn on_request<B>(&self, _req: &http::Request<B>) -> Verdict {
        let seen = self.0.fetch_add(1, Relaxed) + 1;
        Verdict::replace_if(seen >= self.1, || {
            format!("nth-request: {seen} >= {}", self.1)
        })
    }
}

#[tokio::test(flavor = "current_thread")]
async fn criteria_fire_once_with_one_warning_naming_the_reason_and_every_request_is_served() {
    tracing::subscriber::set_global_default(Capture).expect("the only subscriber");
    assert!(!regiment_core::worker::is_worker());
    let worker = Replacer::worker();
    assert!(!worker.fired());

    // All on the default, process-wide replacer. Outermost first: the custom criterion fires at
    // the first request, before the memory footprint (1 byte: always above) is checked in the
    // same request; the request count is reached at the second. From then on the memory watch
    // is above its threshold at every request, and again when the sampler runs it. An hour
    // between samples: only the requests and run_now below check memory, so the sampler thread
    // cannot fire before the custom criterion.
    let mut svc = ServiceBuilder::new()
        .layer(Replace::when(NthRequest(AtomicU64::new(0), 1)))
        .layer(RequestCount::new(2))
        .layer(MemoryFootprint::bytes(1).with_interval(Duration::from_secs(3600)))
        .service(service_fn(|req: http::Request<u32>| async move {
            Ok::<_, Infallible>(http::Response::new(*req.body() + 1))
        }));
    assert!(!worker.fired(), "nothing fires before a request");

    let res = svc
        .ready()
        .await
        .unwrap()
        .call(http::Request::new(0))
        .await
        .unwrap();
    assert_eq!(*res.body(), 1, "the request that fires is served");
    let first = "nth-request: 1 >= 1";
    assert_eq!(worker.reason(), Some(first), "the first criterion to fire");

    for i in 1..20 {
        let res = svc
            .ready()
            .await
            .unwrap()
            .call(http::Request::new(i))
            .await
            .unwrap();
        assert_eq!(*res.body(), i + 1, "every request is served");
    }
    regiment_tower::sampler::run_now();
    assert_eq!(worker.reason(), Some(first), "fired once");
    assert!(!regiment_core::worker::replacement_requested());

    let warnings = warnings().lock().unwrap().clone();
    assert_eq!(warnings.len(), 1, "exactly one warning: {warnings:?}");
    let (level, text) = &warnings[0];
    assert_eq!(*level, Level::WARN);
    assert!(
        text.contains(&format!(
            "replacement criterion fired outside a regiment cluster; ignored: {first}"
        )),
        "{text}"
    );
}
