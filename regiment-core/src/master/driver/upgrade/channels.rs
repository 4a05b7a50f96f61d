//! The IPC channels, taken back from their tasks for the exec and served again if it fails.
//!
//! Each task is asked through its outbox, after whatever the loop sent it before (a drain is
//! written first). While the loop waits for the answers, it keeps reading what the tasks
//! forward, so that a task blocked on a full queue to the loop can reach the request; those
//! messages are handed to the policy before its state is taken.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::oneshot;

use super::super::Driver;
use super::super::channel::{self, FromWorker, HandedOver, ToWorker};
use crate::master::policy::WorkerId;

/// How long the tasks have to give their channels back: each finishes the frame it writes, if
/// any, and answers.
const HAND_BACK_WITHIN: Duration = Duration::from_secs(5);

/// The channels taken back, by worker.
pub(super) type Channels = BTreeMap<WorkerId, HandedOver>;

impl Driver {
    /// Takes every worker's channel back from its task; what the tasks forwarded meanwhile is
    /// returned, for the policy. On an error, every channel taken is served again.
    pub(super) async fn take_channels(&mut self) -> Result<(Channels, Vec<FromWorker>), String> {
        if let Some((id, _)) = (self.processes.iter()).find(|(_, p)| p.to_worker.capacity() == 0) {
            return Err(format!("worker {id}'s channel has messages queued"));
        }
        let mut asked = Vec::with_capacity(self.processes.len());
        for (id, p) in &self.processes {
            let (answer, rx) = oneshot::channel();
            // The capacity was checked, and nothing else sends in between: a failure is a task
            // that ended.
            if p.to_worker.try_send(ToWorker::HandOver(answer)).is_ok() {
                asked.push((*id, rx));
            } else {
                tracing::warn!(%id, "the channel task of this worker ended");
            }
        }
        let deadline = tokio::time::Instant::now() + HAND_BACK_WITHIN;
        let mut forwarded = Vec::new();
        let mut taken = Channels::new();
        let mut missing = None;
        for (id, mut rx) in asked {
            loop {
                tokio::select! {
                    answer = &mut rx => {
                        match answer {
                            Ok(handed) => {
                                taken.insert(id, handed);
                            }
                            Err(_) => missing = missing.or(Some(id)),
                        }
                        break;
                    }
                    Some(m) = self.from_workers.recv() => forwarded.push(m),
                    () = tokio::time::sleep_until(deadline) => {
                        missing = missing.or(Some(id));
                        break;
                    }
                }
            }
        }
        while let Ok(m) = self.from_workers.try_recv() {
            forwarded.push(m);
        }
        if let Some(id) = missing {
            // Its task gave up its stream or never answered: that worker sees its channel
            // close (and exits, to be replaced as any worker that exits).
            self.give_channels_back(taken);
            self.forward(forwarded);
            return Err(format!(
                "the channel of worker {id} was not given back within {}",
                humantime::format_duration(HAND_BACK_WITHIN)
            ));
        }
        Ok((taken, forwarded))
    }

    /// Hands what the tasks forwarded to the policy, as the loop would have.
    pub(super) fn forward(&mut self, forwarded: Vec<FromWorker>) {
        for m in forwarded {
            self.on_worker(m);
        }
    }

    /// Serves `channels` again, each with the bytes its task had read and not decoded.
    pub(super) fn give_channels_back(&mut self, channels: Channels) {
        for (id, HandedOver { stream, pending }) in channels {
            let Some(p) = self.processes.get_mut(&id) else {
                continue;
            };
            match channel::start(id, stream, pending, self.from_workers_tx.clone()) {
                Ok(to_worker) => p.to_worker = to_worker,
                Err(e) => {
                    tracing::error!(%id, pid = p.pid, error = %e, "cannot serve this worker's channel again");
                }
            }
        }
    }
}
