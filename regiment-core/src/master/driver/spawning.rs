//! The driver's spawns: a worker process started as the policy asked, through the
//! `before_spawn` hook, the program of its generation and its IPC channel.

use tokio::sync::mpsc;

use super::super::policy::{Generation, Input, WorkerId};
use super::channel;
use super::worker_child::WorkerChild;
use super::worker_process::{self, SpawnRequest};
use super::{Driver, Process};
use crate::config::SpawnPlan;

impl Driver {
    /// Starts the worker process the policy asked for; the answer is the policy's next input.
    pub(super) fn spawn(&mut self, id: WorkerId, slot: usize, generation: Generation) -> Input {
        let mut plan = SpawnPlan {
            slot,
            generation: generation.0,
            env: self.spawn.env.clone(),
            current_dir: None,
        };
        if let Some(hook) = &self.spawn.before_spawn {
            let hook = hook.clone();
            let why =
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&mut plan))) {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(format!("before_spawn hook failed: {e}")),
                    Err(_) => Some(String::from("before_spawn hook panicked")),
                };
            if let Some(why) = why {
                return Input::SpawnFailed {
                    id,
                    why,
                    leftover: None,
                };
            }
        }
        let program = match self.programs.get(generation) {
            Ok(p) => p,
            Err(e) => {
                return Input::SpawnFailed {
                    id,
                    why: format!(
                        "cannot open the worker program {}: {e}",
                        self.spawn.program.display()
                    ),
                    leftover: None,
                };
            }
        };
        let program_id = program.id().clone();
        let spawned = worker_process::spawn(SpawnRequest {
            program,
            argv0: format!("{} worker {slot} gen {generation}", self.spawn.process_name),
            args: &self.spawn.args,
            listeners: &self.listeners,
            listener_names: &self.listener_names,
            slot,
            generation: generation.0,
            readiness: self.spawn.readiness,
            drain_timeout_ms: self.spawn.drain_timeout.as_millis() as u64,
            heartbeat_ms: self.spawn.heartbeat_interval.as_millis() as u64,
            env: &plan.env,
            current_dir: plan.current_dir,
            worker_env: self.spawn.worker_env,
            identity: self.spawn.identity.as_ref(),
            workers_wanted: self.policy.slots_wanted(),
        });
        let spawned = match spawned {
            Ok(s) => s,
            Err(e) => {
                return Input::SpawnFailed {
                    id,
                    why: format!("spawn of {} failed: {e}", self.spawn.program.display()),
                    leftover: None,
                };
            }
        };
        let pid = spawned.pid;
        match channel::start(
            id,
            spawned.ipc,
            bytes::BytesMut::new(),
            self.from_workers_tx.clone(),
        ) {
            Ok(to_worker) => {
                self.processes.insert(
                    id,
                    Process {
                        pid,
                        child: WorkerChild::Spawned(spawned.child),
                        to_worker,
                        channel_closed: false,
                    },
                );
                Input::Spawned {
                    id,
                    pid,
                    program: program_id,
                }
            }
            Err(e) => {
                let mut child = WorkerChild::Spawned(spawned.child);
                let _ = child.start_kill();
                // In the books until reaped, as every child: it must not become a zombie.
                let (to_worker, _) = mpsc::channel(1);
                self.processes.insert(
                    id,
                    Process {
                        pid,
                        child,
                        to_worker,
                        // There is no channel to wait for.
                        channel_closed: true,
                    },
                );
                Input::SpawnFailed {
                    id,
                    why: format!("IPC channel setup failed: {e}"),
                    leftover: Some(pid),
                }
            }
        }
    }
}
