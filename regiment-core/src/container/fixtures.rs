//! The fixtures of this module's tests: copies of real kernel files, one directory per case
//! under `tests/fixtures/cgroup/`, each with a `SOURCE.md` that says where its content comes
//! from.
//!
//! ```ignore
//! let root = fixture("v2-limited");
//! assert_eq!(memory_limit_under(&root).bytes, 131_072_000);
//! ```

use std::path::Path;

use super::system_root::SystemRoot;

/// The root of the fixture `case`.
pub(crate) fn fixture(case: &str) -> SystemRoot {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cgroup")
        .join(case);
    assert!(dir.is_dir(), "no fixture {}", dir.display());
    SystemRoot::at(dir)
}

/// A copy of the fixture `case` in a fresh directory, for a test that changes a file of it
/// (the copy goes when the returned directory is dropped).
pub(crate) fn copy_of(case: &str) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cgroup")
            .join(case),
        dir.path(),
    );
    dir
}
