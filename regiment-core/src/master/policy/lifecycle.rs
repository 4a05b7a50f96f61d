//! What happens to a worker on its way through the books: spawned, ready (rule 1: only now does
//! the worker it replaces drain), told to drain, killed.

use std::time::Instant;

use super::ids::WorkerId;
use super::rollout::Taking;
use super::slot::{Pending, SlotRole};
use super::worker::{Heartbeats, KillReason, Phase, Worker};
use super::{Effect, Policy, millis};
use crate::events::{Event, ProgramId};

impl Policy {
    /// Asks for a worker in the empty `slot`.
    /// `pending`: the replacement that was wanted there, if any (a rollout's runs the rolling
    /// generation even during its canary).
    pub(super) fn spawn_current(&mut self, slot: usize, pending: Option<Pending>, now: Instant) {
        let id = self.spawn(slot, pending, None, now);
        self.slots[slot].current = Some(id);
    }

    /// Asks for a successor of `slot`'s current worker, for the replacement pending there.
    pub(super) fn spawn_successor(&mut self, slot: usize, now: Instant) {
        let s = &mut self.slots[slot];
        let pending = s.pending.take();
        let replaces = s.current;
        let id = self.spawn(slot, pending, replaces, now);
        self.slots[slot].successor = Some(id);
    }

    fn spawn(
        &mut self,
        slot: usize,
        spawned_for: Option<Pending>,
        replaces: Option<WorkerId>,
        now: Instant,
    ) -> WorkerId {
        let id = WorkerId(self.next_id);
        self.next_id += 1;
        let replaced = replaces
            .and_then(|id| self.workers.get(&id))
            .map(|w| w.generation);
        let generation = self.generation_for(spawned_for.as_ref(), replaced);
        self.workers
            .insert(id, Worker::new(slot, generation, spawned_for, now));
        self.effects.push_back(Effect::Spawn {
            id,
            slot,
            generation,
            replaces,
        });
        id
    }

