//! Where the kernel's files are read from: `/` for this process, a directory of copies in
//! tests. Every path this module hands out is the path as the process sees it
//! (`/sys/fs/cgroup/memory.max`), whatever the root; only reading joins it to the root.
//!
//! ```ignore
//! let root = SystemRoot::at("tests/fixtures/cgroup/v2-limited");
//! // Reads tests/fixtures/cgroup/v2-limited/proc/self/cgroup.
//! let text = root.read(Path::new("/proc/self/cgroup"))?;
//! ```

use std::io;
use std::path::{Path, PathBuf};

/// The directory under which `/proc` and the cgroup mounts are read.
#[derive(Debug, Clone)]
pub(crate) struct SystemRoot(PathBuf);

/// A kernel file that could not be read, or did not say what it should.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("cannot read {path}: {source}")]
    Unreadable { path: PathBuf, source: io::Error },
    #[error("{path} is not as expected: {what}")]
    Malformed { path: PathBuf, what: String },
}

impl ReadError {
    pub(crate) fn malformed(path: &Path, what: impl Into<String>) -> Self {
        ReadError::Malformed {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }
}

impl SystemRoot {
    /// The root of this process: the files themselves.
    pub(crate) fn host() -> Self {
        SystemRoot(PathBuf::from("/"))
    }

    /// `dir` stands for `/`.
    #[cfg(test)]
    pub(crate) fn at(dir: impl Into<PathBuf>) -> Self {
        SystemRoot(dir.into())
    }

    /// Where `absolute` (as the process sees it) lies under this root.
    fn locate(&self, absolute: &Path) -> PathBuf {
        self.0.join(absolute.strip_prefix("/").unwrap_or(absolute))
    }

    /// The text of `absolute`.
    pub(crate) fn read(&self, absolute: &Path) -> Result<String, ReadError> {
        std::fs::read_to_string(self.locate(absolute)).map_err(|source| ReadError::Unreadable {
            path: absolute.to_path_buf(),
            source,
        })
    }

    /// The text of `absolute`, or `None` if there is no such file: a cgroup file that a
    /// cgroup does not have (the root cgroup has no `memory.max`; a cgroup whose parent did
    /// not enable the memory controller has no memory files at all).
    pub(crate) fn read_if_present(&self, absolute: &Path) -> Result<Option<String>, ReadError> {
        match self.read(absolute) {
            Ok(text) => Ok(Some(text)),
            Err(ReadError::Unreadable { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `absolute` is a directory under this root.
    pub(crate) fn is_dir(&self, absolute: &Path) -> bool {
        self.locate(absolute).is_dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_under_the_root_and_names_the_file_as_the_process_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        std::fs::write(dir.path().join("proc/self/cgroup"), "0::/\n").unwrap();
        let root = SystemRoot::at(dir.path());
        assert_eq!(root.read(Path::new("/proc/self/cgroup")).unwrap(), "0::/\n");
        assert!(root.is_dir(Path::new("/proc/self")));

        assert_eq!(
            root.read_if_present(Path::new("/proc/meminfo")).unwrap(),
            None
        );
        let e = root
            .read(Path::new("/proc/meminfo"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot read /proc/meminfo: "), "{e}");
    }
}
