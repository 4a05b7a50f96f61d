//! The first turn of a master that took over: its workers' channels served again, each first
//! decoding what the old master's task had read of it, and then the upgrade goes on (the
//! workers roll to the new build) or ends, rolled back.

use bytes::BytesMut;
use nix::unistd::Pid;
use tokio::sync::mpsc;

use super::super::worker_child::WorkerChild;
use super::super::{Driver, Process, Resume, channel};
use crate::master::policy::WorkerId;

impl Driver {
    pub(in crate::master::driver) fn resume(&mut self, resume: Resume) {
        if let Ok(path) = &self.master_path {
            crate::worker::process_name::name_after(path);
        }
        for (entry, stream) in resume.workers {
            let id = WorkerId(entry.id);
            let pending = BytesMut::from(&entry.pending[..]);
            let (to_worker, channel_closed) = match channel::start(
                id,
                stream,
                pending,
                self.from_workers_tx.clone(),
            ) {
                Ok(to_worker) => (to_worker, false),
                Err(e) => {
                    // Its channel is closed as the stream drops: the worker exits, and is
                    // replaced as any that exits.
                    tracing::error!(%id, pid = entry.pid, error = %e, "cannot serve a handed-over channel");
                    (mpsc::channel(1).0, true)
                }
            };
            self.processes.insert(
                id,
                Process {
                    pid: entry.pid,
                    child: WorkerChild::Adopted(Pid::from_raw(entry.pid as i32)),
                    to_worker,
                    channel_closed,
                },
            );
        }
        let now = self.clock.now();
        let workers = self.processes.len();
        match resume.rolled_back {
            None => match self.policy.upgraded(now) {
                Ok(generation) => tracing::info!(
                    target: "regiment",
                    workers,
                    generation = generation.0,
                    "upgrade: the new master took over; its build rolls out"
                ),
                Err(why) => tracing::warn!(target: "regiment", "the new master took over: {why}"),
            },
            Some(why) => match self.policy.upgrade_rolled_back(now, why) {
                Ok(number) => tracing::warn!(
                    target: "regiment",
                    number,
                    workers,
                    "upgrade rolled back: the previous program took over again"
                ),
                Err(why) => tracing::warn!(target: "regiment", "rolled back: {why}"),
            },
        }
    }
}
