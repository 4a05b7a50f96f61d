//! Firing a criterion: at most once, whatever how many layers fire.
//!
//! Every layer of this crate hands its verdict to a [`Replacer`]. A replacer fires once: the
//! first call stores the reason and passes it on; every later call, from any layer or thread,
//! is one relaxed load and returns `false`. The reason string is built only by the call that
//! fires, so a criterion that keeps matching costs nothing more than that load.
//!
//! [`Replacer::worker`] (the default of every layer) is one per process and passes the reason
//! to the master as [`regiment_core::worker::request_replacement`] does (it shows in the
//! `replace requested` event and in the worker's status), naming the criterion that fired for
//! the master's metrics: this crate's layers by kind, a [`Criterion`](crate::Criterion) of your
//! own by its type's name (counted together as `custom`). Outside a regiment
//! cluster firing it is a no-op that logs one warning naming the reason
//! (`replacement criterion fired outside a regiment cluster; ignored: request-count: ...`), so
//! the layers can stay in an app run on its own (tests, `cargo run` without a master).
//!
//! [`Replacer::new`] makes a replacer with a callback of your own instead: a scope of its own
//! for "at most once", used by tests and by programs that want to observe or relay the
//! decision.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use regiment_tower::Replacer;
//!
//! let calls = Arc::new(AtomicUsize::new(0));
//! let seen = calls.clone();
//! let replacer = Replacer::new(move |reason| {
//!     assert_eq!(reason, "disk-full: 99% >= 95%");
//!     seen.fetch_add(1, Ordering::Relaxed);
//! });
//! assert!(replacer.fire(|| "disk-full: 99% >= 95%".to_string()));
//! assert!(!replacer.fire(|| unreachable!("only the first call builds its reason")));
//! assert_eq!(calls.load(Ordering::Relaxed), 1);
//! assert_eq!(replacer.reason(), Some("disk-full: 99% >= 95%"));
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};

use regiment_core::plumbing::CriterionKind;

type Callback = Box<dyn Fn(&str) + Send + Sync>;

/// Where fired criteria go, at most once. Cheap to clone (an `Arc`); clones share the once.
///
/// See the [module docs](crate::fire).
///
/// ```
/// use regiment_tower::{Replacer, RequestCount};
/// let replacer = Replacer::new(|reason| eprintln!("{reason}"));
/// let _layer = RequestCount::new(1000).with_replacer(replacer.clone());
/// assert!(!replacer.fired());
/// ```
#[derive(Clone)]
pub struct Replacer {
    inner: Arc<Inner>,
}

struct Inner {
    fired: AtomicBool,
    reason: OnceLock<String>,
    /// `None`: the process-wide worker replacer, which calls regiment-core.
    callback: Option<Callback>,
}

static WORKER: LazyLock<Replacer> = LazyLock::new(|| Replacer {
    inner: Arc::new(Inner {
        fired: AtomicBool::new(false),
        reason: OnceLock::new(),
        callback: None,
    }),
});

impl Replacer {
    /// The process-wide replacer that asks the regiment master for this worker's replacement,
    /// through [`regiment_core::worker::request_replacement`]. All layers use it unless told
    /// otherwise, so however many of them fire, one request is sent.
    ///
    /// ```
    /// let a = regiment_tower::Replacer::worker();
    /// let b = regiment_tower::Replacer::worker();
    /// assert!(a.same_as(&b));
    /// ```
    pub fn worker() -> Self {
        WORKER.clone()
    }

