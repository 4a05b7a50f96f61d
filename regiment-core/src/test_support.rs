//! What the unit tests of several modules share.

use std::path::PathBuf;

/// A fresh, empty directory for one test (the tests run in parallel, in one process):
/// `$TMPDIR/regiment-<name>-<pid>`, whatever an earlier run left there removed first.
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("regiment-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
