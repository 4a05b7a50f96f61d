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
    /// As soon as the worker process has started and taken its IPC channel.
    Started,
    /// When the application calls [`crate::worker::ready`] (pools open, caches warm).
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

impl FromStr for Readiness {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "listening" => Ok(Readiness::Listening),
            "started" => Ok(Readiness::Started),
            "manual" | "ready" => Ok(Readiness::Manual),
            other => Err(format!(
                "`{other}` is not a readiness; expected one of listening, started, manual"
            )),
        }
    }
}
