//! The events and the slot status the rules expect, built from what differs between them.

use super::super::super::Generation;
use super::super::util::program_of;
use crate::events::{Event, SlotStatus};

pub(super) fn spawned(slot: usize, pid: u32, generation: u64, replaces: Option<u32>) -> Event {
    Event::Spawned {
        slot,
        pid,
        generation,
        replaces,
        program: program_of(Generation(generation)),
    }
}

pub(super) fn ready(slot: usize, pid: u32, generation: u64) -> Event {
    Event::Ready {
        slot,
        pid,
        generation,
    }
}

/// A drain with the default 30 s deadline.
pub(super) fn draining(slot: usize, pid: u32, generation: u64, why: &str) -> Event {
    Event::Draining {
        slot,
        pid,
        generation,
        why: why.into(),
        deadline_ms: 30_000,
    }
}

pub(super) fn exited(slot: usize, pid: u32, generation: u64, status: &str) -> Event {
    Event::Exited {
        slot,
        pid,
        generation,
        status: status.into(),
        abandoned_drain: None,
        oom_killed: false,
    }
}

pub(super) fn start_failed(
    slot: usize,
    pid: u32,
    generation: u64,
    why: &str,
    retry_in_ms: u64,
) -> Event {
    Event::StartFailed {
        slot,
        pid,
        generation,
        why: why.into(),
        retry_in_ms,
        oom_killed: false,
    }
}

/// A drain of the worker whose replacement, `by_pid`, is ready, with the default deadline.
pub(super) fn replaced_by(slot: usize, pid: u32, generation: u64, by_pid: u32) -> Event {
    draining(slot, pid, generation, &format!("replaced by pid {by_pid}"))
}

pub(super) fn replace_requested(slot: usize, pid: u32, generation: u64, reason: &str) -> Event {
    Event::ReplaceRequested {
        slot,
        pid,
        generation,
        reason: reason.into(),
    }
}

/// The replacement of a worker that asked before it served anything waits `wait_ms`; `because`
/// says how the policy could tell.
pub(super) fn replacement_delayed(
    slot: usize,
    pid: u32,
    generation: u64,
    because: &str,
    wait_ms: u64,
) -> Event {
    Event::ReplacementDelayed {
        slot,
        pid,
        generation,
        why: format!(
            "it asked before serving anything ({because}); replaced at once, a worker that asks \
             as soon as it starts would be replaced as fast as workers start: a crash loop by \
             another name"
        ),
        wait_ms,
    }
}

pub(super) fn crashed(
    slot: usize,
    pid: u32,
    generation: u64,
    status: &str,
    respawn_in_ms: u64,
) -> Event {
    Event::Crashed {
        slot,
        pid,
        generation,
        status: status.into(),
        respawn_in_ms,
        killed_from_outside: None,
        oom_killed: false,
    }
}

/// The crash event of a ready worker killed by `signal`, which the master did not send.
pub(super) fn killed_from_outside(
    slot: usize,
    pid: u32,
    generation: u64,
    signal: &str,
    respawn_in_ms: u64,
) -> Event {
    Event::Crashed {
        slot,
        pid,
        generation,
        status: format!("killed by {signal} from outside"),
        respawn_in_ms,
        killed_from_outside: Some(signal.into()),
        oom_killed: false,
    }
}

/// The crash event of a ready worker the kernel's OOM killer killed.
pub(super) fn oom_killed(slot: usize, pid: u32, generation: u64, respawn_in_ms: u64) -> Event {
    Event::Crashed {
        slot,
        pid,
        generation,
        status: "killed by the OOM killer".into(),
        respawn_in_ms,
        killed_from_outside: Some("SIGKILL".into()),
        oom_killed: true,
    }
}

pub(super) fn killed(slot: usize, pid: u32, generation: u64, why: &str) -> Event {
    Event::Killed {
        slot,
        pid,
        generation,
        why: why.into(),
    }
}

pub(super) fn unresponsive(slot: usize, pid: u32, generation: u64, silent_ms: u64) -> Event {
    Event::Unresponsive {
        slot,
        pid,
        generation,
        silent_ms,
    }
}

pub(super) fn rollout_aborted(generation: u64, why: &str) -> Event {
    Event::RolloutAborted {
        generation,
        why: why.into(),
    }
}

/// The abort of a rollout whose workers failed to start `failures` times in a row.
pub(super) fn failed_starts_abort(generation: u64, failures: u32) -> Event {
    rollout_aborted(
        generation,
        &format!("{failures} consecutive workers of generation {generation} failed to start"),
    )
}

pub(super) fn slot_status(
    slot: usize,
    restarts: u64,
    last_restart_reason: Option<&str>,
) -> SlotStatus {
    SlotStatus {
        slot,
        restarts,
        last_restart_reason: last_restart_reason.map(Into::into),
    }
}
