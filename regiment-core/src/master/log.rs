//! Lifecycle events as `tracing` events, with the worker's slot, pid and generation as fields.

use crate::events::Event;

pub(crate) fn log(e: &Event) {
    use Event::*;
    match e {
        Listening { addrs } => tracing::info!(target: "regiment", ?addrs, "master listening"),
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
            tracing::info!(target: "regiment", slot, pid, generation, %why, deadline_ms, "worker draining")
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
        } => {
            tracing::info!(target: "regiment", slot, pid, generation, %status, "worker exited")
        }
        Crashed {
            slot,
            pid,
            generation,
            status,
            respawn_in_ms,
        } => {
            tracing::warn!(target: "regiment", slot, pid, generation, %status, respawn_in_ms, "worker crashed")
        }
        StartFailed {
            slot,
            pid,
            generation,
            why,
            retry_in_ms,
        } => {
            tracing::warn!(target: "regiment", slot, pid, generation, %why, retry_in_ms, "worker failed to start")
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
            tracing::warn!(target: "regiment", slot, pid, generation, silent_ms, "worker unresponsive")
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
