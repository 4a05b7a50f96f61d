//! The handover and the exec: the channels taken back, the policy's state taken, the handover
//! file written, the survivors made inheritable, and the new program executed. Returns only if
//! the exec did not happen, with every channel served again and every descriptor close-on-exec
//! again: this master goes on as before.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use super::super::Driver;
use super::super::handover::envelope::{
    DescriptorTable, Envelope, ListenerEntry, MasterEntry, WorkerEntry,
};
use super::super::handover::file::HandoverFile;
use super::super::handover::inherit::ExecInheritance;
use super::super::program::Program;
use super::channels::Channels;
use super::{command_line, execute};
use crate::worker_vars;

/// Why the exec did not happen.
pub(super) enum HandOverEnd {
    /// Something is left to do first (a message the policy had to act on): try again soon.
    NotQuiet(String),
    /// The upgrade cannot go on.
    Failed(String),
}

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock `Instant` reads, which the exec does not
/// reset.
pub(crate) fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
                + u64::try_from(t.tv_nsec()).unwrap_or(0)
        })
        .unwrap_or(0)
}

impl Driver {
    /// Hands over to `program` and executes it; returns only if it did not.
    pub(super) async fn hand_over(&mut self, number: u64, program: &Program) -> HandOverEnd {
        let (channels, forwarded) = match self.take_channels().await {
            Ok(taken) => taken,
            Err(why) => return HandOverEnd::Failed(why),
        };
        // What the workers said before their channels were taken is the policy's before its
        // state is: it may set something off (a replacement), to carry out first.
        self.forward(forwarded);
        let now = self.clock.now();
        let state = match self.policy.snapshot(now) {
            Ok(state) => state,
            Err(refusal) => {
                self.give_channels_back(channels);
                return HandOverEnd::NotQuiet(refusal.to_string());
            }
        };
        let envelope = Envelope {
            descriptors: self.descriptor_table(&channels),
            master: MasterEntry {
                started_at_ms: self.started_at_ms,
                snapshot_monotonic_ns: monotonic_ns(),
                listener_names: self.listener_names.clone(),
                notified_ready: self.notifier.ready_sent(),
                socket_files: self.held_beside.socket_files.clone(),
            },
            // As the policy writes it (`PolicyState::to_json`, what its tests read back).
            policy: match serde_json::from_slice(&state.to_json()) {
                Ok(value) => value,
                Err(e) => {
                    self.give_channels_back(channels);
                    return HandOverEnd::Failed(format!("cannot write the policy's state: {e}"));
                }
            },
        };
        let why = self.execute_handover(number, program, &envelope);
        self.give_channels_back(channels);
        HandOverEnd::Failed(why)
    }

    /// Writes the handover and executes `program`; returns why not, if it did not.
    fn execute_handover(&mut self, number: u64, program: &Program, envelope: &Envelope) -> String {
        let file = match HandoverFile::write(envelope) {
            Ok(file) => file,
            Err(e) => return format!("cannot write the handover file: {e}"),
        };
        // The image this process runs now, pinned for the way back.
        let previous = match open_running_image() {
            Ok(fd) => fd,
            Err(e) => {
                return format!("cannot open this master's own program for the way back: {e}");
            }
        };
        let inherited = match ExecInheritance::prepare_with(
            &file,
            &envelope.descriptors,
            &[previous.as_fd()],
        ) {
            Ok(inherited) => inherited,
            Err(e) => return format!("cannot hand the descriptors over: {e}"),
        };
        let (handover_var, handover_fd) = inherited.env();
        let set = [
            (handover_var, handover_fd),
            (
                worker_vars::UPGRADE_PREVIOUS_FD,
                previous.as_raw_fd().to_string(),
            ),
        ];
        let (argv, env) = match command_line::for_exec(&set) {
            Ok(line) => line,
            Err(why) => return why,
        };
        tracing::info!(
            target: "regiment",
            number,
            program = %program.path().display(),
            workers = envelope.descriptors.workers.len(),
            "upgrade: executing the new program"
        );
        self.notifier.upgrade_executing(number);
        let error = execute::execute(program, &argv, &env);
        // Still this program: `inherited` drops, and the survivors are close-on-exec again.
        drop(inherited);
        format!("cannot execute {}: {error}", program.path().display())
    }

    /// Which descriptor is which, for the new master: the driver's, the channels taken back,
    /// and those held beside it.
    fn descriptor_table(&self, channels: &Channels) -> DescriptorTable {
        DescriptorTable {
            listeners: self.listeners.iter().map(ListenerEntry::of).collect(),
            control_socket: self.held_beside.control_socket.clone(),
            admin: self.held_beside.admin.clone(),
            workers: channels
                .iter()
                .filter_map(|(id, handed)| {
                    let p = self.processes.get(id)?;
                    Some(WorkerEntry {
                        id: id.0,
                        pid: p.pid,
                        fd: handed.stream.as_raw_fd(),
                        pending: handed.pending.to_vec(),
                    })
                })
                .collect(),
            programs: self.programs.entries(),
        }
    }
}

/// The running image (`/proc/self/exe`), opened `O_PATH` and close-on-exec: what the new master
/// executes again if it cannot take over, whatever the path holds by then.
fn open_running_image() -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open("/proc/self/exe")?;
    Ok(OwnedFd::from(file))
}
