//! The preflight of an upgrade in place (issue 23): the new program run in check mode by the
//! master that would exec it. Not API: the end-to-end tests run it on its own, on real
//! programs, as the upgrade runs it.
//!
//! ```no_run
//! # async fn check() {
//! use regiment_core::plumbing::upgrade::{HANDOVER_VERSION, preflight};
//! let passed = preflight(
//!     "/srv/app/current/bin/shop".as_ref(),
//!     &[],
//!     &[],
//!     HANDOVER_VERSION,
//!     std::time::Duration::from_secs(30),
//! )
//! .await;
//! if let Err(refusal) = passed {
//!     eprintln!("not upgrading: {refusal}");
//! }
//! # }
//! ```

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

/// The version of the handover file this build writes and reads.
pub const HANDOVER_VERSION: u32 = crate::master::HANDOVER_VERSION;

/// Runs the program at `program` (opened now, executed through that descriptor) in preflight
/// mode, with `args`, this process's environment and `extra_env` on top, asking it to confirm
/// that it reads handover `version`, within `bound` (killed past it). `Ok` once it exited 0
/// after saying so; otherwise why not, with its last lines of output.
pub async fn preflight(
    program: &Path,
    args: &[OsString],
    extra_env: &[(OsString, OsString)],
    version: u32,
    bound: Duration,
) -> Result<(), String> {
    crate::master::preflight_at_path(program, args, extra_env, version, bound).await
}