    pub(super) fn on_spawned(&mut self, id: WorkerId, pid: u32, program: ProgramId, now: Instant) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        let Phase::Spawning = w.phase else {
            return; // answered once
        };
        w.pid = pid;
        w.program = Some(program.clone());
        // The start timeout counts from the process's start, however long the spawns queued
        // before it took (a slow `before_spawn` hook).
        w.phase = Phase::Starting {
            deadline: now + self.config.start_timeout,
        };
        w.spawned_at = now;
        w.last_heard = now;
        let (slot, generation) = (w.slot, w.generation);
        let replaces = self
            .slots
            .get(slot)
            .filter(|s| s.successor == Some(id))
            .and_then(|s| s.current)
            .and_then(|c| self.workers.get(&c))
            .map(|w| w.pid);
        self.emit(Event::Spawned {
            slot,
            pid,
            generation: generation.0,
            replaces,
            program,
        });
    }

    /// A spawn that did not happen counts as a failed start of its slot.
    pub(super) fn on_spawn_failed(
        &mut self,
        id: WorkerId,
        why: String,
        leftover: Option<u32>,
        now: Instant,
    ) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        let Phase::Spawning = w.phase else {
            return; // answered once
        };
        let (slot, generation) = (w.slot, w.generation);
        let spawned_for = w.spawned_for.take();
        let pid = leftover.unwrap_or(0);
        match leftover {
            // Killed already, but in the books until its exit is reported, as every process:
            // it holds no slot, and its exit is reported like that of any worker on its way out.
            Some(pid) => {
                w.pid = pid;
                w.phase = Phase::Killed {
                    why: KillReason::IpcSetupFailed,
                    at: now,
                };
            }
            None => {
                self.workers.remove(&id);
            }
        }
        let role = self.role_of(slot, id);
        self.leave_slot(slot, id);
        match role {
            SlotRole::Successor => self.successor_failed(slot, spawned_for),
            SlotRole::Current | SlotRole::Leaving => {}
        }
        self.start_failed(slot, generation, pid, why, now);
    }

    pub(super) fn on_ready(&mut self, id: WorkerId, now: Instant) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        // Counted once per worker, whatever it sends (several listeners, repeats). And a worker
        // killed at its start timeout is dead even if its `ready` is still queued behind the
        // kill: counting it would drain the worker it was meant to replace.
        let Phase::Starting { .. } = w.phase else {
            return;
        };
        w.last_heard = now;
        w.phase = Phase::Ready { since: now };
        let (slot, pid, generation) = (w.slot, w.pid, w.generation);
        let spawned_for = w.spawned_for.take();
        let asked = w
            .replace_reason
            .clone()
            .map(|reason| (reason, w.replace_criterion.clone()));
        self.emit(Event::Ready {
            slot,
            pid,
            generation: generation.0,
        });

        if self.stopping.is_some() {
            self.drain(id, "stopping", now);
            return;
        }
        let taking = match self.role_of(slot, id) {
            SlotRole::Successor => {
                let s = &mut self.slots[slot];
                s.successor = None;
                let old = s.current.replace(id);
                // Else the worker it was to replace crashed meanwhile: that crash was counted,
                // and stays the reason.
                if old.is_some() {
                    s.restarts += 1;
                    s.last_reason = spawned_for.as_ref().map(|p| p.reason.clone());
                    if let Some(p) = &spawned_for {
                        self.stats.count_replacement(p);
                    }
                }
                match old {
                    Some(old) => {
                        self.drain(old, &format!("replaced by pid {pid}"), now);
                        Taking::FromPredecessor
                    }
                    None => Taking::EmptySlot,
                }
            }
            SlotRole::Current => Taking::EmptySlot,
            SlotRole::Leaving => {
                let why = if slot < self.slots.len() {
                    "not needed"
                } else {
                    "slot removed"
                };
                self.drain(id, why, now);
                return;
            }
        };
        let reached_before = self.slots[slot].reached.replace(generation);
        self.ready_in_rollout(slot, reached_before, generation, taking, now);
        if let Some((reason, criterion)) = asked {
            self.back_off_if_unserved(id, true, now);
            self.want_replacement(
                slot,
                Pending {
                    reason,
                    cause: super::slot::Cause::Worker(criterion),
                },
            );
        }
    }

    /// Tells a worker to drain; it is killed at the deadline: the drain timeout, or for a
    /// worker judged unresponsive the (shorter) grace it is given. Idempotent.
    pub(super) fn drain(&mut self, id: WorkerId, why: &str, now: Instant) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        let deadline = match w.heartbeats {
            Heartbeats::Silent => self
                .config
                .drain_timeout
                .min(self.config.unresponsive_grace),
            Heartbeats::NoneYet | Heartbeats::Seen => self.config.drain_timeout,
        };
        match w.phase {
            Phase::Spawning => return self.withdraw_spawn(id),
            Phase::Starting { .. } | Phase::Ready { .. } => {}
            Phase::Draining { .. } | Phase::Killed { .. } => return,
        }
        let kill_at = now + deadline;
        w.phase = Phase::Draining {
            since: now,
            deadline: kill_at,
        };
        let (slot, pid, generation) = (w.slot, w.pid, w.generation);
        self.effects.push_back(Effect::Drain { id, kill_at });
        self.emit(Event::Draining {
            slot,
            pid,
            generation: generation.0,
            why: why.to_owned(),
            deadline_ms: millis(deadline),
        });
    }

    /// SIGKILLs a worker. Idempotent.
    pub(super) fn kill(&mut self, id: WorkerId, why: KillReason, now: Instant) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        match w.phase {
            Phase::Spawning => return self.withdraw_spawn(id),
            Phase::Killed { .. } => return,
            Phase::Starting { .. } | Phase::Ready { .. } | Phase::Draining { .. } => {}
        }
        w.phase = Phase::Killed { why, at: now };
        let (slot, pid, generation) = (w.slot, w.pid, w.generation);
        self.stats.count_kill(why);
        self.effects.push_back(Effect::Kill { id, why });
        self.emit(Event::Killed {
            slot,
            pid,
            generation: generation.0,
            why: why.explained(self.config.readiness).into(),
        });
    }

    /// A worker no longer wanted before its spawn was answered: the spawn is taken back from the
    /// effects not yet carried out, and the worker never existed for anyone.
    fn withdraw_spawn(&mut self, id: WorkerId) {
        self.effects
            .retain(|e| !matches!(e, Effect::Spawn { id: i, .. } if *i == id));
        if let Some(w) = self.workers.remove(&id) {
            self.leave_slot(w.slot, id);
        }
    }

    /// What `id` is to `slot` (a slot removed by a scale-down holds no one).
    pub(super) fn role_of(&self, slot: usize, id: WorkerId) -> SlotRole {
        self.slots
            .get(slot)
            .map_or(SlotRole::Leaving, |s| s.role_of(id))
    }

    /// Frees whatever place `id` held in `slot`.
    pub(super) fn leave_slot(&mut self, slot: usize, id: WorkerId) {
        if let Some(s) = self.slots.get_mut(slot) {
            if s.current == Some(id) {
                s.current = None;
            }
            if s.successor == Some(id) {
                s.successor = None;
            }
        }
    }
}
