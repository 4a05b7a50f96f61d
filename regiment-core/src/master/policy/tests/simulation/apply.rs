//! How each step of a history acts on the world.

use super::*;
use crate::events::ProcessMemory;
use crate::master::policy::MemoryReading;

impl World {
    /// Applies one step; tells whether it may lower the number of ready workers.
    pub(super) fn apply(&mut self, step: &Step) -> Lowers {
        match *step {
            Step::Advance(d) => {
                // SIGKILL is not ignored: the killed processes are reaped before time goes on.
                let killed: Vec<WorkerId> = self
                    .h
                    .processes
                    .iter()
                    .filter(|(_, p)| p.killed.is_some())
                    .map(|(id, _)| *id)
                    .collect();
                for id in killed {
                    self.exit(id, "signal 9 (SIGKILL)");
                }
                self.h.advance(d);
            }
            Step::Ready(k) => {
                if let Some(id) = self.nth_live(k) {
                    if self.bad.contains(&self.h.processes[&id].generation) {
                        self.exit(id, "exit 3");
                    } else {
                        self.h.ready_worker(id);
                    }
                }
            }
            Step::Exit(k) => {
                if let Some(id) = self.nth_live(k) {
                    let status = if self.h.processes[&id].drained {
                        "exit 0"
                    } else {
                        "exit 101"
                    };
                    self.exit(id, status);
                    return Lowers::Maybe;
                }
            }
            Step::ReplaceMe(k) => {
                if let Some(id) = self.nth_live(k) {
                    self.h.replace_me(id, "rss 812 MB > 750 MB");
                }
            }
            Step::HeartbeatAndAsk(k) => {
                if let Some(id) = self.nth_live(k) {
                    self.report(id);
                    self.h.replace_me(id, "rss 9 MB > 0 MB");
                }
            }
            Step::Recycle => {
                let newest = self.h.policy.rollouts.newest;
                let recycled = self.h.policy.workers.iter().find(|(_, w)| {
                    w.is_ready() && w.generation == newest && w.replace_reason.is_none()
                });
                if let Some((id, _)) = recycled {
                    let id = *id;
                    self.h.replace_me(id, "request-count: 300 requests served");
                }
            }
            Step::Heartbeat(k) => {
                if let Some(id) = self.nth_live(k) {
                    self.heartbeat(id);
                }
            }
            Step::Garbage(k) => {
                if let Some(id) = self.nth_live(k) {
                    self.h.input(Input::InvalidMessage {
                        id,
                        why: "not JSON".into(),
                    });
                }
            }
            Step::Stray => {
                let id = self.gone.unwrap_or(WorkerId(u64::MAX));
                self.h.input(Input::Ready(id));
                self.h.replace_me(id, "late");
                self.h.exit(id, "exit 0");
            }
            Step::RollingRestart => self.h.control(Control::RollingRestart),
            Step::BadRollingRestart => {
                self.bad.insert(self.h.policy.rollouts.newest.next());
                self.h.control(Control::RollingRestart);
            }
            Step::ErroringRollingRestart => {
                self.erroring.insert(self.h.policy.rollouts.newest.next());
                self.h.control(Control::RollingRestart);
            }
            Step::PanickingRollingRestart => {
                self.panicking.insert(self.h.policy.rollouts.newest.next());
                self.h.control(Control::RollingRestart);
            }
            Step::Handover => self.hand_over(),
            Step::Upgrade => {
                let begun = self.h.policy.begin_upgrade(self.h.now);
                self.h.pump_effects();
                if begun.is_ok() {
                    self.hand_over();
                    let _ = self.h.policy.upgraded(self.h.now);
                    self.h.pump_effects();
                }
            }
            Step::RolledBackUpgrade => {
                let begun = self.h.policy.begin_upgrade(self.h.now);
                self.h.pump_effects();
                if begun.is_ok() {
                    self.hand_over();
                    let why = "the new master's options are refused".into();
                    let _ = self.h.policy.upgrade_rolled_back(self.h.now, why);
                    self.h.pump_effects();
                }
            }
            Step::RefusedUpgrade => {
                if let Ok(number) = self.h.policy.begin_upgrade(self.h.now) {
                    self.h.pump_effects();
                    let why = "preflight: the new binary exited 1".into();
                    self.h.policy.upgrade_refused(self.h.now, number, why);
                }
                self.h.pump_effects();
            }
            Step::Stop => {
                self.h.control(Control::Stop);
                return Lowers::Maybe;
            }
            Step::ForcedStop => {
                self.h.control(Control::ForcedStop);
                return Lowers::Maybe;
            }
            Step::ScaleUp => {
                let budgeted = self.h.policy.config.memory_budget.is_some();
                if !budgeted || self.h.policy.slots.len() < BUDGETED_SLOTS {
                    self.h.control(Control::ScaleUp);
                }
            }
            Step::ScaleDown => {
                self.h.control(Control::ScaleDown);
                return Lowers::Maybe;
            }
            Step::ScaleTo(workers) => {
                self.h.control(Control::ScaleTo(workers));
                return Lowers::Maybe;
            }
            Step::Replace(slot) => self.h.control(Control::Replace {
                slot,
                reason: "operator".into(),
            }),
            Step::FailSpawns(n) => self
                .h
                .spawn_answers
                .extend(std::iter::repeat_n(SpawnAnswer::Fail, n.into())),
            Step::FailSpawnWithLeftover => self
                .h
                .spawn_answers
                .push_back(SpawnAnswer::FailWithLeftover),
            Step::ReadyAll => loop {
                // Until none is left starting: a ready worker may start a replacement.
                let starting = self.h.in_phase(|p| matches!(p, Phase::Starting { .. }));
                if starting.is_empty() {
                    break;
                }
                for id in starting {
                    if self.bad.contains(&self.h.processes[&id].generation) {
                        self.exit(id, "exit 3");
                    } else {
                        self.h.ready_worker(id);
                    }
                }
            },
            Step::HeartbeatAll => {
                for id in self.h.in_phase(|p| matches!(p, Phase::Ready { .. })) {
                    self.heartbeat(id);
                }
            }
            Step::Grow(k, mb) => {
                if let Some(id) = self.nth_live(k) {
                    let size = self.size(id) + mb * MB;
                    self.sizes.insert(id, size);
                }
            }
            Step::ReadMemory => {
                let workers = (self.h.processes.keys())
                    .map(|id| {
                        let uss = self.size(*id);
                        (*id, ProcessMemory { pss: uss + MB, uss })
                    })
                    .collect();
                self.h.input(Input::Memory(MemoryReading {
                    master: Some(ProcessMemory {
                        pss: MASTER,
                        uss: MASTER,
                    }),
                    workers,
                }));
            }
            Step::ExitLeaving => {
                if let Some(id) = self.h.processes.keys().next_back() {
                    self.gone = Some(*id);
                }
                self.h.exit_leaving();
            }
        }
        Lowers::No
    }

    /// Hands the books over to a new policy with the same options, unless this is the twin.
    fn hand_over(&mut self) {
        if self.handovers == Handovers::Made {
            let config = self.h.policy.config;
            self.h.hand_over(config, self.h.now);
        }
    }
}
