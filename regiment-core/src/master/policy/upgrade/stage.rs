//! The upgrade's rules: it begins (or is refused), it is refused by the driver, the new master
//! rolls its build out, and it ends as that rollout ends.

use std::time::Instant;

use super::super::ids::Generation;
use super::super::rollout::RolloutLog;
use super::super::{Effect, Policy};
use super::{Upgrade, UpgradeLog, UpgradeOutcome, UpgradeStage};
use crate::events::RolloutOutcome;

impl Policy {
    /// Begins an upgrade at `now`: its number, which [`Effect::Upgrade`] asks the driver to
    /// hand over for. `Err` says why not (see [`Policy::upgrade_refusal`]), and nothing happens
    /// then.
    pub(crate) fn begin_upgrade(&mut self, now: Instant) -> Result<u64, String> {
        if let Some(why) = self.upgrade_refusal() {
            return Err(why);
        }
        Ok(self.command(now, |policy| {
            let number = policy.upgrades.count + 1;
            policy.upgrades.count = number;
            policy.upgrades.under_way = Some(Upgrade {
                number,
                stage: UpgradeStage::Handover,
            });
            policy.upgrades.last = Some(UpgradeLog {
                number,
                outcome: UpgradeOutcome::InProgress,
                why: None,
                started: now,
                ended: None,
                generation: None,
            });
            policy.effects.push_back(Effect::Upgrade { number });
            number
        }))
    }

    /// The last upgrade begun, under way or ended.
    pub(crate) fn last_upgrade(&self) -> Option<&UpgradeLog> {
        self.upgrades.last.as_ref()
    }

    /// Why an upgrade cannot begin now, if it cannot: one is under way (one at a time), or the
    /// master is stopping.
    pub(crate) fn upgrade_refusal(&self) -> Option<String> {
        if self.stopping.is_some() {
            return Some("the master is stopping".into());
        }
        let u = self.upgrades.under_way?;
        Some(match u.stage {
            UpgradeStage::Handover => format!(
                "upgrade {} is under way: the master is handing over to its new binary",
                u.number
            ),
            UpgradeStage::Rolling(generation) => format!(
                "upgrade {} is under way: the new master rolls its build out to the workers \
                 (generation {generation})",
                u.number
            ),
        })
    }

    /// The driver could not hand upgrade `number` over (its preflight refused the new binary,
    /// the exec failed): the upgrade ends, refused, for `why`, and this master goes on. Nothing
    /// happens if that upgrade is no longer handed over (a stop ended it first).
    pub(crate) fn upgrade_refused(&mut self, now: Instant, number: u64, why: String) {
        self.command(now, |policy| {
            if policy.upgrades.under_way
                == Some(Upgrade {
                    number,
                    stage: UpgradeStage::Handover,
                })
            {
                policy.end_upgrade(UpgradeOutcome::Refused, Some(why), now);
            }
        });
    }

    /// This master was upgraded (its policy restored from the old master's state): it rolls
    /// the workers to its build, by a rolling restart with every gate of one. The generation
    /// rolled out; `Err` says why not (no upgrade is being handed over), and nothing happens
    /// then.
    pub(crate) fn upgraded(&mut self, now: Instant) -> Result<Generation, String> {
        let number = match self.upgrades.under_way {
            Some(Upgrade {
                number,
                stage: UpgradeStage::Handover,
            }) => number,
            Some(Upgrade {
                number,
                stage: UpgradeStage::Rolling(generation),
            }) => {
                return Err(format!(
                    "upgrade {number} already rolls generation {generation} out"
                ));
            }
            None => return Err("no upgrade is being handed over".into()),
        };
        self.command(now, |policy| match policy.start_rollout(now) {
            Some(generation) => {
                policy.upgrades.under_way = Some(Upgrade {
                    number,
                    stage: UpgradeStage::Rolling(generation),
                });
                if let Some(log) = &mut policy.upgrades.last {
                    log.generation = Some(generation);
                }
                Ok(generation)
            }
            None => Err("the master is stopping".into()),
        })
    }

    /// This master is the old program executed again: the new one could not take over, for
    /// `why`, and handed the same state back. The upgrade being handed over ends, rolled back,
    /// and this master goes on as before. `Err` when no upgrade is being handed over.
    pub(crate) fn upgrade_rolled_back(&mut self, now: Instant, why: String) -> Result<u64, String> {
        match self.upgrades.under_way {
            Some(Upgrade {
                number,
                stage: UpgradeStage::Handover,
            }) => {
                self.command(now, |policy| {
                    policy.end_upgrade(UpgradeOutcome::RolledBack, Some(why), now);
                });
                Ok(number)
            }
            _ => Err("no upgrade is being handed over".into()),
        }
    }

    /// A rollout ended (`log`, its record): the upgrade that rolls it out ends so, or follows
    /// the rollout that superseded it (which deploys the same new build).
    pub(in crate::master::policy) fn upgrade_follows(&mut self, log: &RolloutLog, now: Instant) {
        let Some(Upgrade {
            number,
            stage: UpgradeStage::Rolling(generation),
        }) = self.upgrades.under_way
        else {
            return;
        };
        if generation != log.generation {
            return;
        }
        match log.outcome {
            RolloutOutcome::Done => self.end_upgrade(UpgradeOutcome::Done, None, now),
            RolloutOutcome::Superseded => {
                let newer = self.rollouts.newest;
                self.upgrades.under_way = Some(Upgrade {
                    number,
                    stage: UpgradeStage::Rolling(newer),
                });
                if let Some(log) = &mut self.upgrades.last {
                    log.generation = Some(newer);
                }
            }
            // Not an end (never reported so), but not this stage's to judge either.
            RolloutOutcome::InProgress => {}
            RolloutOutcome::Aborted => {
                let why = format!(
                    "the rollout to generation {generation} was aborted: {}",
                    log.why.as_deref().unwrap_or("no reason given")
                );
                self.end_upgrade(UpgradeOutcome::Aborted, Some(why), now);
            }
        }
    }

    /// The master stops: an upgrade not handed over yet ends, refused (one that rolls its
    /// build out ends as its rollout is aborted).
    pub(in crate::master::policy) fn end_upgrade_for_stop(&mut self, now: Instant) {
        if let Some(Upgrade {
            stage: UpgradeStage::Handover,
            ..
        }) = self.upgrades.under_way
        {
            self.end_upgrade(
                UpgradeOutcome::Refused,
                Some("the master is stopping".into()),
                now,
            );
        }
    }

    /// Records, counts and reports the end of the upgrade under way.
    fn end_upgrade(&mut self, outcome: UpgradeOutcome, why: Option<String>, now: Instant) {
        if self.upgrades.under_way.take().is_none() {
            return;
        }
        if let Some(log) = &mut self.upgrades.last {
            log.outcome = outcome;
            log.why = why;
            log.ended = Some(now);
            self.stats.count_upgrade(outcome);
            self.effects.push_back(Effect::UpgradeEnded(log.clone()));
        }
    }
}
