//! The pane of latest events. The control socket streams events only to the command that
//! started a rollout, so the pane is fed two ways: what changed between two statuses (a worker
//! spawned, ready, draining or gone, a slot restarted and why, a rollout begun or ended, its
//! canary judged, a scale), and the events streamed to the reloads this view starts. The first
//! status seeds it with what the master remembers: the last rollout and upgrade, and each
//! slot's last restart. The kill reports the master took come in too, a line each, at the time
//! they were taken (see `reports`).

use std::collections::VecDeque;
use std::time::SystemTime;

use regiment_core::Status;
use regiment_core::events::{CanaryVerdict, RolloutOutcome, WorkerState};

use crate::describe;
use crate::printable::printable;

/// Lines kept: more than any terminal shows.
const KEPT: usize = 200;

/// One line of the pane.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    /// When it happened, where known.
    pub(crate) at: Option<SystemTime>,
    /// What happened, printable.
    pub(crate) text: String,
}

impl Entry {
    /// `08:26:47  slot 1: pid 4242 ready` (UTC), `--:--:--` where the time is unknown.
    pub(crate) fn line(&self) -> String {
        let at = self.at.map_or_else(
            || "--:--:--".to_owned(),
            |at| {
                let stamp = humantime::format_rfc3339_seconds(at).to_string();
                stamp.get(11..19).unwrap_or("--:--:--").to_owned()
            },
        );
        format!("{at}  {}", self.text)
    }
}

/// The latest events, newest last.
#[derive(Default)]
pub(crate) struct Pane {
    entries: VecDeque<Entry>,
}

impl Pane {
    /// Adds a line that happened `at`.
    pub(crate) fn push(&mut self, at: Option<SystemTime>, text: &str) {
        if self.entries.len() == KEPT {
            self.entries.pop_front();
        }
        self.entries.push_back(Entry {
            at,
            text: printable(text).into_owned(),
        });
    }

    /// The newest `n` entries, oldest first.
    pub(crate) fn newest(&self, n: usize) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .skip(self.entries.len().saturating_sub(n))
    }

    /// What the master remembers, from its first status.
    pub(crate) fn seed(&mut self, s: &Status) {
        if let Some(u) = &s.last_upgrade {
            self.push(
                Some(describe::at_unix_ms(
                    u.ended_at_ms.unwrap_or(u.started_at_ms),
                )),
                &format!("last {}", describe::upgrade(u)),
            );
        }
        if let Some(r) = &s.last_rollout {
            self.push(
                Some(describe::at_unix_ms(
                    r.ended_at_ms.unwrap_or(r.started_at_ms),
                )),
                &format!("last rollout: {}", describe::outcome(r)),
            );
        }
        for slot in s.slots.iter().filter(|slot| slot.restarts > 0) {
            let why = slot
                .last_restart_reason
                .as_deref()
                .unwrap_or("no reason given");
            let restarts = match slot.restarts {
                1 => "1 restart".to_owned(),
                n => format!("{n} restarts"),
            };
            self.push(
                None,
                &format!("slot {}: {restarts}, the last: {why}", slot.slot),
            );
        }
    }

    /// What changed from `before` to `now`, seen at `at`.
    pub(crate) fn observe(&mut self, before: &Status, now: &Status, at: SystemTime) {
        for line in changes(before, now) {
            self.push(Some(at), &line);
        }
    }
}

/// What changed from `before` to `now`, one line each, in the order a person reads them.
fn changes(before: &Status, now: &Status) -> Vec<String> {
    let mut lines = Vec::new();
    if now.master_pid != before.master_pid {
        lines.push(format!(
            "the master is now pid {} (was {})",
            now.master_pid, before.master_pid
        ));
    }
    if now.last_upgrade != before.last_upgrade
        && let Some(u) = &now.last_upgrade
    {
        lines.push(describe::upgrade(u));
    }
    if let Some(g) = now.rollout
        && before.rollout != Some(g)
    {
        lines.push(format!("rolling restart to generation {g} started"));
    }
    if now.workers_wanted != before.workers_wanted {
        lines.push(format!(
            "scaling from {} to {} workers",
            before.workers_wanted, now.workers_wanted
        ));
    }
    let same_rollout = |a: &Status, b: &Status| {
        a.last_rollout
            .as_ref()
            .map(|r| (r.generation, r.started_at_ms))
            == b.last_rollout
                .as_ref()
                .map(|r| (r.generation, r.started_at_ms))
    };
    if let Some(r) = &now.last_rollout {
        let verdict_before = if same_rollout(before, now) {
            before.last_rollout.as_ref().and_then(|r| r.canary)
        } else {
            None
        };
        if let (Some(v), None) = (r.canary, verdict_before) {
            lines.push(format!("generation {}: {}", r.generation, canary(&v)));
        }
    }
    for w in &now.workers {
        match before.workers.iter().find(|b| b.pid == w.pid) {
            None => lines.push(format!(
                "slot {}: pid {} started (generation {}){}",
                w.slot,
                w.pid,
                w.generation,
                if w.state == WorkerState::Ready {
                    ", ready"
                } else {
                    ""
                }
            )),
            Some(b) if b.state != w.state => lines.push(match w.state {
                WorkerState::Ready => format!("slot {}: pid {} ready", w.slot, w.pid),
                WorkerState::Draining => format!("slot {}: pid {} draining", w.slot, w.pid),
                WorkerState::Starting => format!("slot {}: pid {} starting", w.slot, w.pid),
            }),
            Some(_) => {}
        }
    }
    for b in &before.workers {
        if !now.workers.iter().any(|w| w.pid == b.pid) {
            lines.push(format!("slot {}: pid {} gone", b.slot, b.pid));
        }
    }
    for slot in &now.slots {
        let restarts_before = before
            .slots
            .iter()
            .find(|s| s.slot == slot.slot)
            .map_or(0, |s| s.restarts);
        if slot.restarts > restarts_before {
            let why = slot
                .last_restart_reason
                .as_deref()
                .unwrap_or("no reason given");
            lines.push(format!("slot {}: restarted ({why})", slot.slot));
        }
    }
    if let Some(r) = &now.last_rollout
        && r.outcome != RolloutOutcome::InProgress
        && (!same_rollout(before, now)
            || before.last_rollout.as_ref().map(|b| b.outcome) != Some(r.outcome))
    {
        lines.push(format!("rollout: {}", describe::outcome(r)));
    }
    if now.stopping && !before.stopping {
        lines.push("the master is stopping: every worker drains".into());
    }
    lines
}

