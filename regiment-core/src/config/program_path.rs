//! Which program the master runs as workers: its path, resolved once when the options are
//! validated. Opening it for each generation is the driver's (`master::driver::program`).

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Resolves the worker program's path once, at master start.
///
/// The path is made absolute but not canonicalised: when the program was started through a
/// symlink (`/srv/app/current/bin/app`, with `current` switched by each deploy), each
/// [`Program::open`] follows the symlink anew and gets the release deployed then. Without an
/// explicit path, `argv[0]` is used as the shell used it: with a slash, as a path; without one,
/// searched in `PATH` as `execvp` does, so that a symlink found there is followed too. Only if
/// that finds nothing is the running executable's path used. Never `/proc/self/exe`: that would
/// keep running the old image after a deploy.
pub(crate) fn resolve(explicit: Option<PathBuf>) -> Result<PathBuf> {
    resolve_with(
        explicit,
        std::env::args_os().next(),
        std::env::var_os("PATH"),
    )
}

/// The path the master was started from, resolved as the worker program's default is (`argv[0]`
/// as the shell used it, symlinks kept): where an upgrade in place finds the master's new
/// program.
pub(crate) fn master_path() -> Result<PathBuf> {
    resolve(None)
}

fn resolve_with(
    explicit: Option<PathBuf>,
    arg0: Option<OsString>,
    path_var: Option<OsString>,
) -> Result<PathBuf> {
    let candidate = match (explicit, arg0) {
        (Some(p), _) => p,
        (None, Some(arg0)) if arg0.as_encoded_bytes().contains(&b'/') => PathBuf::from(arg0),
        (None, arg0) => match arg0.and_then(|name| search_path(&name, path_var)) {
            Some(found) => found,
            None => std::env::current_exe().map_err(|source| Error::Program {
                path: "<current executable>".into(),
                source,
            })?,
        },
    };
    // `std::path::absolute` drops `.` components but, unlike `canonicalize`, keeps symlinks.
    let absolute = std::path::absolute(&candidate).map_err(|source| Error::Program {
        path: candidate.clone(),
        source,
    })?;
    check_executable(&absolute).map_err(|source| Error::Program {
        path: absolute.clone(),
        source,
    })?;
    Ok(absolute)
}

/// The first executable regular file called `name` in the directories of `path_var`, as
/// `execvp` finds it: an empty entry is the current directory, an unset `PATH` is glibc's
/// default.
fn search_path(name: &OsStr, path_var: Option<OsString>) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    let path_var = path_var.unwrap_or_else(|| OsString::from("/bin:/usr/bin"));
    std::env::split_paths(&path_var)
        .map(|dir| {
            if dir.as_os_str().is_empty() {
                PathBuf::from(".").join(name)
            } else {
                dir.join(name)
            }
        })
        .find(|candidate| check_executable(candidate).is_ok())
}

fn check_executable(p: &Path) -> io::Result<()> {
    let meta = std::fs::metadata(p)?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "not an executable file",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::scratch_dir;

    fn write_file(path: &Path, contents: &[u8], mode: u32) {
        std::fs::write(path, contents).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn keeps_symlinks_in_the_path() {
        let dir = scratch_dir("program-symlinks");
        let link = dir.join("current");
        std::os::unix::fs::symlink("/bin/sh", &link).unwrap();
        assert_eq!(resolve(Some(link.clone())).unwrap(), link);
        let err = resolve(Some(dir.join("missing"))).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_name_without_a_slash_is_searched_in_path_like_execvp() {
        let dir = scratch_dir("program-search");
        let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
        for d in [&a, &b, &c] {
            std::fs::create_dir(d).unwrap();
        }
        // Skipped: a file without an execute bit, then a directory of that name.
        write_file(&a.join("app"), b"not executable", 0o644);
        std::fs::create_dir(b.join("app")).unwrap();
        write_file(&c.join("app"), b"\x7fELF", 0o755);
        let later = dir.join("later");
        std::fs::create_dir(&later).unwrap();
        write_file(&later.join("app"), b"\x7fELF", 0o755);
        // A symlink in PATH is kept, so that each open follows it anew.
        std::os::unix::fs::symlink("c", dir.join("bin")).unwrap();

        let path_var = std::env::join_paths([&a, &b, &dir.join("bin"), &later]).unwrap();
        let found = resolve_with(None, Some("app".into()), Some(path_var)).unwrap();
        assert_eq!(found, dir.join("bin/app"));

        let path_var = std::env::join_paths([&a, &b]).unwrap();
        assert_eq!(search_path(OsStr::new("app"), Some(path_var.clone())), None);
        // Nothing found: the running executable.
        let fallback = resolve_with(None, Some("app".into()), Some(path_var)).unwrap();
        assert_eq!(fallback, std::env::current_exe().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
