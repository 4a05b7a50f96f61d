//! `regiment status` for a person: a header, the master's program and start, the regiment's
//! memory, the last rollout (and the last upgrade of the master, if there was one), then one row
//! per worker, with the latency of its requests (p50 and p99 over its last heartbeat's
//! interval).

use std::fmt::Write;
use std::time::SystemTime;

use regiment_core::Status;
use regiment_core::events::WorkerState;

use crate::describe::{self, bytes, duration, latency, outcome};
use crate::memory;
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
    // The wall clock, read here: the master is on this machine (its control socket is a file).
    if let Some(line) = master(s, describe::unix_ms(SystemTime::now())) {
        let _ = writeln!(out, "{}", printable(&line));
    }
    if let Some(line) = memory::line(&s.memory) {
        let _ = writeln!(out, "{line}");
    }
    match &s.last_rollout {
        Some(r) => {
            let _ = writeln!(out, "last rollout: {}", outcome(r));
        }
        None => out.push_str("last rollout: none\n"),
    }
    if let Some(u) = &s.last_upgrade {
        let _ = writeln!(out, "last {}", describe::upgrade(u));
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
            "PSS",
            "USS",
            "REQUESTS",
            "P50",
            "P99",
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
            w.memory.map_or_else(|| "-".into(), |m| bytes(m.pss)),
            w.memory.map_or_else(|| "-".into(), |m| bytes(m.uss)),
            w.requests.to_string(),
            latency(w.latency_p50_us),
            latency(w.latency_p99_us),
            w.responses_5xx.to_string(),
            w.failures.to_string(),
            slot.map_or(0, |s| s.restarts).to_string(),
            w.replace_reason
                .as_deref()
                .or_else(|| slot.and_then(|s| s.last_restart_reason.as_deref()))
                .map_or_else(|| "-".into(), |why| printable(why).into_owned()),
        ]);
    }
    out.push_str(&crate::columns::aligned(&rows));
    out
}

/// `master program: PATH (modified …) · started …, up 3m12s`, as of `now_ms`; `None` from a
/// master of an earlier build, which says neither.
fn master(s: &Status, now_ms: u64) -> Option<String> {
    let started = (s.master_started_at_ms > 0).then(|| {
        format!(
            "started {}, up {}",
            describe::rfc3339(s.master_started_at_ms),
            duration(now_ms.saturating_sub(s.master_started_at_ms))
        )
    });
    let program = s.master_program.as_ref().map(ToString::to_string);
    if program.is_none() && started.is_none() {
        return None;
    }
    let program = program.unwrap_or_else(|| "unknown".into());
    Some(match started {
        Some(started) => format!("master program: {program} · {started}"),
        None => format!("master program: {program}"),
    })
}

fn state(s: WorkerState) -> &'static str {
    match s {
        WorkerState::Starting => "starting",
        WorkerState::Ready => "ready",
        WorkerState::Draining => "draining",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: &str) -> Status {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_master_reads_as_its_program_and_how_long_it_has_been_up() {
        let s = status(
            r#"{"master_pid":42,"generation":1,"good_generation":1,"workers_wanted":2,
                "rollout":null,"last_rollout":null,"stopping":false,"listeners":[],"admin":null,
                "workers":[],"slots":[],"master_started_at_ms":1796632007081,
                "master_program":{"path":"/srv/app/bin/hello","device":65024,"inode":5474756,
                "modified_ms":1796631000000}}"#,
        );
        assert_eq!(
            master(&s, 1_796_632_007_081 + 192_000).unwrap(),
            "master program: /srv/app/bin/hello (modified 2026-12-07T08:10:00Z) · started \
             2026-12-07T08:26:47Z, up 3m12s"
        );
        assert!(status(&serde_json::to_string(&s).unwrap()) == s);
        // A master of an earlier build says neither: no line, rather than one dated 1970.
        let older = status(
            r#"{"master_pid":42,"generation":1,"good_generation":1,"workers_wanted":2,
                "rollout":null,"last_rollout":null,"stopping":false,"listeners":[],"admin":null,
                "workers":[],"slots":[]}"#,
        );
        assert_eq!(master(&older, 1_796_632_007_081), None);
        assert!(!super::status(&older).contains("master program"));
    }

    /// The budget's line under the header, each worker's private memory beside its RSS, and
    /// its latency beside its requests: `-` for a worker the master has not read yet, or that
    /// finished no request in its last heartbeat's interval.
    #[test]
    fn the_memory_and_latency_read_per_worker_and_against_the_budget() {
        let s = status(
            r#"{"master_pid":42,"generation":1,"good_generation":1,"workers_wanted":2,
                "rollout":null,"last_rollout":null,"stopping":false,"listeners":[],"admin":null,
                "slots":[{"slot":0,"restarts":0,"last_restart_reason":null},
                         {"slot":1,"restarts":1,"last_restart_reason":"memory-budget: test"}],
                "workers":[
                  {"slot":0,"pid":100,"generation":1,"state":"ready","age_ms":192000,
                   "rss":50659328,"requests":7,"in_flight":0,"responses_5xx":0,"failures":0,
                   "latency_p50_us":850,"latency_p99_us":12700,
                   "memory":{"pss":12687769,"uss":10276044}},
                  {"slot":1,"pid":101,"generation":1,"state":"starting","age_ms":850,
                   "rss":0,"requests":0,"in_flight":0,"responses_5xx":0,"failures":0}],
                "memory":{"budget":{"bytes":209715200,"source":{"kind":"percent-of-limit","percent":80}},
                          "limit":{"bytes":262144000,"source":"memory.max of /kubepods/pod1/app"},
                          "total":17000000,"master":{"pss":4300000,"uss":3000000}}}"#,
        );
        let text = super::status(&s);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.contains(
                &"memory: 16.2 MiB of 200.0 MiB budget (80% of limit 250.0 MiB, memory.max of \
                  /kubepods/pod1/app) · master 4.1 MiB"
            ),
            "{text}"
        );
        let table = &lines[lines.iter().position(|l| l.starts_with("SLOT")).unwrap()..];
        let cells = |line: &str| -> Vec<String> {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        };
        let header = cells(table[0]);
        let column = |name: &str| header.iter().position(|h| h == name).unwrap();
        let (rss, pss, uss) = (column("RSS"), column("PSS"), column("USS"));
        assert_eq!((pss, uss), (rss + 1, rss + 2), "{header:?}");
        let read = cells(table[1]);
        assert_eq!(
            (&*read[rss], &*read[pss], &*read[uss]),
            ("48.3 MiB", "12.1 MiB", "9.8 MiB"),
            "{text}"
        );
        let (p50, p99) = (column("P50"), column("P99"));
        assert_eq!((p50, p99), (column("REQUESTS") + 1, p50 + 1), "{header:?}");
        assert_eq!((&*read[p50], &*read[p99]), ("850µs", "12ms"), "{text}");
        let unread = cells(table[2]);
        assert_eq!(
            (&*unread[rss], &*unread[pss], &*unread[uss]),
            ("-", "-", "-"),
            "{text}"
        );
        assert_eq!((&*unread[p50], &*unread[p99]), ("-", "-"), "{text}");
        assert_eq!(unread.last().unwrap(), "memory-budget: test", "{text}");
        assert!(status(&serde_json::to_string(&s).unwrap()) == s);
    }
}
