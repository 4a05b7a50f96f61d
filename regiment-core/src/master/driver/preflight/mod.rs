//! The preflight of an upgrade in place (issue 23): before the old master execs the new
//! program, it runs that program in a check mode, and execs it only if it passed.
//!
//! - [`check`]: the new program's side. With [`PREFLIGHT_VAR`] set to the handover version the
//!   old master will write and that master's pid (its parent's), `Builder::build` checks every option exactly as a real master's
//!   build does (the same `into_config`, overrides and all; the same program opened), but binds
//!   and takes nothing: the listeners, the admin listener and the control socket are the old
//!   master's, held and in use, and the new master would not bind them either (it takes them
//!   from the handover). `Supervisor::run`, the master's `serve`, then confirms that this
//!   program reads that version, prints [`ok_line`] and exits 0; it exits 1 with the reason on
//!   stderr if it does not read it.
//! - [`run`]: the old master's side. It runs the new program through the descriptor that pins
//!   it, bounded in time, keeps its last lines of output, and passes it only if it exited 0
//!   after printing [`ok_line`]; anything else is a refusal that says why, with those lines.
//!
//! `driver::upgrade` runs the old master's side before every exec; the end-to-end tests also
//! run it on its own (through `plumbing::upgrade::preflight`).

pub(crate) mod check;
pub(crate) mod run;
mod tail;

/// The variable that puts a program in preflight mode: `VERSION:PID`, the handover version to
/// confirm and the pid of the master that asks (the program's parent).
pub(crate) const PREFLIGHT_VAR: &str = crate::worker_vars::UPGRADE_PREFLIGHT;

/// What a program that passed its preflight prints on stdout, last.
pub(crate) fn ok_line(version: u32) -> String {
    format!("regiment preflight: ok, this program reads handover version {version}")
}
