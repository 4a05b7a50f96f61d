//! Events and outcomes as lines a person reads, and the figures in them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use regiment_core::Event;
use regiment_core::events::{RolloutOutcome, RolloutRecord, UpgradeOutcome, UpgradeRecord};

use crate::printable::printable;

/// One line for an event of a rollout's progress, printable; `None` for those that say
/// nothing of it.
pub(crate) fn event(e: &Event) -> Option<String> {
    event_text(e).map(|line| printable(&line).into_owned())
}

fn event_text(e: &Event) -> Option<String> {
    Some(match e {
        Event::RolloutStarted { generation } => {
            format!("rolling restart to generation {generation} started")
        }
        Event::Spawned {
            slot,
            pid,
            generation,
            replaces,
            ..
        } => match replaces {
            Some(old) => {
                format!(
                    "slot {slot}: pid {pid} started (generation {generation}), to replace pid {old}"
                )
            }
            None => format!("slot {slot}: pid {pid} started (generation {generation})"),
        },
        Event::Ready { slot, pid, .. } => format!("slot {slot}: pid {pid} ready"),
        Event::Draining { slot, pid, why, .. } => {
            format!("slot {slot}: pid {pid} draining ({why})")
        }
        Event::Exited {
            slot,
            pid,
            status,
            abandoned_drain: Some(left),
            ..
        } => format!("slot {slot}: pid {pid} {left}, exited ({status})"),
        Event::Exited {
            slot, pid, status, ..
        } => format!("slot {slot}: pid {pid} exited ({status})"),
        Event::Killed { slot, pid, why, .. } => format!("slot {slot}: pid {pid} killed ({why})"),
        Event::Crashed {
            slot,
            pid,
            killed_from_outside: Some(_),
            status,
            ..
        } => format!("slot {slot}: pid {pid} {status}"),
        Event::Crashed {
            slot, pid, status, ..
        } => format!("slot {slot}: pid {pid} crashed ({status})"),
        Event::StartFailed { slot, pid, why, .. } => {
            format!("slot {slot}: pid {pid} failed to start ({why})")
        }
        Event::CanaryPassed { generation, why } => {
            format!("canary of generation {generation} passed ({why})")
        }
        _ => return None,
    })
}

/// The outcome of a rollout, with its reason when it did not complete; printable.
pub(crate) fn outcome(r: &RolloutRecord) -> String {
    printable(&outcome_text(r)).into_owned()
}

/// ` in 5.3s` once it ended, else nothing.
fn took(started_at_ms: u64, ended_at_ms: Option<u64>) -> String {
    ended_at_ms
        .map(|end| format!(" in {}", duration(end.saturating_sub(started_at_ms))))
        .unwrap_or_default()
}

/// `: why` when there is a reason, else nothing.
fn because(why: Option<&str>) -> String {
    why.map(|w| format!(": {w}")).unwrap_or_default()
}

fn outcome_text(r: &RolloutRecord) -> String {
    let took = took(r.started_at_ms, r.ended_at_ms);
    let why = because(r.why.as_deref());
    let replaced = match r.replaced {
        1 => "1 worker replaced".to_owned(),
        n => format!("{n} workers replaced"),
    };
    let g = r.generation;
    match r.outcome {
        RolloutOutcome::Done => format!("generation {g} done: {replaced}{took}"),
        RolloutOutcome::Aborted => format!(
            "generation {g} aborted{why} ({replaced}{took}); the last good program keeps serving"
        ),
        RolloutOutcome::Superseded => format!("generation {g} superseded{why} ({replaced}{took})"),
        RolloutOutcome::InProgress => format!("generation {g} in progress ({replaced})"),
        _ => format!("generation {g}: {:?}{why}", r.outcome),
    }
}

/// How an upgrade of the master went, with its reason when it was not done; printable.
pub(crate) fn upgrade(r: &UpgradeRecord) -> String {
    printable(&upgrade_text(r)).into_owned()
}

fn upgrade_text(r: &UpgradeRecord) -> String {
    let took = took(r.started_at_ms, r.ended_at_ms);
    let why = because(r.why.as_deref());
    let n = r.number;
    let workers = match r.generation {
        Some(g) => format!("its workers run generation {g}"),
        None => "its workers run its build".to_owned(),
    };
    match r.outcome {
        UpgradeOutcome::Done => {
            format!("upgrade {n} done{took}: the new master runs, and {workers}")
        }
        UpgradeOutcome::Aborted => format!(
            "upgrade {n} aborted{took}{why}; the new master runs, and the workers run the last \
             good program"
        ),
        UpgradeOutcome::Refused => {
            format!("upgrade {n} refused{took}{why}; the master goes on as before")
        }
        UpgradeOutcome::RolledBack => format!(
            "upgrade {n} rolled back{took}{why}; the master runs its previous program again, as \
             before"
        ),
        UpgradeOutcome::InProgress => format!("upgrade {n} in progress"),
    }
}

/// `at` in Unix milliseconds, as the master counts time (0 before 1970).
pub(crate) fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The instant the master gave as `ms` Unix milliseconds.
pub(crate) fn at_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// `2026-12-07T08:26:47Z`: the instant the master gave as `ms` Unix milliseconds.
pub(crate) fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(at_unix_ms(ms)).to_string()
}

