//! The file of a Unix socket this master bound, removed when dropped if it is still the one
//! this master created: one that an operator replaced since (or another master bound after
//! removing ours) stays. Held from the moment of the bind, so that a master that fails to
//! start (its control socket is taken, a later address cannot be bound) leaves none behind.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::handover::envelope::SocketFileEntry;

#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    /// Its device and inode.
    id: (u64, u64),
}

impl SocketFile {
    /// The file an old master created and handed over with an upgrade in place.
    pub(crate) fn handed_over(entry: &SocketFileEntry) -> Self {
        Self {
            path: entry.path.clone(),
            id: (entry.device, entry.inode),
        }
    }

    /// The file as a handover names it.
    pub(crate) fn entry(&self) -> SocketFileEntry {
        SocketFileEntry {
            path: self.path.clone(),
            device: self.id.0,
            inode: self.id.1,
        }
    }

    /// The file at `path`, just bound by this master.
    pub(crate) fn bound_at(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(Self {
            path: path.to_owned(),
            id: (meta.dev(), meta.ino()),
        })
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id);
        if ours && let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove the socket file");
        }
    }
}
