//! The control socket's file: created with mode 0600 and no moment at which it is wider, a
//! stale one replaced, a live one never taken over, and removed on exit only while it is ours.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// A bound control socket and its file.
#[derive(Debug)]
pub(crate) struct ControlSocket {
    pub(crate) listener: UnixListener,
    pub(crate) file: SocketFile,
}

/// The file of a control socket, removed when dropped if it is still the one this master
/// created: one that an operator replaced since (or another master bound after removing ours)
/// stays.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    /// Its device and inode.
    id: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id);
        if ours && let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove the control socket");
        }
    }
}

impl ControlSocket {
    /// Binds `path`. The socket is bound inside a fresh directory of mode 0700, given mode 0600
    /// there, then hard-linked into place: `link` fails rather than replace a file, so a master
    /// that starts at the same moment is never robbed of its socket either.
    pub(crate) fn bind(path: &Path) -> io::Result<Self> {
        crate::listen::remove_stale_unix_socket(path)?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let private = dir
            .unwrap_or(Path::new("."))
            .join(format!(".regiment-{}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&private)?;
        let result = bind_in(&private, path);
        let _ = std::fs::remove_file(private.join("s"));
        let _ = std::fs::remove_dir(&private);
        let listener = result?;
        let meta = std::fs::symlink_metadata(path)?;
        Ok(Self {
            listener,
            file: SocketFile {
                path: path.to_owned(),
                id: (meta.dev(), meta.ino()),
            },
        })
    }
}

fn bind_in(private: &Path, path: &Path) -> io::Result<UnixListener> {
    let inner = private.join("s");
    let listener = UnixListener::bind(&inner)?;
    std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o600))?;
    std::fs::hard_link(&inner, path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            io::Error::new(
                io::ErrorKind::AddrInUse,
                "another process created this socket at the same moment",
            )
        } else {
            e
        }
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::scratch_dir;

    #[test]
    fn the_socket_is_private_to_its_user_and_stale_files_are_replaced_live_ones_never() {
        let dir = scratch_dir("control-socket");
        let path = dir.join("control.sock");
        let first = ControlSocket::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Nothing is left of the private directory it was bound in.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

        let live = ControlSocket::bind(&path).unwrap_err();
        assert_eq!(live.kind(), io::ErrorKind::AddrInUse, "{live}");
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());

        // A master that died left its file: the next one takes the path.
        std::mem::forget(first.file);
        drop(first.listener);
        let second = ControlSocket::bind(&path).unwrap();
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
        drop(second);
        assert!(!path.exists());

        // A file that is not a socket is never removed.
        std::fs::write(&path, "notes").unwrap();
        let err = ControlSocket::bind(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "notes");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_socket_file_replaced_since_is_not_removed_on_exit() {
        let dir = scratch_dir("control-replaced");
        let path = dir.join("control.sock");
        let socket = ControlSocket::bind(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let other = ControlSocket::bind(&path).unwrap();
        drop(socket);
        assert!(path.exists(), "the other master's socket stays");
        drop(other);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
