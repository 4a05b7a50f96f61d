//! The master's own program, for the status: the file this process runs, read once at build.
//!
//! `/proc/self/exe` names the image the kernel runs now, not what the path holds: after a
//! deploy renamed a new file over the path, it still stats as the old inode (its link text then
//! ends in ` (deleted)`). So the identity (device, inode, modified) is that of the running image,
//! and the path is the link text without that suffix: where it was started from. Without
//! `/proc`, the path `current_exe` gives and the file there at build time stand in.

use std::path::{Path, PathBuf};

use super::program::identity;
use crate::events::ProgramId;

/// What the kernel appends to the link text of an executable that was unlinked or replaced.
const DELETED: &str = " (deleted)";

/// The master's program, `None` if neither `/proc/self/exe` nor `current_exe` can be read.
pub(super) fn master_program() -> Option<ProgramId> {
    let running = Path::new("/proc/self/exe");
    match (std::fs::read_link(running), std::fs::metadata(running)) {
        (Ok(link), Ok(meta)) => Some(identity(&without_deleted(link), &meta)),
        _ => {
            let path = std::env::current_exe().ok()?;
            let meta = std::fs::metadata(&path).ok()?;
            Some(identity(&path, &meta))
        }
    }
}

/// The path of `/proc/self/exe`'s link text, without the kernel's ` (deleted)` mark.
fn without_deleted(link: PathBuf) -> PathBuf {
    match link.to_str().and_then(|s| s.strip_suffix(DELETED)) {
        Some(path) => PathBuf::from(path),
        None => link,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    /// The test binary is a master's program like any other: its path, and its file's identity.
    #[test]
    fn the_master_program_is_the_file_this_process_runs() {
        let program = master_program().expect("/proc/self/exe or current_exe");
        let exe = std::env::current_exe().unwrap();
        assert_eq!(program.path, exe.display().to_string());
        let meta = std::fs::metadata(&exe).unwrap();
        assert_eq!((program.device, program.inode), (meta.dev(), meta.ino()));
        assert!(program.modified_ms > 0);
    }

    #[test]
    fn a_replaced_program_reads_as_the_path_it_was_started_from() {
        assert_eq!(
            without_deleted(PathBuf::from("/srv/app/bin/hello (deleted)")),
            Path::new("/srv/app/bin/hello")
        );
        assert_eq!(
            without_deleted(PathBuf::from("/srv/app/bin/hello")),
            Path::new("/srv/app/bin/hello")
        );
    }
}