/// `850ms`, `4.2s`, `3m12s`, `2h05m`, `3d04h`.
pub(crate) fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..60 => format!("{}.{}s", s, (ms % 1000) / 100),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A latency from a worker's heartbeat, in microseconds: `850µs`, `2.4ms`, `12ms`, `1.3s`;
/// `-` when no request finished in the heartbeat's interval. As precise as the figure is: the
/// workers' buckets double in width, so a third digit would say more than they know.
pub(crate) fn latency(us: Option<u64>) -> String {
    match us {
        None => "-".into(),
        Some(us @ ..1_000) => format!("{us}µs"),
        Some(us @ ..10_000) => format!("{}.{}ms", us / 1000, (us % 1000) / 100),
        Some(us @ ..1_000_000) => format!("{}ms", us / 1000),
        Some(us) => duration(us / 1000),
    }
}

/// `512 KiB`, `48.3 MiB`, `1.2 GiB`; `-` before the first heartbeat.
pub(crate) fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let f = n as f64;
    if n == 0 {
        "-".into()
    } else if f < KIB * KIB {
        format!("{:.0} KiB", f / KIB)
    } else if f < KIB * KIB * KIB {
        format!("{:.1} MiB", f / (KIB * KIB))
    } else {
        format!("{:.1} GiB", f / (KIB * KIB * KIB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_latencies_and_sizes_read_at_a_glance() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(4_250), "4.2s");
        assert_eq!(duration(192_000), "3m12s");
        assert_eq!(duration(7_500_000), "2h05m");
        assert_eq!(duration(3 * 86_400_000 + 4 * 3_600_000), "3d04h");
        assert_eq!(latency(None), "-");
        assert_eq!(latency(Some(850)), "850µs");
        assert_eq!(latency(Some(2_450)), "2.4ms");
        assert_eq!(latency(Some(12_700)), "12ms");
        assert_eq!(latency(Some(1_340_000)), "1.3s");
        assert_eq!(latency(Some(16_800_000)), "16.8s");
        assert_eq!(bytes(0), "-");
        assert_eq!(bytes(512 * 1024), "512 KiB");
        assert_eq!(bytes(50_659_328), "48.3 MiB");
        assert_eq!(bytes(1_288_490_189), "1.2 GiB");
    }

    #[test]
    fn a_kill_from_outside_reads_as_one_not_as_a_crash() {
        let crashed = |status: &str, killed_from_outside: Option<&str>| Event::Crashed {
            slot: 1,
            pid: 42,
            generation: 2,
            status: status.into(),
            respawn_in_ms: 100,
            killed_from_outside: killed_from_outside.map(Into::into),
            oom_killed: status.contains("OOM"),
        };
        assert_eq!(
            event(&crashed("killed by SIGKILL from outside", Some("SIGKILL"))).unwrap(),
            "slot 1: pid 42 killed by SIGKILL from outside"
        );
        assert_eq!(
            event(&crashed("killed by the OOM killer", Some("SIGKILL"))).unwrap(),
            "slot 1: pid 42 killed by the OOM killer"
        );
        assert_eq!(
            event(&crashed("signal 11 (SIGSEGV)", None)).unwrap(),
            "slot 1: pid 42 crashed (signal 11 (SIGSEGV))"
        );
    }

    #[test]
    fn an_upgrade_reads_as_how_it_went_and_why() {
        let record = |outcome: &str, why: Option<&str>, generation: Option<u64>| {
            serde_json::from_value::<UpgradeRecord>(serde_json::json!({
                "number": 2, "outcome": outcome, "why": why, "generation": generation,
                "started_at_ms": 10_000, "ended_at_ms": 14_200,
            }))
            .unwrap()
        };
        assert_eq!(
            upgrade(&record("done", None, Some(3))),
            "upgrade 2 done in 4.2s: the new master runs, and its workers run generation 3"
        );
        assert_eq!(
            upgrade(&record("refused", Some("the preflight failed"), None)),
            "upgrade 2 refused in 4.2s: the preflight failed; the master goes on as before"
        );
        assert_eq!(
            upgrade(&record(
                "rolled-back",
                Some("REGIMENT_WORKERS: bad\u{1b}[2J"),
                None
            )),
            "upgrade 2 rolled back in 4.2s: REGIMENT_WORKERS: bad\\u{1b}[2J; the master runs its \
             previous program again, as before"
        );
        assert_eq!(
            upgrade(&record(
                "aborted",
                Some("generation 3 failed to start"),
                Some(3)
            )),
            "upgrade 2 aborted in 4.2s: generation 3 failed to start; the new master runs, and \
             the workers run the last good program"
        );
    }

    #[test]
    fn a_drain_given_up_reads_as_one() {
        let exited: Event = serde_json::from_str(
            r#"{"event":"exited","slot":0,"pid":42,"generation":1,"status":"exit 1",
                "abandoned_drain":{"in_flight":1,"connections":2}}"#,
        )
        .unwrap();
        assert_eq!(
            event(&exited).unwrap(),
            "slot 0: pid 42 gave up its drain with 1 request in flight (2 connections open), \
             exited (exit 1)"
        );
        // From a master of an earlier build, without the field.
        let exited: Event = serde_json::from_str(
            r#"{"event":"exited","slot":0,"pid":42,"generation":1,"status":"exit 0"}"#,
        )
        .unwrap();
        assert_eq!(event(&exited).unwrap(), "slot 0: pid 42 exited (exit 0)");
    }
}
