//! A worker that asks to be replaced before it has served anything (rule 5, by another name).
//!
//! Replaced at once, such a worker is replaced as fast as workers start: its successor asks in
//! turn as soon as it starts (a `MemoryFootprint` threshold below what the app needs to start,
//! a criterion that fires on an idle worker), and so on, spawning workers as fast as a crash
//! loop would, with no backoff and no word. So its replacement waits out its slot's backoff, as
//! after a failed start, and an event says why; the worker serves meanwhile, as every worker
//! that asked does until its successor is ready.
//!
//! "Before it has served anything" is what the master can tell for certain:
//! - it asked before it was ready (it was not taking traffic yet); or
//! - its heartbeats count no request, and it asked within the healthy period (the backoff's
//!   `reset_after`) of becoming ready. Regiment's workers send a heartbeat right before they
//!   ask, so the count is that of the moment it asked, not of up to an interval before. A
//!   worker that sends no heartbeats (a regiment-core app that counts no requests) tells
//!   nothing of what it served, and is judged only by the first rule; one that served none for
//!   a healthy period (an idle service recycled by `MaxAge`) asks for a good reason.
//!
//! A time since ready alone would not do: a worker recycled after its 10 000th request can get
//! there within a second under load, and it did serve.

use std::time::Instant;

use super::ids::WorkerId;
use super::worker::{Heartbeats, Phase};
use super::{Policy, millis};
use crate::events::Event;

impl Policy {
    /// Backs the replacement of `id`'s slot off if `id` asked for it before it served anything;
    /// `asked_before_ready` when its request came while it was starting. Called as the
    /// replacement is wanted: when a ready worker asks, or when one that asked becomes ready.
    pub(super) fn back_off_if_unserved(
        &mut self,
        id: WorkerId,
        asked_before_ready: bool,
        now: Instant,
    ) {
        let Some(w) = self.workers.get(&id) else {
            return;
        };
        let healthy_after = self.config.backoff.reset_after;
        let how = if asked_before_ready {
            "before it was ready".to_owned()
        } else {
            let Phase::Ready { since } = w.phase else {
                return;
            };
            let ready_for = now.saturating_duration_since(since);
            if w.heartbeats == Heartbeats::NoneYet
                || w.load.requests > 0
                || ready_for >= healthy_after
            {
                return;
            }
            format!(
                "its heartbeats count no request in the {} ms it was ready",
                millis(ready_for)
            )
        };
        let (slot, pid, generation) = (w.slot, w.pid, w.generation);
        // A replacement already starting (a rollout's) is not held back.
        let Some(s) = self.slots.get_mut(slot).filter(|s| s.successor.is_none()) else {
            return;
        };
        let until = now + s.backoff.next_delay(now);
        // A slot already backing off (a failed start) waits for the later of the two.
        let retry_at = s.retry_at.map_or(until, |t| t.max(until));
        s.retry_at = Some(retry_at);
        self.emit(Event::ReplacementDelayed {
            slot,
            pid,
            generation: generation.0,
            why: format!(
                "it asked before serving anything ({how}); replaced at once, a worker that asks \
                 as soon as it starts would be replaced as fast as workers start: a crash loop \
                 by another name"
            ),
            wait_ms: millis(retry_at - now),
        });
    }
}
