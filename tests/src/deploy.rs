//! Deploys as operators do them, in a temporary directory: a binary renamed over the program
//! path, or a release directory behind a `current` symlink switched atomically.

use std::path::PathBuf;

/// A program path whose file is replaced by a rename, as most deploy tools do.
#[derive(Debug)]
pub struct Deploy {
    dir: PathBuf,
}

impl Deploy {
    /// A fresh directory for `name`, with `first` installed as the program.
    pub fn new(name: &str, first: &str) -> Deploy {
        let dir = std::env::temp_dir().join(format!("regiment-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = Deploy { dir };
        d.install(first);
        d
    }

    /// The program path a master is started with.
    pub fn app(&self) -> PathBuf {
        self.dir.join("app")
    }

    /// Replaces the program atomically, as a deploy does (the running master keeps its image).
    pub fn install(&self, binary: &str) {
        let tmp = self.dir.join("app.new");
        std::fs::copy(binary, &tmp).unwrap();
        std::fs::rename(&tmp, self.app()).unwrap();
    }
}

/// A release directory per deploy and a `current` symlink switched atomically, as Capistrano
/// and many deploy tools do; the program path goes through the symlink.
#[derive(Debug)]
pub struct SymlinkDeploy {
    dir: PathBuf,
    releases: std::cell::Cell<u32>,
}

impl SymlinkDeploy {
    /// A fresh directory for `name`, with `first` installed as release 1.
    pub fn new(name: &str, first: &str) -> SymlinkDeploy {
        let dir = std::env::temp_dir().join(format!("regiment-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = SymlinkDeploy {
            dir,
            releases: std::cell::Cell::new(0),
        };
        d.install(first);
        d
    }

    /// The program path a master is started with, through the `current` symlink.
    pub fn app(&self) -> PathBuf {
        self.dir.join("current").join("app")
    }

    /// Installs `binary` as a new release and switches `current` to it.
    pub fn install(&self, binary: &str) {
        let n = self.releases.get() + 1;
        self.releases.set(n);
        let release = self.dir.join(format!("release-{n}"));
        std::fs::create_dir_all(&release).unwrap();
        std::fs::copy(binary, release.join("app")).unwrap();
        let tmp = self.dir.join("current.new");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&release, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("current")).unwrap();
    }
}

impl Drop for SymlinkDeploy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Deploy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
