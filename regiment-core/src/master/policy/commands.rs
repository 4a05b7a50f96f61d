//! What commands ask (rule 6), from a signal, a [`crate::Handle`] or the control socket. Each
//! is a method that answers what the driver needs to answer its caller (quinn-proto's shape):
//! a rolling restart tells the generation it started, a replacement whether it was taken.

use std::time::Instant;

use super::backoff::Backoff;
use super::ids::{Generation, WorkerId};
use super::slot::{Cause, Pending, Slot};
use super::worker::KillReason;
use super::{Control, Policy, Stopping};
use crate::events::Event;
use crate::limits::MAX_WORKERS;
use crate::protocol::bounded_reason;

impl Policy {
    /// Carries out `c`, asked at `now`, answering nothing (a signal has no one to answer).
    pub(crate) fn control(&mut self, now: Instant, c: Control) {
        self.command(now, |policy| policy.on_control(c, now));
    }

    /// Starts a rolling restart at `now`: the generation it rolls out, whose end
    /// [`super::Effect::RolloutEnded`] reports; a rollout under way is superseded by it. `None`
    /// when the master is stopping: nothing starts.
    pub(crate) fn rolling_restart(&mut self, now: Instant) -> Option<Generation> {
        self.command(now, |policy| policy.start_rollout(now))
    }

    /// Replaces the worker of `slot` (new before old), for an operator's `reason`; `Err` says
    /// why not (see [`Policy::replace_refusal`]), and nothing happens then.
    pub(crate) fn replace(
        &mut self,
        now: Instant,
        slot: usize,
        reason: String,
    ) -> Result<(), String> {
        if let Some(why) = self.replace_refusal(slot) {
            return Err(why);
        }
        self.control(now, Control::Replace { slot, reason });
        Ok(())
    }

    /// Runs a command as an input: the snapshot changes, and what it set off is settled.
    pub(super) fn command<T>(&mut self, now: Instant, run: impl FnOnce(&mut Self) -> T) -> T {
        self.status_changed = true;
        let answer = run(self);
        self.settle(now);
        answer
    }

    fn on_control(&mut self, c: Control, now: Instant) {
        match c {
            Control::RollingRestart => {
                self.start_rollout(now);
            }
            Control::Stop => match self.stopping {
                None => self.stop_gracefully(now),
                Some(Stopping::Graceful) => self.stop_at_once(now),
                Some(Stopping::Forced | Stopping::Done) => {}
            },
            Control::ForcedStop => match self.stopping {
                None => {
                    self.enter_stop(now);
                    self.stop_at_once(now);
                }
                Some(Stopping::Graceful) => self.stop_at_once(now),
                Some(Stopping::Forced | Stopping::Done) => {}
            },
            Control::ScaleUp => self.scale_up(now),
            Control::ScaleDown => self.scale_down(now),
            Control::ScaleTo(workers) => match scale_refusal(workers) {
                Some(why) => {
                    tracing::warn!(target: "regiment", workers = self.slots.len(), "scaling to {workers} workers refused: {why}")
                }
                None => self.scale_to(workers.max(1), now),
            },
            Control::Replace { slot, reason } => match self.replace_refusal(slot) {
                Some(why) => {
                    tracing::warn!(target: "regiment", slot, "replacement refused: {why}");
                }
                None => self.want_replacement(
                    slot,
                    Pending {
                        reason: bounded_reason(reason),
                        cause: Cause::Operator,
                    },
                ),
            },
        }
    }

    /// Why the worker of `slot` cannot be replaced now, if it cannot: there is no such slot, it
    /// has no worker (the last one exited, and the next waits out its backoff or is still
    /// starting), or the master is stopping. The driver asks before it hands an operator's
    /// request over, to answer it; the policy asks again as it takes it.
    pub(crate) fn replace_refusal(&self, slot: usize) -> Option<String> {
        if self.stopping.is_some() {
            return Some("the master is stopping".into());
        }
        let Some(s) = self.slots.get(slot) else {
            return Some(format!(
                "no slot {slot}: the slots are 0 to {}",
                self.slots.len().saturating_sub(1)
            ));
        };
        s.current.is_none().then(|| {
            format!(
                "slot {slot} has no worker to replace: its last one exited, and the next one is \
                 starting or waits out its backoff"
            )
        })
    }

    fn scale_up(&mut self, now: Instant) {
        if let Some(why) = scale_refusal(self.slots.len() + 1) {
            tracing::warn!(target: "regiment", workers = self.slots.len(), "one worker more refused: {why}");
            return;
        }
        self.scale_to(self.slots.len() + 1, now);
    }

    fn scale_down(&mut self, now: Instant) {
        self.scale_to(self.slots.len().saturating_sub(1).max(1), now);
    }

    /// Adds slots (filled by the next ticks) or removes the last ones, whose workers drain at
    /// once (there is no replacement to wait for); one `Scaled` event.
    fn scale_to(&mut self, workers: usize, now: Instant) {
        if self.stopping.is_some() || workers == self.slots.len() {
            return;
        }
        while self.slots.len() < workers {
            self.slots
                .push(Slot::new(Backoff::new(self.config.backoff)));
        }
        let mut leaving = Vec::new();
        while self.slots.len() > workers {
            let slot = self.slots.len() - 1;
            let s = self.slots.pop().expect("more slots than wanted");
            self.queue.retain(|q| *q != slot);
            leaving.extend([s.current, s.successor].into_iter().flatten());
        }
        self.emit(Event::Scaled {
            workers: self.slots.len(),
        });
        for id in leaving {
            self.drain(id, "scaled down", now);
        }
    }

    /// Drains every worker; nothing is spawned from now on.
    fn stop_gracefully(&mut self, now: Instant) {
        self.enter_stop(now);
        self.emit(Event::Stopping { forced: false });
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        for id in ids {
            self.drain(id, "stopping", now);
        }
    }

    /// Nothing is spawned from now on: the rollout ends, and no slot holds or wants a worker.
    fn enter_stop(&mut self, now: Instant) {
        self.stopping = Some(Stopping::Graceful);
        self.end_rollout_for_stop(now);
        self.end_upgrade_for_stop(now);
        self.queue.clear();
        for s in &mut self.slots {
            s.pending = None;
            s.current = None;
            s.successor = None;
        }
    }

    /// Kills every worker now.
    fn stop_at_once(&mut self, now: Instant) {
        self.stopping = Some(Stopping::Forced);
        self.emit(Event::Stopping { forced: true });
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        for id in ids {
            self.kill(id, KillReason::ForcedStop, now);
        }
    }
}

/// Why a master may not run `workers` workers: more than [`MAX_WORKERS`], the bound the
/// options, `regiment scale` and SIGTTIN share.
fn scale_refusal(workers: usize) -> Option<String> {
    (workers > MAX_WORKERS).then(|| format!("a master runs at most {MAX_WORKERS} workers"))
}
