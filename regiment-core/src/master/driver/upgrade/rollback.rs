//! The way back: a new master that cannot take over executes the previous program again (the
//! image the old master ran, pinned by descriptor across the exec), same pid, with the same
//! handover and [`worker_vars::UPGRADE_ROLLED_BACK`] saying why. That master takes over as any
//! new one, from the state the old one handed over, and reports the upgrade rolled back. The
//! workers, their channels and the listeners were never let go: the service never stopped.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};

use super::super::handover::file::{self, HandoverFile};
use super::super::handover::inherit::ExecInheritance;
use super::command_line;
use super::execute::execute_fd;
use crate::worker_vars;

/// The longest reason handed back: one line of the variable, read into the status.
const WHY_MAX: usize = 2000;

/// Executes `previous` with the handover `value` names (`file`, if it could be opened) and
/// `why`; returns only if it could not, with why.
pub(super) fn go_back(previous: OwnedFd, value: &str, file: Option<File>, why: &str) -> String {
    // The descriptors the handover names are inheritable still, unless taken: made so again.
    let inherited = match file.map(HandoverFile::received) {
        Some(handover) => match file::read(handover.file()) {
            Ok(envelope) => match ExecInheritance::prepare(&handover, &envelope.descriptors) {
                Ok(inherited) => Some((handover, inherited)),
                Err(e) => return format!("cannot hand the descriptors back: {e}"),
            },
            Err(e) => return format!("cannot read the handover file again: {e}"),
        },
        None => None,
    };
    // The previous program is executed through this descriptor, which need not survive.
    if let Err(e) = fcntl(&previous, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)) {
        return format!("cannot make the previous program's descriptor close-on-exec: {e}");
    }
    let one_line: String = why
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(WHY_MAX)
        .collect();
    let set = [
        (worker_vars::UPGRADE_HANDOVER_FD, value.trim().to_owned()),
        (worker_vars::UPGRADE_ROLLED_BACK, one_line),
    ];
    let (argv, env) = match command_line::for_exec(&set) {
        Ok(line) => line,
        Err(why) => return why,
    };
    tracing::error!(target: "regiment", "upgrade rolled back: executing the previous program again");
    let error = execute_fd(previous.as_fd(), &argv, &env);
    drop(inherited);
    format!("cannot execute the previous program: {error}")
}
