//! A layer's shared state: the criterion, the replacer its verdicts fire, and its tick.

use std::sync::Once;

use super::{Criterion, Verdict};
use crate::Replacer;
use crate::sampler::{Job, Measure};

/// The criterion of one [`CriterionLayer`](super::CriterionLayer), shared by its clones,
/// services and response futures, and held weakly by the sampler (which ticks it).
pub(super) struct Judge<C> {
    pub(super) criterion: C,
    pub(super) replacer: Replacer,
    pub(super) ticking: Once,
}

impl<C: Criterion> Judge<C> {
    /// False once the replacer has fired: the criterion is then not asked again.
    #[inline]
    pub(super) fn live(&self) -> bool {
        !self.replacer.fired()
    }

    #[inline]
    pub(super) fn act_on(&self, verdict: Verdict) {
        if let Verdict::Replace(reason) = verdict {
            self.replacer.fire(|| reason);
        }
    }
}

impl<C: Criterion> Job for Judge<C> {
    fn measure(&self) -> Option<Measure> {
        None
    }

    fn run(&self, _bytes: u64) {
        if self.live() {
            self.act_on(self.criterion.on_tick());
        }
    }

    fn done(&self) -> bool {
        !self.live()
    }
}
