//! Starting workers, and what happens when one cannot start (rule 2: backoff, rollout abort).

use super::*;

impl Master {
    /// Spawns a worker for `slot`: a successor of the slot's current worker, or a primary for
    /// an empty slot. A failure to spawn counts as a failed start.
    pub(super) fn spawn_into(&mut self, slot: usize, successor: bool, now: Instant) {
        let generation = self.generation;
        let spawned_for = if successor {
            self.slots[slot].pending.take()
        } else {
            None
        };
        match self.try_spawn(slot, generation) {
            Ok((pid, child, to_worker)) => {
                let id = self.next_id;
                self.next_id += 1;
                let replaces = if successor {
                    self.slots[slot]
                        .current
                        .and_then(|c| self.workers.get(&c))
                        .map(|w| w.pid)
                } else {
                    None
                };
                self.workers.insert(
                    id,
                    WorkerRec {
                        slot,
                        generation,
                        pid,
                        child,
                        state: WorkerState::Starting,
                        spawned_at: now,
                        ready_at: None,
                        deadline: Some(now + self.config.start_timeout),
                        to_worker,
                        spawned_for,
                        replace_reason: None,
                        killed: None,
                        last_heard: now,
                        rss: 0,
                        requests: 0,
                        in_flight: 0,
                        invalid_messages: 0,
                        heartbeats_seen: false,
                    },
                );
                if successor {
                    self.slots[slot].successor = Some(id);
                } else {
                    self.slots[slot].current = Some(id);
                }
                self.emit(Event::Spawned {
                    slot,
                    pid,
                    generation,
                    replaces,
                });
            }
            Err(why) => {
                if let Some(p) = spawned_for {
                    self.restore_pending(slot, p);
                }
                self.start_failed(slot, generation, 0, why, now);
            }
        }
    }

    pub(super) fn try_spawn(
        &mut self,
        slot: usize,
        generation: u64,
    ) -> std::result::Result<(u32, tokio::process::Child, mpsc::Sender<MasterMessage>), String>
    {
        let mut plan = SpawnPlan {
            slot,
            generation,
            env: self.config.env.clone(),
            current_dir: None,
        };
        if let Some(hook) = &self.config.before_spawn {
            let hook = hook.clone();
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&mut plan))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(format!("before_spawn hook failed: {e}")),
                Err(_) => return Err("before_spawn hook panicked".into()),
            }
        }
        let spawned = spawn::spawn(SpawnRequest {
            program: &self.config.program,
            argv0: format!(
                "{} worker {slot} gen {generation}",
                self.config.process_name
            ),
            args: &self.config.args,
            listeners: &self.listeners,
            listener_names: &self.listener_names,
            slot,
            generation,
            readiness: self.config.readiness,
            drain_timeout_ms: self.config.drain_timeout.as_millis() as u64,
            heartbeat_ms: self.config.heartbeat.as_millis() as u64,
            env: &plan.env,
            current_dir: plan.current_dir,
        })
        .map_err(|e| format!("spawn of {} failed: {e}", self.config.program.display()))?;
        let id = self.next_id;
        match channel::start(id, spawned.ipc, self.from_workers_tx.clone()) {
            Ok(tx) => Ok((spawned.pid, spawned.child, tx)),
            Err(e) => {
                let mut child = spawned.child;
                let _ = child.start_kill();
                // Reaped by tokio's orphan queue; it never ran as a worker.
                Err(format!("IPC channel setup failed: {e}"))
            }
        }
    }

    /// A worker of `slot` failed before it was ready (or could not be spawned).
    pub(super) fn start_failed(
        &mut self,
        slot: usize,
        generation: u64,
        pid: u32,
        why: String,
        now: Instant,
    ) {
        let healthy_period = self.config.backoff_reset;
        let Some(s) = self.slots.get_mut(slot) else {
            self.emit(Event::StartFailed {
                slot,
                pid,
                generation,
                why,
                retry_in_ms: 0,
            });
            return;
        };
        // A slot that stayed quiet for a healthy period after its last retry starts over: a
        // deploy that failed last week does not make today's first retry wait 30 s.
        if s.not_before
            .is_some_and(|t| now.saturating_duration_since(t) >= healthy_period)
        {
            s.backoff.reset();
        }
        let delay = s.backoff.next_delay();
        s.not_before = Some(now + delay);
        let retry_in_ms = if self.stopping.is_some() {
            0
        } else {
            delay.as_millis() as u64
        };
        self.emit(Event::StartFailed {
            slot,
            pid,
            generation,
            why,
            retry_in_ms,
        });
        if let Some(r) = &mut self.rollout
            && generation >= r.target
        {
            r.failures += 1;
            let (target, failures) = (r.target, r.failures);
            if failures >= self.config.rollout_failures {
                self.abort_rollout(
                    target,
                    format!(
                        "{failures} consecutive workers of generation {target} failed to start"
                    ),
                );
            }
        }
    }
}
