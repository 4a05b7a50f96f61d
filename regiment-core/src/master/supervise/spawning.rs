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
                let mut rec = WorkerRec::new(slot, generation, pid, child, to_worker, now);
                rec.deadline = Some(now + self.config.start_timeout);
                rec.spawned_for = spawned_for;
                self.workers.insert(id, rec);
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
            Err(SpawnFailure { why, child }) => {
                if let Some(p) = spawned_for {
                    self.restore_pending(slot, p);
                }
                let pid = child.as_ref().map_or(0, |c| c.0);
                if let Some(c) = child {
                    let (pid, child) = *c;
                    // Killed already, but in the books until reaped, as every child: it holds
                    // no slot, and its exit is reported like that of any worker on its way out.
                    let (to_worker, _) = mpsc::channel(1);
                    let id = self.next_id;
                    self.next_id += 1;
                    let mut rec = WorkerRec::new(slot, generation, pid, child, to_worker, now);
                    rec.state = WorkerState::Draining;
                    rec.killed = Some("IPC channel setup failed");
                    self.workers.insert(id, rec);
                }
                self.start_failed(slot, generation, pid, why, now);
            }
        }
    }

    pub(super) fn try_spawn(
        &mut self,
        slot: usize,
        generation: u64,
    ) -> std::result::Result<(u32, tokio::process::Child, mpsc::Sender<MasterMessage>), SpawnFailure>
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
                Ok(Err(e)) => return Err(format!("before_spawn hook failed: {e}").into()),
                Err(_) => return Err(String::from("before_spawn hook panicked").into()),
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
                Err(SpawnFailure {
                    why: format!("IPC channel setup failed: {e}"),
                    child: Some(Box::new((spawned.pid, child))),
                })
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

/// Why a spawn failed, and the child if one was started (it must stay in the books until
/// reaped).
pub(super) struct SpawnFailure {
    why: String,
    /// Boxed: rare, and a `Child` would make every `Result` of a spawn large.
    child: Option<Box<(u32, tokio::process::Child)>>,
}

impl From<String> for SpawnFailure {
    fn from(why: String) -> Self {
        Self { why, child: None }
    }
}
