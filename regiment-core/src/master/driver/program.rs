//! The worker program of a generation, and the file the master holds open to run it (its path
//! was resolved by `config::program_path`).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::handover::envelope::ProgramEntry;
use crate::events::ProgramId;

/// The worker program of a generation, held open: every spawn executes this file, whatever
/// the path holds by then. A deploy that renames a new file over the path, or switches a
/// `current` symlink, changes what the next [`Program::open`] gets, not what was opened.
#[derive(Debug)]
pub(crate) struct Program {
    id: ProgramId,
    path: PathBuf,
    exec: Exec,
}

/// How a spawn executes the program.
#[derive(Debug)]
enum Exec {
    /// Through this descriptor (`O_PATH | O_CLOEXEC`), with `execveat(fd, "", AT_EMPTY_PATH)`.
    Fd(OwnedFd),
    /// By path, following it anew at each spawn: the file held open cannot be executed.
    Path { reason: String },
}

impl Program {
    /// Opens the file `path` resolves to now (symlinks followed) and records its identity.
    /// Refuses anything but a regular file with an execute bit; the errors name the path.
    pub(crate) fn open(path: &Path) -> io::Result<Program> {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let file = open_path(path).map_err(named)?;
        let meta = file.metadata().map_err(named)?;
        if !meta.is_file() {
            return Err(named(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(named(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "not executable (no execute permission bit)",
            )));
        }
        let id = identity(path, &meta);
        let fd = OwnedFd::from(file);
        let exec = match fallback_reason(&fd, path, &meta) {
            None => Exec::Fd(fd),
            Some(reason) => Exec::Path { reason },
        };
        Ok(Program {
            id,
            path: path.to_path_buf(),
            exec,
        })
    }

    /// A program an earlier master opened and handed over: `fd`, checked to be the file of
    /// `entry` (see `handover::adopt`), or its path if spawns executed the path.
    pub(crate) fn adopted(entry: &ProgramEntry, fd: Option<OwnedFd>) -> Program {
        let modified_ms = fd
            .as_ref()
            .and_then(|fd| nix::sys::stat::fstat(fd).ok())
            .map(|st| {
                st.st_mtime
                    .saturating_mul(1000)
                    .saturating_add(st.st_mtime_nsec / 1_000_000)
            })
            .and_then(|ms| u64::try_from(ms).ok())
            .unwrap_or(0);
        Program {
            id: ProgramId {
                path: entry.path.display().to_string(),
                device: entry.device,
                inode: entry.inode,
                modified_ms,
            },
            path: entry.path.clone(),
            exec: match fd {
                Some(fd) => Exec::Fd(fd),
                None => Exec::Path {
                    reason: String::from(
                        "executed by its path, as the master before the upgrade executed it",
                    ),
                },
            },
        }
    }

    /// The entry of this program in a handover, for `generation`.
    pub(crate) fn entry(&self, generation: u64) -> ProgramEntry {
        ProgramEntry {
            generation,
            path: self.path.clone(),
            fd: self.fd().map(|fd| fd.as_raw_fd()),
            device: self.id.device,
            inode: self.id.inode,
        }
    }

    /// The identity of the file opened (not of what the path holds now).
    pub(crate) fn id(&self) -> &ProgramId {
        &self.id
    }

    /// The path it was opened at: argv for humans, and what is executed on the fallback.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Why spawns execute the path instead of the file held open, if they do.
    pub(crate) fn fallback(&self) -> Option<&str> {
        match &self.exec {
            Exec::Fd(_) => None,
            Exec::Path { reason } => Some(reason),
        }
    }

    /// The descriptor to execute, unless the program falls back to its path.
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        match &self.exec {
            Exec::Fd(fd) => Some(fd.as_fd()),
            Exec::Path { .. } => None,
        }
    }
}

/// The identity of the file `meta` describes, found at `path`.
pub(super) fn identity(path: &Path, meta: &std::fs::Metadata) -> ProgramId {
    let modified_ms = meta
        .mtime()
        .saturating_mul(1000)
        .saturating_add(meta.mtime_nsec() / 1_000_000);
    ProgramId {
        path: path.display().to_string(),
        device: meta.dev(),
        inode: meta.ino(),
        modified_ms: u64::try_from(modified_ms).unwrap_or(0),
    }
}

/// `O_PATH`: a reference to the file that needs no read permission (a mode 0711 binary can be
/// held) and allows nothing but fstat and exec through it. std adds `O_CLOEXEC`: the
/// descriptor never reaches a worker.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn open_path(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn open_path(path: &Path) -> io::Result<File> {
    // Only the identity is used here: spawns execute the path (see `fallback_reason`).
    std::fs::OpenOptions::new().read(true).open(path)
}

/// Why the file held open cannot be executed through its descriptor, if it cannot.
fn fallback_reason(fd: &OwnedFd, path: &Path, meta: &std::fs::Metadata) -> Option<String> {
    if let Some(why) = execveat_unavailable() {
        return Some(format!(
            "exec by descriptor is not available ({why}): spawns execute the path, following \
             it anew each time"
        ));
    }
    if starts_with_shebang(fd, path, meta) {
        // The kernel hands a script's interpreter `/dev/fd/N`, which it cannot reopen once the
        // close-on-exec descriptor is gone: execveat fails with ENOENT.
        return Some(String::from(
            "the program is a script (#!), which cannot be executed through a close-on-exec \
             descriptor: spawns execute the path, following it anew each time",
        ));
    }
    None
}

