//! Which criterion made a worker ask for its replacement: a kind from a fixed set, carried
//! beside the free-text reason, so that the master counts replacements by criterion without
//! reading the text.

use serde::{Deserialize, Serialize};

/// The longest custom criterion name the master keeps; longer ones are cut at a char boundary.
/// Room for a type's name (`ServerErrors`) and then some: a worker can send anything.
pub(crate) const MAX_CRITERION_NAME: usize = 128;

/// Which criterion made a worker ask for its replacement, in its `replace-me` message.
///
/// On the wire an object beside the reason: `{"kind":"request-count"}`,
/// `{"kind":"custom","name":"ServerErrors"}`. A request without one (an application's own
/// `worker::request_replacement`, a worker of an earlier build) or with a kind this build does
/// not know (a worker of a later build) reads as [`CriterionKind::Unspecified`]: the request
/// stands, only its criterion is unknown.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CriterionKind {
    /// regiment-tower's `RequestCount`: the worker served its number of requests.
    RequestCount,
    /// regiment-tower's `MemoryFootprint`: the worker's memory passed its threshold.
    MemoryFootprint,
    /// regiment-tower's `MaxAge`: the worker ran for its time.
    MaxAge,
    /// A criterion of the application's own (regiment-tower's `Criterion` trait).
    Custom {
        /// What the criterion is called (its type's name), cut to 128 bytes once the master
        /// has read it.
        name: String,
    },
    /// No criterion named: the application asked by itself, or the worker is of another build.
    #[default]
    #[serde(other)]
    Unspecified,
}

impl CriterionKind {
    /// True for [`CriterionKind::Unspecified`], which is not written on the wire: such a
    /// request reads the same to masters of earlier builds.
    pub(crate) fn is_unspecified(&self) -> bool {
        *self == CriterionKind::Unspecified
    }

    /// The same kind, with a custom name cut to [`MAX_CRITERION_NAME`] bytes.
    pub(crate) fn bounded(self) -> Self {
        match self {
            CriterionKind::Custom { name } => CriterionKind::Custom {
                name: super::bounded::cut(name, MAX_CRITERION_NAME),
            },
            kind => kind,
        }
    }
}
