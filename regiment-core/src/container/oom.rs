//! How many processes of this process's memory cgroup the kernel's OOM killer has killed: a
//! worker that died of SIGKILL the master did not send, while this count went up, was killed
//! by the OOM killer.
//!
//! - cgroup v2: the `oom_kill` line of `memory.events`. It counts the cgroup and its
//!   descendants (since Linux 5.2; `memory.events.local` counts the cgroup alone), which is
//!   what is read: workers that a user's setup moves into child cgroups are still this
//!   master's. It counts a kill whichever limit caused it (this cgroup's, a parent's, the
//!   machine's): the kernel charges it to the killed process's cgroup and up (containerd reads
//!   it for that reason, containerd#6323). A cgroup2 mounted with `memory_localevents` makes
//!   `memory.events` local too.
//! - cgroup v1: the `oom_kill` line of `memory.oom_control` (since Linux 4.13; older kernels
//!   have no such line: `None`). It counts this cgroup alone.
//!
//! `None` also when this process is in no memory cgroup (a host's root cgroup has no
//! `memory.events`) or the file cannot be read.
//!
//! ```ignore
//! let before = oom_kills();
//! // ... a worker exits of a SIGKILL the master did not send ...
//! let by_oom_killer = matches!((before, oom_kills()), (Some(a), Some(b)) if b > a);
//! ```

use std::path::Path;

use super::cgroup::{self, CgroupVersion, Controller};
use super::system_root::{ReadError, SystemRoot};

/// The OOM kills counted in this process's memory cgroup, if it has such a count.
pub(crate) fn oom_kills() -> Option<u64> {
    oom_kills_under(&SystemRoot::host())
}

/// [`oom_kills`] from the files under `root`.
pub(crate) fn oom_kills_under(root: &SystemRoot) -> Option<u64> {
    count(root).unwrap_or_else(|e| {
        // Read after each unexplained SIGKILL: not worth a warning each time.
        tracing::debug!(target: "regiment", "no OOM kill count: {e}");
        None
    })
}

fn count(root: &SystemRoot) -> Result<Option<u64>, ReadError> {
    let Some(cgroup) = cgroup::locate(root, Controller::Memory)? else {
        return Ok(None);
    };
    let file = cgroup.dir.join(match cgroup.version {
        CgroupVersion::V2 => "memory.events",
        CgroupVersion::V1 => "memory.oom_control",
    });
    let Some(text) = root.read_if_present(&file)? else {
        return Ok(None);
    };
    oom_kill_line(&text, &file)
}

/// The number on the `oom_kill N` line, if there is one.
fn oom_kill_line(text: &str, file: &Path) -> Result<Option<u64>, ReadError> {
    let Some(value) = text.lines().find_map(|l| l.strip_prefix("oom_kill ")) else {
        return Ok(None);
    };
    value
        .trim()
        .parse()
        .map(Some)
        .map_err(|_| ReadError::malformed(file, format!("oom_kill {value:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::fixtures::{copy_of, fixture};

    #[test]
    fn v2_counts_oom_kill_of_memory_events() {
        // A cgroup whose one process the OOM killer took (memory.events after the kill).
        assert_eq!(oom_kills_under(&fixture("v2-oom-killed")), Some(1));
        assert_eq!(oom_kills_under(&fixture("v2-limited")), Some(0));
    }

    #[test]
    fn v1_counts_oom_kill_of_memory_oom_control() {
        // This machine's memory.oom_control, which has the line.
        assert_eq!(oom_kills_under(&fixture("hybrid")), Some(0));
        // After a kill, as a Raspberry Pi's v1 cgroup `pi-group` showed it.
        let after = "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n";
        assert_eq!(oom_kill_line(after, Path::new("/m")).unwrap(), Some(1));
    }

    #[test]
    fn a_v1_kernel_before_4_13_has_no_count() {
        assert_eq!(oom_kills_under(&fixture("v1-limited")), None);
        assert_eq!(oom_kills_under(&fixture("v1-hidden-ancestor")), None);
    }

    #[test]
    fn a_root_cgroup_without_memory_events_has_no_count() {
        // The host's root cgroup: cgroup2 mounted with root /, the process in `0::/`.
        let copy = copy_of("v2-limited");
        std::fs::remove_file(copy.path().join("sys/fs/cgroup/memory.events")).unwrap();
        assert_eq!(oom_kills_under(&SystemRoot::at(copy.path())), None);
    }

    #[test]
    fn a_count_that_is_not_a_number_is_none() {
        let copy = copy_of("v2-oom-killed");
        let events = copy.path().join(
            "sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/labm6.service/memory.events",
        );
        let text = std::fs::read_to_string(&events)
            .unwrap()
            .replace("oom_kill 1", "oom_kill x");
        std::fs::write(&events, text).unwrap();
        assert_eq!(oom_kills_under(&SystemRoot::at(copy.path())), None);
        assert!(
            oom_kill_line("oom_kill x\n", Path::new("/m"))
                .unwrap_err()
                .to_string()
                .contains("oom_kill \"x\"")
        );
    }

    /// This machine's files: when its memory cgroup has the file with the line, it is counted.
    #[test]
    fn this_machines_count_is_read_where_the_kernel_keeps_one() {
        let Ok(Some(cgroup)) = cgroup::locate(&SystemRoot::host(), Controller::Memory) else {
            return;
        };
        let file = cgroup.dir.join(match cgroup.version {
            CgroupVersion::V2 => "memory.events",
            CgroupVersion::V1 => "memory.oom_control",
        });
        let kept = std::fs::read_to_string(file).is_ok_and(|t| t.contains("\noom_kill "));
        assert_eq!(oom_kills().is_some(), kept);
    }
}