/// `canary passed: 2 of 412 failed (good: 1 of 830)`.
pub(crate) fn canary(v: &CanaryVerdict) -> String {
    format!(
        "canary {}: {} of {} failed (good: {} of {})",
        if v.passed { "passed" } else { "refused" },
        v.canary.failed(),
        v.canary.requests,
        v.good.failed(),
        v.good.requests
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: serde_json::Value) -> Status {
        let mut base = serde_json::json!({"master_pid": 42, "generation": 1,
            "good_generation": 1, "workers_wanted": 2, "rollout": null, "last_rollout": null,
            "stopping": false, "listeners": [], "admin": null, "workers": [], "slots": []});
        for (k, v) in json.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn worker(slot: usize, pid: u32, generation: u64, state: &str) -> serde_json::Value {
        serde_json::json!({"slot": slot, "pid": pid, "generation": generation, "state": state,
            "age_ms": 1000, "rss": 0, "requests": 0, "in_flight": 0, "responses_5xx": 0,
            "failures": 0, "replace_reason": null, "program": null})
    }

    #[test]
    fn a_rolling_restart_reads_as_it_happened_between_two_statuses() {
        let before = status(serde_json::json!({
            "workers": [worker(0, 100, 1, "ready"), worker(1, 101, 1, "ready")],
            "slots": [{"slot": 0, "restarts": 0, "last_restart_reason": null},
                      {"slot": 1, "restarts": 0, "last_restart_reason": null}]}));
        let during = status(serde_json::json!({
            "generation": 2, "rollout": 2,
            "last_rollout": {"generation": 2, "outcome": "in-progress", "why": null,
                "replaced": 1, "started_at_ms": 1000, "ended_at_ms": null,
                "canary": {"canary": {"requests": 412, "responses_5xx": 2, "failures": 0},
                           "good": {"requests": 830, "responses_5xx": 1, "failures": 0},
                           "passed": true}},
            "workers": [worker(0, 100, 1, "draining"), worker(0, 200, 2, "ready"),
                        worker(1, 101, 1, "ready")],
            "slots": [{"slot": 0, "restarts": 1, "last_restart_reason": "rolling restart"},
                      {"slot": 1, "restarts": 0, "last_restart_reason": null}]}));
        assert_eq!(
            changes(&before, &during),
            [
                "rolling restart to generation 2 started",
                "generation 2: canary passed: 2 of 412 failed (good: 1 of 830)",
                "slot 0: pid 100 draining",
                "slot 0: pid 200 started (generation 2), ready",
                "slot 0: restarted (rolling restart)",
            ]
        );
        let mut after = during.clone();
        after.rollout = None;
        after.good_generation = 2;
        let r = after.last_rollout.as_mut().unwrap();
        r.outcome = RolloutOutcome::Done;
        r.replaced = 2;
        r.ended_at_ms = Some(4200);
        after.workers.retain(|w| w.pid != 100);
        assert_eq!(
            changes(&during, &after),
            [
                "slot 0: pid 100 gone",
                "rollout: generation 2 done: 2 workers replaced in 3.2s"
            ]
        );
        assert!(
            changes(&after, &after).is_empty(),
            "nothing changed, nothing said"
        );
    }

    #[test]
    fn the_pane_starts_with_what_the_master_remembers_and_keeps_the_newest() {
        let s = status(serde_json::json!({
            "last_rollout": {"generation": 3, "outcome": "aborted",
                "why": "generation 3 failed to start", "replaced": 0,
                "started_at_ms": 1_796_632_000_000u64, "ended_at_ms": 1_796_632_007_000u64},
            "slots": [{"slot": 1, "restarts": 2, "last_restart_reason": "crashed\u{1b}[2J"}]}));
        let mut pane = Pane::default();
        pane.seed(&s);
        let lines: Vec<String> = pane.newest(10).map(Entry::line).collect();
        assert_eq!(
            lines,
            [
                "08:26:47  last rollout: generation 3 aborted: generation 3 failed to start (0 \
                 workers replaced in 7.0s); the last good program keeps serving",
                "--:--:--  slot 1: 2 restarts, the last: crashed\\u{1b}[2J",
            ]
        );
        for i in 0..KEPT {
            pane.push(None, &i.to_string());
        }
        let newest: Vec<&str> = pane.newest(2).map(|e| e.text.as_str()).collect();
        assert_eq!(newest, [(KEPT - 2).to_string(), (KEPT - 1).to_string()]);
        assert_eq!(pane.entries.len(), KEPT);
    }
}
