//! The policy's state handed from the old master to the new one (issue 23, item 3):
//! [`Policy::snapshot`] writes everything the policy holds into a [`PolicyState`], which the
//! driver serializes ([`PolicyState::to_json`]) into the memfd the new master reads
//! ([`PolicyState::from_json`]) before it does anything else; [`Policy::restore`] rebuilds the
//! policy from it.
//!
//! - **Versioned.** The state carries [`STATE_VERSION`]; a master reads its own and the
//!   earlier ones it knows to be its own less some fields (`state::OLDEST_READ`: version 1 is
//!   version 2 without the memory books, which start empty), and says which it found and which
//!   it reads. Bad input is an error ([`RestoreError`]), never a panic,
//!   and never a policy half restored: the state is checked whole before the policy is built.
//! - **Time.** Instants are not portable; each is written as an offset from the snapshot's
//!   `now`, and rebuilt on the instant of the snapshot as the new master's clock reads it
//!   ([`state::Offset`]; the driver knows how long the exec took).
//! - **Quiet.** The snapshot is taken with every effect carried out and every spawn answered
//!   (the driver takes it right after it polled the last effect); it refuses otherwise
//!   ([`SnapshotRefusal`]): an effect in no one's hands would be lost.
//! - **Options.** The new master may be configured otherwise (a new build, new options): its
//!   [`PolicyConfig`] decides from now on. A worker count other than the old master's
//!   configured one is reached by the scale command's own path; one scaled at runtime is kept
//!   when the option did not change. Deadlines already set stay as they were set.
//!
//! `state.rs` holds the format, `encode.rs` the snapshot, `decode.rs` the checks and the
//! rebuilt books.

mod decode;
mod encode;
mod error;
mod state;

use std::fmt;
use std::time::Instant;

pub(crate) use error::RestoreError;
pub(crate) use state::{PolicyState, STATE_VERSION};

use super::ids::WorkerId;
use super::rollout::Stage;
use super::{Control, Policy, PolicyConfig};

/// Why the policy cannot be snapshotted now: the driver carries out what is left, then asks
/// again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SnapshotRefusal {
    /// Effects polled by no one yet.
    EffectsPending(usize),
    /// A spawn handed to the driver and not answered yet.
    SpawnUnanswered(WorkerId),
}

impl fmt::Display for SnapshotRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotRefusal::EffectsPending(n) => {
                write!(f, "{n} effects of the policy are not carried out yet")
            }
            SnapshotRefusal::SpawnUnanswered(id) => {
                write!(f, "the spawn of worker {id} is not answered yet")
            }
        }
    }
}

impl PolicyState {
    /// The state as the memfd holds it.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a policy state serializes: plain data, string keys")
    }

    /// Reads a state written by [`PolicyState::to_json`]: its version first, so that a state
    /// of another version is refused as such, whatever its shape.
    pub(crate) fn from_json(bytes: &[u8]) -> Result<Self, RestoreError> {
        #[derive(serde::Deserialize)]
        struct Versioned {
            version: u32,
        }
        let Versioned { version } = serde_json::from_slice(bytes)
            .map_err(|e| RestoreError::Malformed(format!("no format version: {e}")))?;
        check_version(version)?;
        serde_json::from_slice(bytes).map_err(|e| RestoreError::Malformed(e.to_string()))
    }
}

fn check_version(found: u32) -> Result<(), RestoreError> {
    if (state::OLDEST_READ..=STATE_VERSION).contains(&found) {
        Ok(())
    } else {
        Err(RestoreError::Version {
            found,
            expected: STATE_VERSION,
        })
    }
}

impl Policy {
    /// Everything the policy holds at `now`, for the new master; refused while an effect is
    /// left to carry out or a spawn to answer. Changes nothing: a master whose handover fails
    /// goes on with its books as they are.
    pub(crate) fn snapshot(&self, now: Instant) -> Result<PolicyState, SnapshotRefusal> {
        // A status to publish is no decision: the new master publishes its own first.
        if !self.effects.is_empty() {
            return Err(SnapshotRefusal::EffectsPending(self.effects.len()));
        }
        if let Some((id, _)) =
            (self.workers.iter()).find(|(_, w)| w.phase == super::worker::Phase::Spawning)
        {
            return Err(SnapshotRefusal::SpawnUnanswered(*id));
        }
        Ok(encode::state(self, now))
    }

    /// The policy of the old master, from its `state`, under this master's `config`. `now` is
    /// the instant the snapshot was taken, read on this master's clock: the driver's reading
    /// less the time the handover took, so that every deadline keeps the time it had left at
    /// the snapshot, less that time (a later `now` would give each that much more). The state
    /// is checked whole first; an error says what is wrong, and nothing is built. Its first
    /// effect is a status to publish; then, if this master's options differ, what they bring
    /// (a scale to the configured worker count).
    pub(crate) fn restore(
        config: PolicyConfig,
        state: PolicyState,
        now: Instant,
    ) -> Result<Policy, RestoreError> {
        check_version(state.version)?;
        let configured_before = state.configured_workers;
        let mut policy = decode::policy(config, state, now)?;
        policy.adopt_config(configured_before, now);
        Ok(policy)
    }

    /// What this master's options change in the books it took over: its worker count, if it
    /// is not the one the old master was configured with (by the scale command's path); a
    /// canary that no longer is (the rollout goes on to every slot).
    fn adopt_config(&mut self, configured_before: usize, now: Instant) {
        let canary_dropped = self.config.canary.is_none()
            && (self.rollouts.under_way.as_ref()).is_some_and(|r| r.stage != Stage::Full);
        if canary_dropped {
            self.command(now, |policy| {
                if let Some(r) = &mut policy.rollouts.under_way {
                    r.stage = Stage::Full;
                }
                policy.queue_rollout(usize::MAX);
            });
        }
        if self.config.workers != configured_before {
            self.control(now, Control::ScaleTo(self.config.workers));
        }
    }
}
