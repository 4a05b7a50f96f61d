//! The control socket's file: created with mode 0600 and no moment at which it is wider, a
//! stale one replaced, a live one never taken over, and removed on exit only while it is ours.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use crate::listen::MAX_UNIX_PATH;
use crate::master::driver::socket_file::SocketFile;

/// A bound control socket and its file.
#[derive(Debug)]
pub(crate) struct ControlSocket {
    pub(crate) listener: UnixListener,
    pub(crate) file: SocketFile,
}

impl ControlSocket {
    /// Binds `path`. The socket is bound inside a fresh directory of mode 0700, given mode 0600
    /// there, then hard-linked into place: `link` fails rather than replace a file, so a master
    /// that starts at the same moment is never robbed of its socket either. The directory's
    /// name is random (and retried if taken), so that in a world-writable directory no other
    /// user can create it first and stop the master from starting. An error names the file it
    /// is about.
    pub(crate) fn bind(path: &Path) -> io::Result<Self> {
        crate::listen::remove_stale_unix_socket(path)?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let private = tempfile::Builder::new()
            .prefix(".regiment-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(dir)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot create a private directory to bind in: {e}"),
                )
            })?;
        let result = bind_in(private.path(), path);
        let private_path = private.path().to_owned();
        if let Err(e) = private.close() {
            tracing::warn!(path = %private_path.display(), error = %e, "could not remove the directory the control socket was bound in");
        }
        let listener = result?;
        Ok(Self {
            listener,
            file: SocketFile::bound_at(path)?,
        })
    }
}

fn bind_in(private: &Path, path: &Path) -> io::Result<UnixListener> {
    let inner = private.join("s");
    let named = |what: &str, file: &Path, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", file.display()))
    };
    // The path is checked at build to fit a socket address; the private directory's may not
    // (its name is longer than a short file name): then it is bound through the directory's
    // descriptor, whose path is always short.
    let dir_fd;
    let bind_path = if inner.as_os_str().len() <= MAX_UNIX_PATH {
        inner.clone()
    } else {
        dir_fd = std::fs::File::open(private).map_err(|e| named("cannot open", private, e))?;
        PathBuf::from(format!("/proc/self/fd/{}/s", dir_fd.as_raw_fd()))
    };
    let listener = UnixListener::bind(&bind_path).map_err(|e| named("cannot bind", &inner, e))?;
    std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| named("cannot set the mode of", &inner, e))?;
    std::fs::hard_link(&inner, path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            io::Error::new(
                io::ErrorKind::AddrInUse,
                "another process created this socket at the same moment",
            )
        } else {
            named(&format!("cannot link {} to", inner.display()), path, e)
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

    /// The directory it is bound in was `.regiment-<pid>` beside the path: any user who can
    /// write there could create it first. Its name is random now, and a failure names the
    /// file it is about.
    #[test]
    fn the_private_directory_cannot_be_taken_first_and_a_failure_names_its_file() {
        let dir = scratch_dir("control-squatted");
        let path = dir.join("control.sock");
        let squatted = dir.join(format!(".regiment-{}", std::process::id()));
        std::fs::create_dir(&squatted).unwrap();
        let socket = ControlSocket::bind(&path).expect("binds beside a squatted name");
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
        drop(socket);
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(left, [squatted], "the squatter's directory is left alone");

        let missing = dir.join("missing");
        let err = ControlSocket::bind(&missing.join("control.sock")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("private directory")
                && text.contains(&format!("{}/.regiment-", missing.display())),
            "{text}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A path that fits a socket address is bound even when the private directory's does not
    /// (its name is longer than the file's).
    #[test]
    fn a_path_of_the_longest_length_is_bound() {
        let dir = scratch_dir("control-longest");
        let pad = MAX_UNIX_PATH - dir.as_os_str().len() - "/c.sock".len() - 1;
        let nested = dir.join("d".repeat(pad));
        std::fs::create_dir(&nested).unwrap();
        let path = nested.join("c.sock");
        assert_eq!(path.as_os_str().len(), MAX_UNIX_PATH);
        let socket = ControlSocket::bind(&path).expect("binds");
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
        assert_eq!(std::fs::read_dir(&nested).unwrap().count(), 1);
        drop(socket);
        assert!(!path.exists());
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
