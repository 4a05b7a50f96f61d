//! Which program the master runs as workers.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Resolves the worker program once, at master start.
///
/// The path is made absolute but not canonicalised: when the program was started through a
/// symlink (`/srv/app/current/bin/app`, with `current` switched by each deploy), every spawn
/// follows the symlink anew and runs the release deployed now. Without an explicit path and
/// when `argv[0]` has no slash (found through `PATH`), the running executable's path is used.
/// Never `/proc/self/exe`: that would keep running the old image after a deploy.
pub(crate) fn resolve(explicit: Option<PathBuf>) -> Result<PathBuf> {
    let candidate = match explicit {
        Some(p) => p,
        None => match std::env::args_os().next().map(PathBuf::from) {
            Some(arg0) if arg0.as_os_str().as_encoded_bytes().contains(&b'/') => arg0,
            _ => std::env::current_exe().map_err(|source| Error::Program {
                path: "<current executable>".into(),
                source,
            })?,
        },
    };
    let absolute = absolute(&candidate).map_err(|source| Error::Program {
        path: candidate.clone(),
        source,
    })?;
    check_executable(&absolute).map_err(|source| Error::Program {
        path: absolute.clone(),
        source,
    })?;
    Ok(absolute)
}

fn absolute(p: &Path) -> std::io::Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(p))
    }
}

fn check_executable(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(p)?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "not an executable file",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_symlinks_in_the_path() {
        let dir = std::env::temp_dir().join(format!("regiment-program-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("current");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/bin/sh", &link).unwrap();
        assert_eq!(resolve(Some(link.clone())).unwrap(), link);
        let err = resolve(Some(dir.join("missing"))).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
