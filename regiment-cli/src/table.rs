//! `regiment status` for a person: a header, the last rollout, then one row per worker.

use std::fmt::Write;

use regiment_core::Status;
use regiment_core::events::WorkerState;

use crate::describe::{bytes, duration, outcome};
use crate::printable::printable;

pub(crate) fn status(s: &Status) -> String {
    let mut out = String::new();
    let ready = s
        .workers
        .iter()
        .filter(|w| w.state == WorkerState::Ready)
        .count();
    let _ = write!(
        out,
        "master {} · {ready}/{} workers ready · generation {}",
        s.master_pid, s.workers_wanted, s.generation
    );
    if s.good_generation != s.generation {
        let _ = write!(out, " (good {})", s.good_generation);
    }
    if let Some(g) = s.rollout {
        let _ = write!(out, " · rolling to {g}");
    }
    if s.stopping {
        out.push_str(" · stopping");
    }
    if !s.listeners.is_empty() {
        let _ = write!(out, " · {}", printable(&s.listeners.join(", ")));
    }
    out.push('\n');
    match &s.last_rollout {
        Some(r) => {
            let _ = writeln!(out, "last rollout: {}", outcome(r));
        }
        None => out.push_str("last rollout: none\n"),
    }
    out.push('\n');

    let mut rows = vec![
        [
            "SLOT",
            "PID",
            "GEN",
            "STATE",
            "AGE",
            "RSS",
            "REQUESTS",
            "5XX",
            "FAILED",
            "RESTARTS",
            "LAST REASON",
        ]
        .map(String::from),
    ];
    let mut workers: Vec<_> = s.workers.iter().collect();
    workers.sort_by_key(|w| (w.slot, w.pid));
    for w in workers {
        let slot = s.slots.iter().find(|slot| slot.slot == w.slot);
        rows.push([
            w.slot.to_string(),
            w.pid.to_string(),
            w.generation.to_string(),
            state(w.state).into(),
            duration(w.age_ms),
            bytes(w.rss),
            w.requests.to_string(),
            w.responses_5xx.to_string(),
            w.failures.to_string(),
            slot.map_or(0, |s| s.restarts).to_string(),
            w.replace_reason
                .as_deref()
                .or_else(|| slot.and_then(|s| s.last_restart_reason.as_deref()))
                .map_or_else(|| "-".into(), |why| printable(why).into_owned()),
        ]);
    }
    let widths: Vec<usize> = (0..11)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

fn state(s: WorkerState) -> &'static str {
    match s {
        WorkerState::Starting => "starting",
        WorkerState::Ready => "ready",
        WorkerState::Draining => "draining",
    }
}