/// Why execveat cannot be used, if it cannot: probed once with a descriptor that is never
/// valid. A kernel that has it answers EBADF; anything else (ENOSYS on a kernel before 3.19,
/// EPERM or ENOSYS from a seccomp filter) means a spawn's execveat would fail too.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn execveat_unavailable() -> Option<&'static str> {
    static UNAVAILABLE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    UNAVAILABLE
        .get_or_init(|| {
            let empty: [*const libc::c_char; 1] = [std::ptr::null()];
            // SAFETY: fd -1 is never a valid descriptor, so the kernel fails the call (EBADF,
            // or ENOSYS where execveat does not exist) before it replaces anything; the path
            // and both arrays are valid, NUL- and null-terminated.
            unsafe {
                libc::syscall(
                    libc::SYS_execveat,
                    -1,
                    c"".as_ptr(),
                    empty.as_ptr(),
                    empty.as_ptr(),
                    libc::AT_EMPTY_PATH,
                )
            };
            let err = io::Error::last_os_error();
            (err.raw_os_error() != Some(libc::EBADF)).then(|| format!("execveat: {err}"))
        })
        .as_deref()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn execveat_unavailable() -> Option<&'static str> {
    Some("execveat is Linux's")
}

/// Whether the file held by `fd` starts with `#!`. An `O_PATH` descriptor cannot be read, so
/// the same file is reopened for reading through `/proc/self/fd`; without `/proc`, by path if
/// that still is the same file. A file that cannot be read is no script: its interpreter could
/// not read it either.
fn starts_with_shebang(fd: &OwnedFd, path: &Path, meta: &std::fs::Metadata) -> bool {
    let via_proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let file = File::open(via_proc).ok().or_else(|| {
        let file = File::open(path).ok()?;
        let now = file.metadata().ok()?;
        (now.dev() == meta.dev() && now.ino() == meta.ino()).then_some(file)
    });
    let Some(mut file) = file else {
        return false;
    };
    let mut head = [0u8; 2];
    file.read_exact(&mut head).is_ok() && &head == b"#!"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::scratch_dir;

    fn write_file(path: &Path, contents: &[u8], mode: u32) {
        std::fs::write(path, contents).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Writes a new file next to `path` and renames it over, as a deploy does.
    fn deploy(path: &Path, contents: &[u8]) {
        let tmp = path.with_extension("new");
        write_file(&tmp, contents, 0o755);
        std::fs::rename(&tmp, path).unwrap();
    }

    fn inode(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().ino()
    }

    #[test]
    fn a_program_opened_before_a_rename_over_is_the_old_file() {
        let dir = scratch_dir("program-rename");
        let app = dir.join("app");
        write_file(&app, b"\x7fELF old", 0o755);
        let old_inode = inode(&app);
        let before = Program::open(&app).unwrap();
        deploy(&app, b"\x7fELF new");
        let after = Program::open(&app).unwrap();

        assert_eq!(before.id().inode, old_inode);
        assert_eq!(after.id().inode, inode(&app));
        assert_ne!(before.id().inode, after.id().inode);
        assert_eq!(before.id().path, app.display().to_string());
        assert_eq!(before.path(), app);
        assert_eq!(before.fallback(), None);
        assert!(before.fd().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_program_opened_before_a_symlink_switch_is_the_old_release() {
        let dir = scratch_dir("program-switch");
        for release in ["r1", "r2"] {
            std::fs::create_dir(dir.join(release)).unwrap();
            write_file(&dir.join(release).join("app"), release.as_bytes(), 0o755);
        }
        let current = dir.join("current");
        std::os::unix::fs::symlink("r1", &current).unwrap();
        let app = current.join("app");
        let before = Program::open(&app).unwrap();
        // The switch a deploy makes: a new symlink renamed over the old one.
        let next = dir.join("current.new");
        std::os::unix::fs::symlink("r2", &next).unwrap();
        std::fs::rename(&next, &current).unwrap();
        let after = Program::open(&app).unwrap();

        assert_eq!(before.id().inode, inode(&dir.join("r1/app")));
        assert_eq!(after.id().inode, inode(&dir.join("r2/app")));
        // Both were opened at the symlinked path, which is what they report.
        assert_eq!(before.id().path, after.id().path);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_script_falls_back_to_its_path_with_the_reason() {
        let dir = scratch_dir("program-script");
        let app = dir.join("app.sh");
        write_file(&app, b"#!/bin/sh\nexit 0\n", 0o755);
        let program = Program::open(&app).unwrap();
        assert!(program.fd().is_none());
        let reason = program.fallback().expect("a script falls back");
        assert!(reason.contains("script"), "{reason}");
        assert_eq!(program.path(), app);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_or_a_non_executable_is_refused_naming_the_path() {
        let dir = scratch_dir("program-refused");
        let sub = dir.join("subdir");
        std::fs::create_dir(&sub).unwrap();
        let err = Program::open(&sub).unwrap_err().to_string();
        assert!(err.contains(&*sub.to_string_lossy()), "{err}");
        assert!(err.contains("not a regular file"), "{err}");

        let plain = dir.join("plain");
        write_file(&plain, b"\x7fELF", 0o644);
        let err = Program::open(&plain).unwrap_err().to_string();
        assert!(err.contains(&*plain.to_string_lossy()), "{err}");
        assert!(err.contains("not executable"), "{err}");

        let missing = dir.join("missing");
        let err = Program::open(&missing).unwrap_err().to_string();
        assert!(err.contains(&*missing.to_string_lossy()), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
