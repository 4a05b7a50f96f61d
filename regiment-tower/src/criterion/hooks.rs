//! The criterion trait: the hooks a layer calls, each with a default that keeps the worker.

use std::time::Duration;

use super::Verdict;

/// A replacement criterion. Every hook has a default that keeps the worker; a criterion
/// implements the one or two it needs. See the [module docs](crate::criterion) for two complete
/// criteria in ten lines each.
///
/// The hooks run on the request path (`on_request`, `on_response`) or on the sampler thread
/// (`on_tick`): keep them to a few atomic operations, no lock, no I/O.
pub trait Criterion: Send + Sync + 'static {
    /// Whether the layer shows responses to [`on_response`](Criterion::on_response). Leave it
    /// `true` if you implement `on_response`. A criterion that does not can set it to `false`:
    /// the response future then carries no reference to the criterion, which saves an atomic
    /// reference-count increment and decrement per request (about 20 ns on the reference
    /// machine, `BENCHMARKS.md`). [`MaxAge`](crate::MaxAge) does.
    ///
    /// ```
    /// use regiment_tower::{Criterion, Verdict};
    /// struct Idle;
    /// impl Criterion for Idle {
    ///     const ON_RESPONSE: bool = false;
    ///     fn on_tick(&self) -> Verdict { Verdict::Keep }
    /// }
    /// ```
    const ON_RESPONSE: bool = true;

    /// Called as each request reaches the layer, before the inner service sees it.
    ///
    /// ```
    /// use regiment_tower::{Criterion, Verdict};
    /// struct NoTrace;
    /// impl Criterion for NoTrace {
    ///     fn on_request<B>(&self, req: &http::Request<B>) -> Verdict {
    ///         Verdict::replace_if(req.method() == http::Method::TRACE, || "no-trace: got TRACE".into())
    ///     }
    /// }
    /// let req = http::Request::builder().method("TRACE").body(()).unwrap();
    /// assert!(NoTrace.on_request(&req).is_replace());
    /// ```
    fn on_request<B>(&self, req: &http::Request<B>) -> Verdict {
        let _ = req;
        Verdict::Keep
    }

    /// Called with each successful response of the inner service, before it is returned
    /// (unless [`ON_RESPONSE`](Criterion::ON_RESPONSE) is `false`).
    /// (An inner service's `Err` is passed through without a call: with axum and hyper errors
    /// are not responses.)
    ///
    /// ```
    /// use regiment_tower::{Criterion, Verdict};
    /// struct Teapot;
    /// impl Criterion for Teapot {
    ///     fn on_response<B>(&self, res: &http::Response<B>) -> Verdict {
    ///         Verdict::replace_if(res.status().as_u16() == 418, || "teapot: 418".into())
    ///     }
    /// }
    /// let res = http::Response::builder().status(418).body(()).unwrap();
    /// assert!(Teapot.on_response(&res).is_replace());
    /// ```
    fn on_response<B>(&self, res: &http::Response<B>) -> Verdict {
        let _ = res;
        Verdict::Keep
    }

    /// Called from the background thread every [`tick_interval`](Criterion::tick_interval),
    /// with or without traffic, while a service of the layer exists.
    ///
    /// ```
    /// use regiment_tower::{Criterion, Verdict};
    /// struct Always;
    /// impl Criterion for Always {
    ///     fn on_tick(&self) -> Verdict { Verdict::replace("always: 1 >= 1") }
    /// }
    /// assert!(Always.on_tick().is_replace());
    /// ```
    fn on_tick(&self) -> Verdict {
        Verdict::Keep
    }

    /// How often [`on_tick`](Criterion::on_tick) runs. Default: every second.
    ///
    /// ```
    /// use regiment_tower::{Criterion, Verdict};
    /// struct Idle;
    /// impl Criterion for Idle {}
    /// assert_eq!(Idle.tick_interval(), std::time::Duration::from_secs(1));
    /// ```
    fn tick_interval(&self) -> Duration {
        Duration::from_secs(1)
    }
}
