//! A layer's shared state: the criterion, the replacer its verdicts fire, and its tick.

use std::any::TypeId;
use std::sync::Once;

use regiment_core::plumbing::CriterionKind;

use super::{Criterion, Verdict};
use crate::sampler::{Job, Measure};
use crate::{MaxAge, Replacer};

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
            self.replacer.fire_for(kind_of::<C>, || reason);
        }
    }
}

/// The kind of criterion `C` is, for the master's metrics: [`MaxAge`] is built in (made with
/// the same trait), any other is the application's own, named after its type without path or
/// generic arguments (`ServerErrors`). The master counts all of those as `custom`: the name is
/// for its books, never a label.
pub(super) fn kind_of<C: 'static>() -> CriterionKind {
    if TypeId::of::<C>() == TypeId::of::<MaxAge>() {
        return CriterionKind::MaxAge;
    }
    let full = std::any::type_name::<C>();
    let path = full.split('<').next().unwrap_or(full);
    let name = path.rsplit("::").next().filter(|n| !n.is_empty());
    CriterionKind::Custom {
        name: name.unwrap_or(full).to_owned(),
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
