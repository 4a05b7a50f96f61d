//! Rolling restarts as the status and `reload --wait` report them: the record, its outcome,
//! and how its canary was judged.

use serde::{Deserialize, Serialize};

/// A rolling restart: what it deployed, when, and how it ended.
///
/// ```no_run
/// # async fn deploy(handle: regiment_core::Handle) {
/// use regiment_core::events::RolloutOutcome;
/// // The last line of a deploy script: start the rollout and wait for its outcome.
/// match handle.rolling_restart_and_wait().await {
///     Some(r) if r.outcome == RolloutOutcome::Done => println!("generation {} is live", r.generation),
///     Some(r) => eprintln!("deploy refused ({:?}): {}", r.outcome, r.why.unwrap_or_default()),
///     None => eprintln!("the master is stopping: no rollout"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RolloutRecord {
    /// The generation rolled out.
    pub generation: u64,
    /// Under way, or how it ended.
    pub outcome: RolloutOutcome,
    /// Why it was aborted or superseded.
    pub why: Option<String>,
    /// Workers of this generation that took a slot.
    pub replaced: u64,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// When it ended, in milliseconds since the Unix epoch.
    pub ended_at_ms: Option<u64>,
    /// How its canary was judged, once it was (see [`crate::Canary`]).
    #[serde(default)]
    pub canary: Option<CanaryVerdict>,
}

/// How a canary was judged: what its workers answered over the window, beside what the good
/// generation's answered over the same window.
///
/// ```
/// use regiment_core::events::{Answers, CanaryVerdict};
/// // A build whose handlers panic answers nothing: its requests failed without a 5xx.
/// let refused = CanaryVerdict {
///     canary: Answers { requests: 1000, responses_5xx: 0, failures: 961 },
///     good: Answers { requests: 2000, responses_5xx: 2, failures: 0 },
///     passed: false,
/// };
/// assert_eq!(refused.canary.failed(), 961);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryVerdict {
    /// The canary's workers.
    pub canary: Answers,
    /// The good generation's workers.
    pub good: Answers,
    /// Whether the rollout went on.
    pub passed: bool,
}

/// Requests answered over a window, and those that failed: answered with a 5xx status, or not
/// answered at all (the handler panicked, the service or the response body failed, the worker
/// gave up its drain with them in flight).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answers {
    /// Requests received.
    pub requests: u64,
    /// Answered with a 5xx status.
    pub responses_5xx: u64,
    /// Ended without a complete response.
    pub failures: u64,
}

impl Answers {
    /// Requests that failed, either way (never more than the requests).
    pub fn failed(&self) -> u64 {
        self.responses_5xx
            .saturating_add(self.failures)
            .min(self.requests)
    }
}

/// How a rolling restart ended, or that it has not.
///
/// ```
/// use regiment_core::events::RolloutOutcome;
/// // Only `Done` means the new generation serves in every slot.
/// assert_eq!(serde_json::to_string(&RolloutOutcome::Superseded).unwrap(), r#""superseded""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RolloutOutcome {
    /// Still replacing workers.
    InProgress,
    /// Every slot ran the new generation to ready and settled: its program is now the good
    /// one.
    Done,
    /// Its workers kept failing, its canary was refused, its `rollout_timeout` passed, or the
    /// master is stopping: the workers not yet replaced stay, and new workers run the good
    /// generation's program.
    Aborted,
    /// A newer rolling restart took over.
    Superseded,
}
