//! Lifecycle events as `tracing` events, with the worker's slot, pid and generation as fields.
//!
//! These lines are for people: durations read as durations (`deadline=30s`), a program as its
//! path and date. The events' JSON (`Handle::events`, serialized for scripts) keeps the machine
//! fields (`deadline_ms`, device and inode).

use std::time::Duration;

use humantime::format_duration;

use crate::events::Event;

/// `30s`, `1m 40s`, `250ms`.
fn ms(ms: u64) -> humantime::FormattedDuration {
    format_duration(Duration::from_millis(ms))
}

pub(crate) fn log(e: &Event) {
    use Event::*;
    match e {
        Listening { addrs } => {
            let addrs = addrs.join(", ");
            tracing::info!(target: "regiment", %addrs, "master listening")
        }
        Spawned {
            slot,
            pid,
            generation,
            replaces,
            program,
        } => {
            tracing::info!(target: "regiment", slot, pid, generation, replaces, %program, "worker spawned")
        }
        Ready {
            slot,
            pid,
            generation,
        } => tracing::info!(target: "regiment", slot, pid, generation, "worker ready"),
        ReplaceRequested {
            slot,
            pid,
            generation,
            reason,
        } => {
            tracing::info!(target: "regiment", slot, pid, generation, %reason, "worker asked to be replaced")
        }
        ReplacementDelayed {
            slot,
            pid,
            generation,
            why,
            wait_ms,
        } => {
            tracing::warn!(target: "regiment", slot, pid, generation, %why, wait_ms, "worker's replacement delayed")
        }
        Draining {
            slot,
            pid,
            generation,
            why,
            deadline_ms,
        } => {
            tracing::info!(target: "regiment", slot, pid, generation, %why, deadline = %ms(*deadline_ms), "worker draining")
        }
        Killed {
            slot,
            pid,
            generation,
            why,
        } => {
            tracing::warn!(target: "regiment", slot, pid, generation, %why, "worker killed")
        }
        Exited {
            slot,
            pid,
            generation,
            status,
            abandoned_drain: Some(left),
            ..
        } => {
            tracing::warn!(target: "regiment", slot, pid, generation, %status, in_flight = left.in_flight, connections = left.connections, "worker {left}")
        }
        Exited {
            slot,
            pid,
            generation,
            oom_killed: true,
            ..
        } => {
            tracing::warn!(target: "regiment", slot, pid, generation, "worker killed by the OOM killer")
        }
        Exited {
            slot,
            pid,
            generation,
            status,
            ..
        } => {
            tracing::info!(target: "regiment", slot, pid, generation, %status, "worker exited")
        }
        Crashed {
            slot,
            pid,
            generation,
            respawn_in_ms,
            oom_killed: true,
            ..
        } => {
            tracing::warn!(target: "regiment", slot, pid, generation, respawn_in = %ms(*respawn_in_ms), "worker killed by the OOM killer")
        }
        Crashed {
            slot,
            pid,
            generation,
            status,
            respawn_in_ms,
            killed_from_outside: Some(signal),
            ..
        } => {
            tracing::warn!(target: "regiment", slot, pid, generation, %status, respawn_in_ms, "worker killed by {signal} from outside")
        }
        Crashed {
            slot,
            pid,
            generation,
            status,
            respawn_in_ms,
            killed_from_outside: None,
            ..
        } => {
            tracing::warn!(target: "regiment", slot, pid, generation, %status, respawn_in = %ms(*respawn_in_ms), "worker crashed")
        }
        StartFailed {
            slot,
            pid,
            generation,
            why,
            retry_in_ms,
            ..
        } => {
            tracing::warn!(target: "regiment", slot, pid, generation, %why, retry_in = %ms(*retry_in_ms), "worker failed to start")
        }
        InvalidMessage {
            slot,
            pid,
            generation,
            why,
        } => {
            tracing::warn!(target: "regiment", slot, pid, generation, %why, "invalid message from worker ignored")
        }
        Unresponsive {
            slot,
            pid,
            generation,
            silent_ms,
        } => {
            tracing::warn!(target: "regiment", slot, pid, generation, silent_for = %ms(*silent_ms), "worker unresponsive")
        }
        RolloutStarted { generation } => {
            tracing::info!(target: "regiment", generation, "rolling restart started")
        }
        CanaryPassed { generation, why } => {
            tracing::info!(target: "regiment", generation, %why, "canary passed; the rollout goes on")
        }
        RolloutDone { generation } => {
            tracing::info!(target: "regiment", generation, "rolling restart done")
        }
        RolloutAborted { generation, why } => {
            tracing::error!(target: "regiment", generation, %why, "rolling restart did not complete; new workers run the good generation")
        }
        Scaled { workers } => {
            tracing::info!(target: "regiment", workers, "number of workers changed")
        }
        Stopping { forced } => tracing::info!(target: "regiment", forced, "master stopping"),
        Stopped => tracing::info!(target: "regiment", "master stopped: every worker has exited"),
    }
}

#[cfg(test)]
mod tests {
    use super::log;
    use crate::events::{Event, ProgramId};
    use crate::test_support::capture_log;

    #[test]
    fn a_spawn_line_names_the_program_by_path_and_date() {
        let program = ProgramId {
            path: "/srv/app/bin/hello".into(),
            device: 65024,
            inode: 5474756,
            modified_ms: 1_796_632_007_081,
        };
        let spawned = Event::Spawned {
            slot: 0,
            pid: 4242,
            generation: 2,
            replaces: None,
            program,
        };
        let ((), text) = capture_log(|| log(&spawned));
        assert!(
            text.contains("program=/srv/app/bin/hello (modified 2026-12-07T08:26:47Z)"),
            "{text}"
        );
        assert!(
            !text.contains("5474756") && !text.contains("65024"),
            "{text}"
        );
    }

    #[test]
    fn durations_read_as_durations() {
        let events = [
            Event::Draining {
                slot: 0,
                pid: 1,
                generation: 1,
                why: "stopping".into(),
                deadline_ms: 30_000,
            },
            Event::Crashed {
                slot: 0,
                pid: 1,
                generation: 1,
                status: "exit 1".into(),
                respawn_in_ms: 100,
                killed_from_outside: None,
                oom_killed: false,
            },
            Event::Unresponsive {
                slot: 0,
                pid: 1,
                generation: 1,
                silent_ms: 2_500,
            },
        ];
        let ((), text) = capture_log(|| events.iter().for_each(log));
        for expected in ["deadline=30s", "respawn_in=100ms", "silent_for=2s 500ms"] {
            assert!(text.contains(expected), "no {expected} in {text}");
        }
        assert!(!text.contains("_ms="), "{text}");
    }

    #[test]
    fn an_oom_kill_is_logged_as_one_whatever_the_worker_was_doing() {
        let crashed = Event::Crashed {
            slot: 1,
            pid: 42,
            generation: 1,
            status: "killed by the OOM killer".into(),
            respawn_in_ms: 100,
            killed_from_outside: Some("SIGKILL".into()),
            oom_killed: true,
        };
        let exited = Event::Exited {
            slot: 0,
            pid: 43,
            generation: 1,
            status: "killed by the OOM killer".into(),
            abandoned_drain: None,
            oom_killed: true,
        };
        let ((), text) = capture_log(|| [crashed, exited].iter().for_each(log));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for line in &lines {
            assert!(line.contains("worker killed by the OOM killer"), "{text}");
            assert!(!line.contains("from outside"), "{text}");
        }
        assert!(lines[0].contains("respawn_in=100ms"), "{text}");
    }
}
