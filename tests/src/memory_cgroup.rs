//! A memory cgroup of a test's own, with a limit, for a master and its workers to run in: the
//! kernel's OOM killer then kills within it, as in a container whose limit a worker passes.
//!
//! It is made a child of this process's own memory cgroup (from `/proc/self/cgroup` and the
//! mounts of `/proc/self/mountinfo`): under cgroup v1 (the `memory` hierarchy), or under
//! cgroup v2 when the memory controller is enabled for the children of this process's cgroup
//! (or can be). That takes root, or a delegated cgroup; when it cannot be made, [`create`]
//! says why, and the test says it did not run.
//!
//! Dropped (the test passed or failed), it kills what is left in it, by pid (only processes the
//! test started enter it), and removes it.
//!
//! ```no_run
//! # use tests::memory_cgroup::LimitedCgroup;
//! let cgroup = match LimitedCgroup::create("oom", 64 << 20) {
//!     Ok(cgroup) => cgroup,
//!     Err(why) => return eprintln!("not run: {why}"),
//! };
//! let mut master = std::process::Command::new("/bin/true");
//! cgroup.enter_on_exec(&mut master);
//! ```
//!
//! [`create`]: LimitedCgroup::create

// A pre_exec hook and the libc calls it makes (SAFETY comments there).
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Which cgroup hierarchy holds the memory controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// A child memory cgroup with a limit, removed when dropped.
#[derive(Debug)]
pub struct LimitedCgroup {
    dir: PathBuf,
    version: Version,
    /// `cgroup.procs`, as the pre_exec hook opens it (no allocation after fork).
    procs: CString,
}

impl LimitedCgroup {
    /// A new child of this process's memory cgroup, named after `name`, this process and the
    /// time, in which `bytes` is all the memory its processes may use (swap included).
    pub fn create(name: &str, bytes: u64) -> Result<LimitedCgroup, String> {
        let (parent, version) = own_memory_cgroup()?;
        if version == Version::V2 {
            enable_memory_for_children(&parent)?;
        }
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = parent.join(format!(
            "regiment-test-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        // Made: from here on, dropping it removes it.
        let cgroup = LimitedCgroup {
            dir,
            version,
            procs,
        };
        let limits: &[(&str, String)] = match version {
            // The limit first: memsw may not be below it. With memsw set too, swap cannot
            // take what the limit refuses.
            Version::V1 => &[
                ("memory.limit_in_bytes", bytes.to_string()),
                ("memory.memsw.limit_in_bytes", bytes.to_string()),
            ],
            Version::V2 => &[
                ("memory.max", bytes.to_string()),
                ("memory.swap.max", "0".to_string()),
            ],
        };
        for (file, value) in limits {
            let path = cgroup.dir.join(file);
            // memsw and swap.max exist only where the kernel accounts swap: without them, no
            // swap is accounted, and the limit is the memory limit alone.
            if file.contains("sw") && !path.exists() {
                continue;
            }
            std::fs::write(&path, value)
                .map_err(|e| format!("cannot write {value} to {}: {e}", path.display()))?;
        }
        Ok(cgroup)
    }

    /// The cgroup's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes the process `cmd` starts join this cgroup before it executes its program: every
    /// process it starts is in it too.
    pub fn enter_on_exec(&self, cmd: &mut Command) {
        let procs = self.procs.clone();
        // SAFETY: between fork and exec the hook calls only open, write and close, which are
        // async-signal-safe, on a path made before the fork; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // "0": the writing process itself.
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                let error = std::io::Error::last_os_error();
                libc::close(fd);
                if written == 1 { Ok(()) } else { Err(error) }
            });
        }
    }

    /// Whether process `pid` is in this cgroup, as its `/proc/PID/cgroup` says.
    pub fn holds(&self, pid: u32) -> bool {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
            return false;
        };
        let Ok((_, path)) = own_memory_cgroup_in(&text, &mounts()) else {
            return false;
        };
        path == self.dir
    }

    /// The OOM kills the kernel counted in this cgroup.
    pub fn oom_kills(&self) -> Option<u64> {
        let file = match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        let text = std::fs::read_to_string(self.dir.join(file)).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
    }

    /// The processes in it now.
    fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }
}

impl Drop for LimitedCgroup {
    fn drop(&mut self) {
        // Only the processes the test started entered it: what is left is theirs.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pids = self.pids();
            if pids.is_empty() || Instant::now() >= deadline {
                break;
            }
            for pid in pids {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            eprintln!(
                "could not remove the test's cgroup {}: {e} (left: {:?})",
                self.dir.display(),
                self.pids()
            );
        }
    }
}

