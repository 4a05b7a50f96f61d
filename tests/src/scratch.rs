//! A directory of a test's own in the system's temporary directory, for socket files and
//! deploys, removed when the test ends (passed or failed).

use std::path::{Path, PathBuf};

/// A fresh directory, named after the test and this process; removed when dropped.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// `regiment-NAME-PID` in the temporary directory, emptied if a run before left it.
    pub fn new(name: &str) -> ScratchDir {
        let dir = std::env::temp_dir().join(format!("regiment-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        ScratchDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path in it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
