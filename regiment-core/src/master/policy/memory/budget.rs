//! Rule 1: over the budget, the worker with the most private memory is replaced, one at a time.

use super::super::Policy;
use super::super::ids::WorkerId;
use super::super::slot::{Cause, Origin, Pending, SlotRole};
use super::{BudgetReplacement, megabytes};
use crate::events::Event;

impl Policy {
    /// After a reading: ends the budget replacement under way once it is done, and starts the
    /// next one if the regiment is, or heads, over its budget.
    pub(super) fn keep_to_budget(&mut self) {
        let Some(budget) = self.config.memory_budget else {
            return;
        };
        if self.stopping.is_some() {
            return;
        }
        if let Some(r) = self.memory.replacing
            && self.budget_replacement_done(r)
        {
            self.memory.replacing = None;
        }
        let headed_for = self.headed_for();
        if self.memory.replacing.is_some() || headed_for <= budget {
            return;
        }
        let Some((old, uss)) = self.largest_replaceable() else {
            return;
        };
        let total = self.memory.total;
        let over = if total > budget {
            format!(
                "holds {} of its {} budget",
                megabytes(total),
                megabytes(budget)
            )
        } else {
            format!(
                "holds {} and heads for {} by the next reading, over its {} budget",
                megabytes(total),
                megabytes(headed_for),
                megabytes(budget)
            )
        };
        let reason = format!(
            "memory-budget: the regiment {over}; this worker holds the most private memory, {}",
            megabytes(uss)
        );
        let Some(w) = self.workers.get_mut(&old) else {
            return;
        };
        w.replace_reason.get_or_insert_with(|| reason.clone());
        let (slot, pid, generation) = (w.slot, w.pid, w.generation);
        self.emit(Event::ReplaceRequested {
            slot,
            pid,
            generation: generation.0,
            reason: reason.clone(),
        });
        self.memory.replacing = Some(BudgetReplacement { old, slot });
        let s = &mut self.slots[slot];
        // A request already queued for this worker stands, and is this replacement; a
        // rollout's becomes the budget's (it survives an abort of the rollout).
        if s.pending
            .as_ref()
            .is_none_or(|p| p.origin() == Origin::Rollout)
        {
            s.pending = Some(Pending {
                reason,
                cause: Cause::MemoryBudget,
            });
        }
        // First in line: the regiment is over its budget.
        self.queue.retain(|q| *q != slot);
        self.queue.push_front(slot);
    }

    /// The worker replaced has exited, and its slot is served again (or is gone).
    fn budget_replacement_done(&self, r: BudgetReplacement) -> bool {
        let old_gone = !self.workers.contains_key(&r.old);
        let slot_serves = self.slots.get(r.slot).is_none_or(|s| {
            s.successor.is_none()
                && s.vacating.is_none()
                && s.current
                    .and_then(|c| self.workers.get(&c))
                    .is_some_and(|w| w.is_ready())
        });
        old_gone && slot_serves
    }

    /// The serving worker with the most private memory (USS) that no replacement is starting
    /// for, and its USS; the lowest slot among equals.
    fn largest_replaceable(&self) -> Option<(WorkerId, u64)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.successor.is_none() && s.vacating.is_none())
            .filter_map(|(slot, s)| {
                let id = s.current?;
                let w = self.workers.get(&id)?;
                let uss = w.memory?.uss;
                (w.is_ready() && self.role_of(slot, id) == SlotRole::Current).then_some((id, uss))
            })
            .rev()
            .max_by_key(|(_, uss)| *uss)
    }
}