/// A cgroup mount: where, what part of the hierarchy it shows, which hierarchy.
#[derive(Debug)]
struct Mount {
    point: PathBuf,
    root: PathBuf,
    version: Version,
}

/// The cgroup mounts of this process: cgroup v1 with the memory controller, and cgroup2.
fn mounts() -> Vec<Mount> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            // ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
            let (fields, tail) = line.split_once(" - ")?;
            let fields: Vec<&str> = fields.split(' ').collect();
            let tail: Vec<&str> = tail.split(' ').collect();
            let version = match (tail.first()?, tail.get(2)) {
                (&"cgroup", Some(options)) if options.split(',').any(|o| o == "memory") => {
                    Version::V1
                }
                (&"cgroup2", _) => Version::V2,
                _ => return None,
            };
            Some(Mount {
                root: PathBuf::from(unescape(fields.get(3)?)),
                point: PathBuf::from(unescape(fields.get(4)?)),
                version,
            })
        })
        .collect()
}

/// mountinfo writes a space in a path as `\040` (and tab, newline, backslash likewise).
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The directory of this process's memory cgroup, and its hierarchy.
fn own_memory_cgroup() -> Result<(PathBuf, Version), String> {
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let (version, dir) = own_memory_cgroup_in(&text, &mounts())?;
    Ok((dir, version))
}

/// The memory cgroup `cgroup` (a `/proc/PID/cgroup`) names, under `mounts`: v1's memory
/// hierarchy if there is one, else the unified one.
fn own_memory_cgroup_in(cgroup: &str, mounts: &[Mount]) -> Result<(Version, PathBuf), String> {
    let v1 = cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then_some(path)
    });
    let v2 = cgroup.lines().find_map(|l| l.strip_prefix("0::"));
    let (version, path) = match (v1, v2) {
        (Some(path), _) => (Version::V1, path),
        (None, Some(path)) => (Version::V2, path),
        (None, None) => return Err(format!("no memory cgroup in /proc/self/cgroup: {cgroup:?}")),
    };
    let mount = mounts
        .iter()
        .find(|m| m.version == version && Path::new(path).starts_with(&m.root))
        .ok_or_else(|| format!("no {version:?} cgroup mount shows {path}"))?;
    let below = Path::new(path)
        .strip_prefix(&mount.root)
        .map_err(|e| format!("{path}: {e}"))?;
    Ok((version, mount.point.join(below)))
}

/// Under cgroup v2 a child has memory files only if its parent enables the controller for its
/// children: enabled if it is not (which a cgroup with processes of its own refuses, but the
/// root).
fn enable_memory_for_children(parent: &Path) -> Result<(), String> {
    let control = parent.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&control)
        .map_err(|e| format!("cannot read {}: {e}", control.display()))?;
    if enabled.split_whitespace().any(|c| c == "memory") {
        return Ok(());
    }
    std::fs::write(&control, "+memory").map_err(|e| {
        format!(
            "the memory controller is not enabled in {} and cannot be: {e}",
            control.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(point: &str, root: &str, version: Version) -> Mount {
        Mount {
            point: point.into(),
            root: root.into(),
            version,
        }
    }

    #[test]
    fn the_memory_cgroup_is_found_under_the_mount_that_shows_it() {
        // This machine's: v1 memory beside an empty cgroup2.
        let hybrid = "4:memory:/process_api/dcfd\n1:cpu:/\n0::/\n";
        let mounts = [
            mount("/sys/fs/cgroup/memory", "/", Version::V1),
            mount("/sys/fs/cgroup/unified", "/", Version::V2),
        ];
        assert_eq!(
            own_memory_cgroup_in(hybrid, &mounts).unwrap(),
            (
                Version::V1,
                PathBuf::from("/sys/fs/cgroup/memory/process_api/dcfd")
            )
        );
        // A container's v1 mount shows its own part of the hierarchy only.
        let mounts = [mount("/sys/fs/cgroup/memory", "/docker/abc", Version::V1)];
        assert_eq!(
            own_memory_cgroup_in("9:memory:/docker/abc/x\n", &mounts)
                .unwrap()
                .1,
            PathBuf::from("/sys/fs/cgroup/memory/x")
        );
        // cgroup v2 alone.
        let mounts = [mount("/sys/fs/cgroup", "/", Version::V2)];
        assert_eq!(
            own_memory_cgroup_in("0::/user.slice/app.scope\n", &mounts).unwrap(),
            (
                Version::V2,
                PathBuf::from("/sys/fs/cgroup/user.slice/app.scope")
            )
        );
        let none = own_memory_cgroup_in("1:cpu:/\n", &mounts).unwrap_err();
        assert!(none.contains("no memory cgroup"), "{none}");
    }
}
