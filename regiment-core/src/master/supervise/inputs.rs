//! What the loop is told: messages from workers (untrusted), and commands from signals and
//! handles (rule 6).

use super::*;

impl Master {
    pub(super) fn on_worker(&mut self, m: FromWorker) {
        let now = Instant::now();
        match m {
            FromWorker::Message(id, msg) => {
                let Some(w) = self.workers.get_mut(&id) else {
                    return;
                };
                w.last_heard = now;
                match msg {
                    WorkerMessage::Ready => self.on_ready(id, now),
                    WorkerMessage::Heartbeat {
                        rss,
                        requests,
                        in_flight,
                    } => {
                        w.heartbeats_seen = true;
                        w.rss = rss;
                        w.requests = requests;
                        w.in_flight = in_flight;
                    }
                    WorkerMessage::ReplaceMe { reason } => {
                        if w.replace_reason.is_some() {
                            return; // idempotent: one replacement per worker
                        }
                        let reason = bounded_reason(reason);
                        w.replace_reason = Some(reason.clone());
                        let (slot, pid, generation, state) = (w.slot, w.pid, w.generation, w.state);
                        self.emit(Event::ReplaceRequested {
                            slot,
                            pid,
                            generation,
                            reason: reason.clone(),
                        });
                        let current = self.slots.get(slot).is_some_and(|s| s.current == Some(id));
                        match state {
                            WorkerState::Ready if current => {
                                self.want_replacement(slot, reason, false)
                            }
                            // Acted on when it becomes ready.
                            WorkerState::Starting => {}
                            _ => tracing::debug!(
                                slot,
                                pid,
                                "replacement request from a worker on its way out; ignored"
                            ),
                        }
                    }
                }
            }
            FromWorker::Invalid(id, why) => {
                let Some(w) = self.workers.get_mut(&id) else {
                    return;
                };
                w.invalid_messages += 1;
                let n = w.invalid_messages;
                if n <= INVALID_LOGGED || n.is_multiple_of(1000) {
                    let (slot, pid, generation) = (w.slot, w.pid, w.generation);
                    let why = if n > 1 {
                        format!("{why} (invalid message #{n})")
                    } else {
                        why
                    };
                    self.emit(Event::InvalidMessage {
                        slot,
                        pid,
                        generation,
                        why,
                    });
                }
            }
            FromWorker::Closed(id) => {
                if let Some(w) = self.workers.get(&id) {
                    tracing::debug!(slot = w.slot, pid = w.pid, "worker closed its IPC channel");
                }
            }
        }
    }

    pub(super) fn on_control(&mut self, c: Control) {
        let now = Instant::now();
        match c {
            Control::RollingRestart => self.rolling_restart(),
            Control::Stop => self.stop(now),
            Control::ScaleUp => {
                if self.stopping.is_none() {
                    self.slots.push(Slot::new(Backoff::new(
                        self.config.backoff_initial,
                        self.config.backoff_max,
                    )));
                    self.emit(Event::Scaled {
                        workers: self.slots.len(),
                    });
                }
            }
            Control::ScaleDown => {
                if self.stopping.is_none() && self.slots.len() > 1 {
                    let slot = self.slots.len() - 1;
                    let s = self.slots.pop().expect("more than one slot");
                    self.queue.retain(|q| *q != slot);
                    self.emit(Event::Scaled {
                        workers: self.slots.len(),
                    });
                    for id in [s.current, s.successor].into_iter().flatten() {
                        self.drain(id, "scaled down".into(), now);
                    }
                }
            }
            Control::Replace { slot, reason } => {
                if self.slots.get(slot).and_then(|s| s.current).is_some() {
                    self.want_replacement(slot, bounded_reason(reason), false);
                }
            }
        }
    }

    pub(super) fn stop(&mut self, now: Instant) {
        match self.stopping {
            None => {
                self.stopping = Some(Stopping::Graceful);
                if let Some(r) = self.rollout.take() {
                    self.emit(Event::RolloutAborted {
                        generation: r.target,
                        why: "stopping".into(),
                    });
                }
                self.queue.clear();
                for s in &mut self.slots {
                    s.pending = None;
                    s.current = None;
                    s.successor = None;
                }
                self.emit(Event::Stopping { forced: false });
                let ids: Vec<u64> = self.workers.keys().copied().collect();
                for id in ids {
                    self.drain(id, "stopping".into(), now);
                }
            }
            Some(Stopping::Graceful) => {
                self.stopping = Some(Stopping::Forced);
                self.emit(Event::Stopping { forced: true });
                let ids: Vec<u64> = self.workers.keys().copied().collect();
                for id in ids {
                    self.kill(id, "forced stop");
                }
            }
            Some(Stopping::Forced) => {}
        }
    }
}
