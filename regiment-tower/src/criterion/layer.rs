use std::fmt;
use std::sync::{Arc, Once, Weak};

use tower_layer::Layer;

use super::judge::Judge;
use super::{Criterion, CriterionService};
use crate::Replacer;
use crate::sampler::{self, Job};

/// Shorthand for the criterion layer: `Replace::when(criterion)`.
///
/// ```
/// use regiment_tower::{MaxAge, Replace};
/// use std::time::Duration;
/// let layer = Replace::when(MaxAge::new(Duration::from_secs(6 * 3600)));
/// assert_eq!(layer.criterion().max_age(), Duration::from_secs(6 * 3600));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Replace;

impl Replace {
    /// A layer that replaces this worker when `criterion` says so:
    /// [`CriterionLayer::new(criterion)`](CriterionLayer::new).
    ///
    /// ```
    /// use regiment_tower::{Criterion, Replace};
    /// struct Never;
    /// impl Criterion for Never {}
    /// let _layer = Replace::when(Never);
    /// ```
    pub fn when<C: Criterion>(criterion: C) -> CriterionLayer<C> {
        CriterionLayer::new(criterion)
    }

    /// A layer that fires `replacer` when `criterion` says so:
    /// [`CriterionLayer::with_replacer`].
    ///
    /// ```
    /// use regiment_tower::{MaxAge, Replace, Replacer};
    /// let layer = Replace::with_replacer(MaxAge::hours(6), Replacer::new(|r| eprintln!("{r}")));
    /// assert!(!layer.replacer().fired());
    /// ```
    pub fn with_replacer<C: Criterion>(criterion: C, replacer: Replacer) -> CriterionLayer<C> {
        CriterionLayer::with_replacer(criterion, replacer)
    }
}

/// A layer that runs a [`Criterion`] and fires its replacer on the first
/// [`Verdict::Replace`](super::Verdict::Replace).
///
/// See the [module docs](crate::criterion).
///
/// ```
/// use regiment_tower::{CriterionLayer, Criterion, Replacer, Verdict};
/// struct Never;
/// impl Criterion for Never {}
/// let layer = CriterionLayer::with_replacer(Never, Replacer::new(|_| {}));
/// assert!(!layer.replacer().fired());
/// ```
pub struct CriterionLayer<C> {
    pub(super) judge: Arc<Judge<C>>,
}

impl<C> Clone for CriterionLayer<C> {
    fn clone(&self) -> Self {
        Self {
            judge: self.judge.clone(),
        }
    }
}

impl<C: Criterion> CriterionLayer<C> {
    /// A layer running `criterion`, firing into the process-wide [`Replacer::worker`].
    ///
    /// ```
    /// use regiment_tower::{CriterionLayer, Criterion};
    /// struct Never;
    /// impl Criterion for Never {}
    /// let _layer = CriterionLayer::new(Never);
    /// ```
    pub fn new(criterion: C) -> Self {
        Self::with_replacer(criterion, Replacer::worker())
    }

    /// A layer running `criterion`, firing into `replacer`.
    ///
    /// ```
    /// use regiment_tower::{CriterionLayer, Criterion, Replacer};
    /// struct Never;
    /// impl Criterion for Never {}
    /// let _layer = CriterionLayer::with_replacer(Never, Replacer::new(|r| eprintln!("{r}")));
    /// ```
    pub fn with_replacer(criterion: C, replacer: Replacer) -> Self {
        Self {
            judge: Arc::new(Judge {
                criterion,
                replacer,
                ticking: Once::new(),
            }),
        }
    }

    /// The criterion (shared by every service of this layer).
    ///
    /// ```
    /// use regiment_tower::{CriterionLayer, Criterion};
    /// struct Named(&'static str);
    /// impl Criterion for Named {}
    /// assert_eq!(CriterionLayer::new(Named("x")).criterion().0, "x");
    /// ```
    pub fn criterion(&self) -> &C {
        &self.judge.criterion
    }

    /// The replacer this layer fires into.
    ///
    /// ```
    /// use regiment_tower::{CriterionLayer, Criterion, Replacer};
    /// struct Never;
    /// impl Criterion for Never {}
    /// assert!(CriterionLayer::new(Never).replacer().same_as(&Replacer::worker()));
    /// ```
    pub fn replacer(&self) -> &Replacer {
        &self.judge.replacer
    }
}

impl<C: fmt::Debug> fmt::Debug for CriterionLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CriterionLayer")
            .field("criterion", &self.judge.criterion)
            .field("replacer", &self.judge.replacer)
            .finish()
    }
}

impl<S, C: Criterion> Layer<S> for CriterionLayer<C> {
    type Service = CriterionService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        // Ticked from when the layer is first used; the sampler holds it weakly, so it stops
        // when the layer and its services are gone.
        let judge = &self.judge;
        judge.ticking.call_once(|| {
            let job: Weak<dyn Job> = Arc::downgrade(judge) as Weak<dyn Job>;
            sampler::register(job, None, judge.criterion.tick_interval());
        });
        CriterionService {
            inner,
            judge: self.judge.clone(),
        }
    }
}
