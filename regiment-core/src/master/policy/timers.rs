//! The policy's named timers: when each is due, and what happens when it fires.

use std::time::{Duration, Instant};

use super::Policy;
use super::ids::WorkerId;
use super::millis;
use super::rollout::Stage;
use super::slot::{Cause, Pending, SlotRole};
use super::worker::{Heartbeats, KillReason, Phase};
use crate::events::Event;

/// Something the policy must do at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// A starting worker is killed unless ready by then (rule 2).
    StartTimeout(WorkerId),
    /// A draining worker is killed if still running then (rule 4).
    DrainDeadline(WorkerId),
    /// A ready worker that sends heartbeats is unresponsive once silent this long (rule 7).
    HeartbeatTimeout(WorkerId),
    /// A slot's backoff ends: it may spawn again (rules 2 and 5).
    Backoff(usize),
    /// The canary's window ends: it is judged.
    CanaryWindow,
    /// Every slot has run the rollout's generation to ready, and the settle time has passed
    /// since the last did: the rollout completes.
    RolloutSettled,
    /// The rollout has not ended in its time: it is aborted.
    RolloutDeadline,
}

impl Policy {
    /// Every armed timer with its due time.
    pub(super) fn timers(&self) -> impl Iterator<Item = (Instant, Timer)> + '_ {
        let heartbeat_timeout = self.config.heartbeat_timeout;
        let workers = self
            .workers
            .iter()
            .filter_map(move |(&id, w)| match w.phase {
                Phase::Starting { deadline } => Some((deadline, Timer::StartTimeout(id))),
                Phase::Draining { deadline, .. } => Some((deadline, Timer::DrainDeadline(id))),
                Phase::Ready { .. } => match (heartbeat_timeout, w.heartbeats) {
                    // Silent for longer than the timeout, to the millisecond the events report.
                    (Some(t), Heartbeats::Seen) => Some((
                        w.last_heard + t + Duration::from_millis(1),
                        Timer::HeartbeatTimeout(id),
                    )),
                    _ => None,
                },
                Phase::Spawning | Phase::Killed { .. } => None,
            });
        let stopping = self.stopping.is_some();
        let slots = self
            .slots
            .iter()
            .enumerate()
            .filter(move |_| !stopping)
            .filter_map(|(i, s)| s.retry_at.map(|t| (t, Timer::Backoff(i))));
        let canary = self
            .rollouts
            .under_way
            .as_ref()
            .and_then(|r| match &r.stage {
                Stage::Window(w) => Some((w.until, Timer::CanaryWindow)),
                _ => None,
            });
        let settled = self.settled_at().map(|t| (t, Timer::RolloutSettled));
        let deadline = self.rollout_deadline().map(|t| (t, Timer::RolloutDeadline));
        workers
            .chain(slots)
            .chain(canary)
            .chain(settled)
            .chain(deadline)
    }

    /// Fires every timer due by `now`.
    pub(super) fn fire_timers(&mut self, now: Instant) {
        let due: Vec<Timer> = self
            .timers()
            .filter(|(at, _)| *at <= now)
            .map(|(_, t)| t)
            .collect();
        for timer in due {
            match timer {
                Timer::StartTimeout(id) => self.kill(id, KillReason::StartTimeout, now),
                Timer::DrainDeadline(id) => {
                    let silent =
                        (self.workers.get(&id)).is_some_and(|w| w.heartbeats == Heartbeats::Silent);
                    let why = match silent {
                        true => KillReason::Unresponsive,
                        false => KillReason::DrainDeadline,
                    };
                    self.kill(id, why, now)
                }
                Timer::HeartbeatTimeout(id) => self.unresponsive(id, now),
                // `pump` spawns what the slot was waiting for.
                Timer::Backoff(slot) => self.slots[slot].retry_at = None,
                // Judged by `advance_canary`, right after the timers.
                Timer::CanaryWindow => {}
                // Completed or aborted by `check_rollout_done`, after the timers.
                Timer::RolloutSettled | Timer::RolloutDeadline => {}
            }
        }
    }

    /// A ready worker went silent: its runtime is blocked. It is replaced, new before old,
    /// even if it had asked to be replaced already (that replacement may keep failing).
    fn unresponsive(&mut self, id: WorkerId, now: Instant) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        w.heartbeats = Heartbeats::Silent;
        let silent_ms = millis(now.saturating_duration_since(w.last_heard));
        let reason = format!("unresponsive: no heartbeat for {silent_ms} ms");
        w.replace_reason.get_or_insert_with(|| reason.clone());
        let (slot, pid, generation) = (w.slot, w.pid, w.generation);
        self.emit(Event::Unresponsive {
            slot,
            pid,
            generation: generation.0,
            silent_ms,
        });
        if self.role_of(slot, id) == SlotRole::Current {
            self.want_replacement(
                slot,
                Pending {
                    reason,
                    cause: Cause::Unresponsive,
                },
            );
        }
    }
}