    /// A replacer of its own that calls `callback` with the reason, once. Layers given the same
    /// replacer (or clones of it) fire it at most once between them.
    ///
    /// ```
    /// let replacer = regiment_tower::Replacer::new(|reason| eprintln!("would replace: {reason}"));
    /// assert!(!replacer.fired());
    /// ```
    pub fn new(callback: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            inner: Arc::new(Inner {
                fired: AtomicBool::new(false),
                reason: OnceLock::new(),
                callback: Some(Box::new(callback)),
            }),
        }
    }

    /// Fires with the reason `reason()` builds, if nothing fired this replacer before; returns
    /// whether this call fired. `reason` runs only in the call that fires.
    ///
    /// ```
    /// let replacer = regiment_tower::Replacer::new(|_| {});
    /// assert!(replacer.fire(|| "first".into()));
    /// assert!(!replacer.fire(|| "second".into()));
    /// assert_eq!(replacer.reason(), Some("first"));
    /// ```
    // Inline: a fired layer calls this on every request, and its first load is all that runs
    // then. Without the hint, whether it is inlined depends on how the crate is split into
    // codegen units (9 more instructions per request once split into modules).
    #[inline]
    pub fn fire(&self, reason: impl FnOnce() -> String) -> bool {
        self.fire_for(|| CriterionKind::Unspecified, reason)
    }

    /// [`Replacer::fire`] on behalf of a criterion, which the worker replacer names to the
    /// master; `criterion` runs only in the call that fires, and only for the worker replacer.
    #[inline]
    pub(crate) fn fire_for(
        &self,
        criterion: impl FnOnce() -> CriterionKind,
        reason: impl FnOnce() -> String,
    ) -> bool {
        // The load first: once fired, every later call is a read of a shared cache line, not
        // a write that would bounce it between cores on each request.
        if self.inner.fired.load(Ordering::Relaxed) || self.inner.fired.swap(true, Ordering::AcqRel)
        {
            return false;
        }
        let reason = self.inner.reason.get_or_init(reason);
        match &self.inner.callback {
            Some(callback) => callback(reason),
            None if regiment_core::worker::is_worker() => {
                regiment_core::plumbing::request_replacement_for(criterion(), reason.clone());
            }
            // A master holds the app it supervises: nothing to replace, nothing to warn of.
            None if regiment_core::plumbing::is_supervising() => {
                tracing::debug!(reason, "criterion fired in the master; ignored");
            }
            None => outside_a_cluster(reason),
        }
        true
    }

    /// True once this replacer has fired.
    ///
    /// ```
    /// let replacer = regiment_tower::Replacer::new(|_| {});
    /// assert!(!replacer.fired());
    /// replacer.fire(|| "r".into());
    /// assert!(replacer.fired());
    /// ```
    pub fn fired(&self) -> bool {
        self.inner.fired.load(Ordering::Relaxed)
    }

    /// The reason it fired with, once it has (and its callback has been called).
    ///
    /// ```
    /// let replacer = regiment_tower::Replacer::new(|_| {});
    /// assert_eq!(replacer.reason(), None);
    /// ```
    pub fn reason(&self) -> Option<&str> {
        self.inner.reason.get().map(String::as_str)
    }

    /// True if `self` and `other` are the same replacer (fire at most once between them).
    ///
    /// ```
    /// use regiment_tower::Replacer;
    /// let r = Replacer::new(|_| {});
    /// assert!(r.same_as(&r.clone()));
    /// assert!(!r.same_as(&Replacer::new(|_| {})));
    /// ```
    pub fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// The process-wide replacer fired in a process that no regiment master started.
///
/// regiment-core is not called: its own no-op would log a second warning, without the reason,
/// and the reason is what tells a person running the app on its own which threshold their
/// configuration crosses. This runs once per process (the replacer fires once), so it is one
/// warning however many layers fire.
#[cold]
#[inline(never)]
fn outside_a_cluster(reason: &str) {
    tracing::warn!(
        reason,
        "replacement criterion fired outside a regiment cluster; ignored: {reason}"
    );
}

impl Default for Replacer {
    /// [`Replacer::worker`].
    fn default() -> Self {
        Self::worker()
    }
}

impl fmt::Debug for Replacer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replacer")
            .field(
                "kind",
                &if self.inner.callback.is_some() {
                    "callback"
                } else {
                    "worker"
                },
            )
            .field("fired", &self.fired())
            .field("reason", &self.reason())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::thread;

    #[test]
    fn fires_once_across_threads_and_clones() {
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let sink = reasons.clone();
        let replacer = Replacer::new(move |r| sink.lock().unwrap().push(r.to_string()));
        let winners: usize = thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let r = replacer.clone();
                    s.spawn(move || usize::from(r.fire(|| format!("thread {i}"))))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(winners, 1);
        let reasons = reasons.lock().unwrap();
        assert_eq!(reasons.len(), 1);
        assert_eq!(replacer.reason(), Some(reasons[0].as_str()));
    }

    #[test]
    fn separate_replacers_are_separate_scopes() {
        let a = Replacer::new(|_| {});
        let b = Replacer::new(|_| {});
        assert!(a.fire(|| "a".into()));
        assert!(b.fire(|| "b".into()));
        assert!(!a.same_as(&b));
        assert!(Replacer::worker().same_as(&Replacer::default()));
    }
}
