//! When a new worker counts as ready.

use std::fmt;
use std::str::FromStr;

/// When the master counts a new worker as ready, and so may drain the one it replaces.
///
/// ```
/// use regiment_core::Readiness;
/// assert_eq!("manual".parse::<Readiness>(), Ok(Readiness::Manual));
/// assert!("soon".parse::<Readiness>().unwrap_err().contains("listening, started, manual"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Readiness {
    /// Once the worker accepts on its listeners (servers call [`crate::worker::listening`]).
    #[default]
    Listening,
    /// As soon as the worker process has started and attached to its master
    /// ([`crate::worker::attach`], which every worker call and regiment-axum's server make).
    Started,
    /// When the application calls [`crate::worker::ready`] (pools open, caches warm). A worker
    /// that has not called it by the start timeout is killed, and the kill's event says it did
    /// not call it.
    Manual,
}

impl Readiness {
    /// The name used in options and the worker environment.
    ///
    /// ```
    /// use regiment_core::Readiness;
    /// // The name parses back: it is what `REGIMENT_READINESS` takes.
    /// assert_eq!(Readiness::Manual.as_str(), "manual");
    /// assert_eq!(Readiness::Manual.as_str().parse(), Ok(Readiness::Manual));
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Readiness::Listening => "listening",
            Readiness::Started => "started",
            Readiness::Manual => "manual",
        }
    }
}

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Each readiness by its one name: an alias the error message does not list (`ready` once
/// meant `manual`) would let `REGIMENT_READINESS=ready` pass as the readiness whose workers
/// never become ready unless the app calls [`crate::worker::ready`].
impl FromStr for Readiness {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const ALL: [Readiness; 3] = [Readiness::Listening, Readiness::Started, Readiness::Manual];
        let s = s.trim();
        ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            format!("`{s}` is not a readiness; expected one of listening, started, manual")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_readiness_has_one_name() {
        for r in [Readiness::Listening, Readiness::Started, Readiness::Manual] {
            assert_eq!(r.as_str().parse(), Ok(r));
            assert_eq!(format!(" {r} ").parse(), Ok(r));
        }
        for other in ["ready", "Manual", "LISTENING", "listen", ""] {
            let e = other.parse::<Readiness>().unwrap_err();
            assert!(
                e.contains("expected one of listening, started, manual"),
                "{other}: {e}"
            );
        }
    }
}
