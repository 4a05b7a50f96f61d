//! What happens to a worker: ready (rule 1: only now does the one it replaces drain), drain,
//! kill at a deadline (rule 4), exit (crash and backoff, rule 5), and the timers.

use super::*;

impl Master {
    pub(super) fn drain(&mut self, id: u64, why: String, now: Instant) {
        let deadline = self.config.drain_timeout;
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        if w.state == WorkerState::Draining {
            return;
        }
        w.state = WorkerState::Draining;
        w.deadline = Some(now + deadline);
        let deadline_ms = deadline.as_millis() as u64;
        if w.to_worker
            .try_send(MasterMessage::Drain { deadline_ms })
            .is_err()
        {
            tracing::warn!(
                slot = w.slot,
                pid = w.pid,
                "drain message not delivered; the deadline still applies"
            );
        }
        let (slot, pid, generation) = (w.slot, w.pid, w.generation);
        self.emit(Event::Draining {
            slot,
            pid,
            generation,
            why,
            deadline_ms,
        });
    }

    pub(super) fn kill(&mut self, id: u64, why: &'static str) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        if w.killed.is_some() {
            return;
        }
        w.killed = Some(why);
        // The worker leads its own process group; the group goes with it. The pid cannot have
        // been reused: only this loop reaps, and it has not reaped this child yet.
        let pid = Pid::from_raw(w.pid as i32);
        if killpg(pid, Signal::SIGKILL).is_err() {
            let _ = kill(pid, Signal::SIGKILL);
        }
        let (slot, pid, generation) = (w.slot, w.pid, w.generation);
        self.emit(Event::Killed {
            slot,
            pid,
            generation,
            why: why.into(),
        });
    }

    pub(super) fn on_ready(&mut self, id: u64, now: Instant) {
        let Some(w) = self.workers.get_mut(&id) else {
            return;
        };
        if w.state != WorkerState::Starting || w.killed.is_some() {
            // Counted once per worker, whatever it sends (several listeners, repeats). And a
            // worker killed at its start timeout is dead even if its `ready` is still queued
            // behind the kill: counting it would drain the worker it was meant to replace.
            return;
        }
        w.state = WorkerState::Ready;
        w.ready_at = Some(now);
        w.deadline = None;
        let (slot, pid, generation) = (w.slot, w.pid, w.generation);
        let spawned_for = w.spawned_for.take();
        let asked = w.replace_reason.clone();
        self.emit(Event::Ready {
            slot,
            pid,
            generation,
        });

        if self.stopping.is_some() {
            self.drain(id, "stopping".into(), now);
            return;
        }
        let Some(s) = self.slots.get_mut(slot) else {
            self.drain(id, "slot removed".into(), now);
            return;
        };
        if s.successor == Some(id) {
            s.successor = None;
            let old = s.current.replace(id);
            s.restarts += 1;
            s.last_reason = spawned_for.map(|p| p.reason);
            if let Some(old) = old {
                self.drain(old, format!("replaced by pid {pid}"), now);
            }
        } else if s.current != Some(id) {
            self.drain(id, "not needed".into(), now);
            return;
        }
        if let Some(r) = &mut self.rollout {
            if generation >= r.target {
                r.failures = 0;
            } else {
                let reason = format!("rolling restart to generation {}", r.target);
                self.want_replacement(slot, reason, true);
            }
        }
        if let Some(reason) = asked {
            self.want_replacement(slot, reason, false);
        }
    }

    pub(super) fn on_exit(&mut self, id: u64, status: std::process::ExitStatus, now: Instant) {
        let Some(w) = self.workers.remove(&id) else {
            return;
        };
        let status = describe_status(&status);
        let (slot, pid, generation) = (w.slot, w.pid, w.generation);
        let role = self
            .slots
            .get(slot)
            .map(|s| (s.current == Some(id), s.successor == Some(id)));
        match role {
            Some((_, true)) => {
                self.slots[slot].successor = None;
                if let Some(p) = w.spawned_for {
                    self.restore_pending(slot, p);
                }
                let why = match w.killed {
                    Some(k) => format!("{k}: {status}"),
                    None => format!("exited before ready: {status}"),
                };
                self.start_failed(slot, generation, pid, why, now);
            }
            Some((true, false)) if w.state == WorkerState::Starting => {
                self.slots[slot].current = None;
                let why = match w.killed {
                    Some(k) => format!("{k}: {status}"),
                    None => format!("exited before ready: {status}"),
                };
                self.start_failed(slot, generation, pid, why, now);
            }
            Some((true, false)) => {
                let stopping = self.stopping.is_some();
                let reset = self.config.backoff_reset;
                let healthy = w.ready_at.is_some_and(|t| now.duration_since(t) >= reset);
                let s = &mut self.slots[slot];
                s.current = None;
                if healthy {
                    s.backoff.reset();
                }
                s.restarts += 1;
                s.last_reason = Some(format!("crashed: {status}"));
                // A replacement already starting takes the slot when ready: nothing to respawn.
                let respawn_in_ms = if stopping || s.successor.is_some() {
                    0
                } else {
                    let delay = s.backoff.next_delay();
                    s.not_before = Some(now + delay);
                    delay.as_millis() as u64
                };
                self.emit(Event::Crashed {
                    slot,
                    pid,
                    generation,
                    status,
                    respawn_in_ms,
                });
                self.count_early_crash(generation, healthy);
            }
            _ => self.emit(Event::Exited {
                slot,
                pid,
                generation,
                status,
            }),
        }
    }

    /// A new-generation worker that crashes soon after it was ready is a failed deploy, just
    /// as one that never gets ready: enough of them abort the rollout, so that the old
    /// workers not yet replaced stay.
    fn count_early_crash(&mut self, generation: u64, healthy: bool) {
        let limit = self.config.rollout_failures;
        let Some(r) = &mut self.rollout else { return };
        if healthy || generation < r.target {
            return;
        }
        r.early_crashes += 1;
        let (target, crashes) = (r.target, r.early_crashes);
        if crashes >= limit {
            self.abort_rollout(
                target,
                format!(
                    "{crashes} workers of generation {target} crashed soon after they were ready"
                ),
            );
        }
    }

    pub(super) fn on_timers(&mut self, now: Instant) {
        let mut to_kill = Vec::new();
        let mut silent = Vec::new();
        for (id, w) in &self.workers {
            if w.killed.is_none() && w.deadline.is_some_and(|d| d <= now) {
                to_kill.push((
                    *id,
                    if w.state == WorkerState::Starting {
                        "start timeout"
                    } else {
                        "drain deadline"
                    },
                ));
            }
            if let Some(t) = self.config.heartbeat_timeout
                && w.state == WorkerState::Ready
                && w.heartbeats_seen
                && w.replace_reason.is_none()
                && now.duration_since(w.last_heard) > t
            {
                silent.push(*id);
            }
        }
        for (id, why) in to_kill {
            self.kill(id, why);
        }
        for id in silent {
            let Some(w) = self.workers.get_mut(&id) else {
                continue;
            };
            let silent_ms = now.duration_since(w.last_heard).as_millis() as u64;
            let reason = format!("unresponsive: no heartbeat for {silent_ms} ms");
            w.replace_reason = Some(reason.clone());
            let (slot, pid, generation) = (w.slot, w.pid, w.generation);
            self.emit(Event::Unresponsive {
                slot,
                pid,
                generation,
                silent_ms,
            });
            if self.slots.get(slot).is_some_and(|s| s.current == Some(id)) {
                self.want_replacement(slot, reason, false);
            }
        }
    }
}
