//! The handover file of a master that upgrades itself in place (issue 23): an in-memory file
//! (`memfd_create`) that the old master writes just before it execs the new program, with the
//! same pid, and that the new master reads before it does anything else.
//!
//! - [`envelope`]: what it holds, versioned: which descriptor number is which listener, the
//!   control socket, the admin listener, each worker's IPC channel and each program held open;
//!   then the policy's state, opaque here.
//! - [`file`]: the memfd itself, written and sealed by the old master, found and checked by the
//!   new one from [`HANDOVER_FD_VAR`].
//! - [`inherit`]: the survivors of the exec (every descriptor the table names, and the file)
//!   made inheritable at the last moment, and close-on-exec again if the exec fails.
//! - [`adopt`]: each descriptor the table names checked for what it is said to be, and taken,
//!   all or none.
//!
//! `driver::upgrade` writes it and execs; its `takeover` reads and adopts.

use std::os::fd::RawFd;

pub(crate) mod adopt;
pub(crate) mod envelope;
pub(crate) mod file;
pub(crate) mod inherit;

/// The format of the handover file this master writes. A new master that cannot read the
/// version the old one wrote refuses to start (and the old one, warned by the preflight,
/// does not exec it).
pub(crate) const HANDOVER_VERSION: u32 = 1;

/// The variable that gives the new master the handover file's descriptor number.
pub(crate) const HANDOVER_FD_VAR: &str = crate::worker_vars::UPGRADE_HANDOVER_FD;

/// Checks that `fd`, named as `what`, is open in this process: refused, naming it, if not.
pub(crate) fn check_open(fd: RawFd, what: &str) -> Result<(), HandoverError> {
    // SAFETY: F_GETFD on a number that may not be open only reads its flags or fails with
    // EBADF, and closes nothing; the borrow ends with the call.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    nix::fcntl::fcntl(borrowed, nix::fcntl::FcntlArg::F_GETFD)
        .map(drop)
        .map_err(|e| HandoverError::Descriptor {
            what: what.to_owned(),
            fd,
            why: format!("is not open ({e})"),
        })
}

/// Whether this master reads handover files of `version`: its own only, for now.
pub(crate) fn reads(version: u32) -> bool {
    version == HANDOVER_VERSION
}

/// Why a handover file cannot be taken: each names what is wrong, never half of it taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HandoverError {
    #[error("{HANDOVER_FD_VAR}={value} {why}")]
    NoFile { value: String, why: String },
    #[error("cannot read the handover file: {0}")]
    Read(String),
    #[error(
        "the handover file is {size} bytes, more than the {max} a handover file can be: not one \
         a master wrote"
    )]
    TooLarge { size: u64, max: u64 },
    #[error("the handover file holds no regiment handover: it starts with {starts_with:?}")]
    NotAHandover { starts_with: String },
    #[error(
        "the handover file is of format version {found}, and this master reads version {reads} \
         only: the old master must hand over to a program that reads its version"
    )]
    UnknownVersion { found: u32, reads: u32 },
    #[error("the handover file is malformed: {0}")]
    Malformed(String),
    #[error("{what} names fd {fd}, which {why}")]
    Descriptor {
        what: String,
        fd: RawFd,
        why: String,
    },
    #[error("fd {fd} is named twice: as {first} and as {second}")]
    NamedTwice {
        fd: RawFd,
        first: String,
        second: String,
    },
}
