//! `/proc/self/mountinfo`: where the cgroup filesystems are mounted (proc_pid_mountinfo(5)).
//!
//! ```text
//! 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//! (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
//! ```
//!
//! Of each line this reads the root of the mount within its filesystem (4), the mount point (5),
//! the filesystem type (9) and the super options (11), which for a cgroup v1 mount name its
//! controllers. The optional fields (7) are zero or more, hence the search for the separator.
//! The root matters: a container without a cgroup namespace gets its own cgroup bind-mounted
//! at `/sys/fs/cgroup/memory`, root `/docker/8e10...`, while `/proc/self/cgroup` still says
//! `/docker/8e10...`; the two do not concatenate.
//!
//! ```ignore
//! let mounts = cgroup_mounts("41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
//! assert_eq!(mounts[0].mount_point, Path::new("/sys/fs/cgroup/unified"));
//! ```

use std::path::PathBuf;

/// A mounted cgroup filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    /// `cgroup2`, or a v1 `cgroup` hierarchy.
    pub unified: bool,
    /// The cgroup (as `/proc/self/cgroup` names cgroups) that this mount shows at its mount
    /// point.
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// The super options: a v1 mount's controllers are among them (`rw,cpu,cpuacct`).
    pub super_options: Vec<String>,
}

impl CgroupMount {
    /// Whether this v1 mount carries `controller`.
    pub(crate) fn has_controller(&self, controller: &str) -> bool {
        !self.unified && self.super_options.iter().any(|o| o == controller)
    }
}

/// The cgroup mounts among the lines of `/proc/self/mountinfo`, in their order. A line that
/// cannot be read is skipped: it is not a cgroup mount this module could use.
pub(crate) fn cgroup_mounts(text: &str) -> Vec<CgroupMount> {
    text.lines().filter_map(cgroup_mount).collect()
}

fn cgroup_mount(line: &str) -> Option<CgroupMount> {
    let fields: Vec<&str> = line.split(' ').collect();
    let separator = fields.iter().position(|f| *f == "-")?;
    // Six fields before the optional ones: id, parent, major:minor, root, mount point, options.
    if separator < 6 {
        return None;
    }
    let fs_type = *fields.get(separator + 1)?;
    let super_options = fields.get(separator + 3)?;
    let unified = match fs_type {
        "cgroup2" => true,
        "cgroup" => false,
        _ => return None,
    };
    Some(CgroupMount {
        unified,
        root: PathBuf::from(unescape(fields[3])),
        mount_point: PathBuf::from(unescape(fields[4])),
        super_options: super_options.split(',').map(str::to_owned).collect(),
    })
}

/// Undoes the kernel's escaping of paths in mountinfo (`show_path`): a space, a tab, a
/// newline and a backslash are written as three octal digits after a backslash (`\040`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| d.iter().fold(0u32, |n, b| n * 8 + u32::from(b - b'0')))
            .and_then(|n| u8::try_from(n).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn finds_the_cgroup_mounts_of_a_hybrid_machine() {
        // This machine's /proc/self/mountinfo, shortened (tests/fixtures/cgroup/hybrid).
        let text = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n\
                    31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                    32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                    40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let mounts = cgroup_mounts(text);
        let points: Vec<&Path> = mounts.iter().map(|m| m.mount_point.as_path()).collect();
        assert_eq!(
            points,
            [
                "/sys/fs/cgroup/cpu",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/unified"
            ]
            .map(Path::new)
        );
        assert!(mounts[0].has_controller("cpu") && !mounts[0].has_controller("cpuacct"));
        assert!(mounts[1].has_controller("memory"));
        assert!(mounts[3].unified && !mounts[3].has_controller("memory"));
    }

    #[test]
    fn reads_the_root_past_optional_fields() {
        // A v1 container's own cgroup bind-mounted (containers/crun#729), and a host's cgroup2
        // mount with an optional field (siderolabs/talos#4110).
        let text = "2284 2283 0:25 /kubepods/besteffort/pod85401dd3-38cd-47b6-a90a-e16c0e1c06e6/dbc9f149296cec5d12b78385eb5b2c0cfe20b476f117c15c76d981cff44053c1 /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd\n\
                    27 175 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup rw,nsdelegate\n";
        let mounts = cgroup_mounts(text);
        assert_eq!(
            mounts[0].root,
            Path::new(
                "/kubepods/besteffort/pod85401dd3-38cd-47b6-a90a-e16c0e1c06e6/dbc9f149296cec5d12b78385eb5b2c0cfe20b476f117c15c76d981cff44053c1"
            )
        );
        assert!(mounts[0].has_controller("name=systemd"));
        assert!(mounts[1].unified);
        assert_eq!(mounts[1].root, Path::new("/"));
        assert_eq!(mounts[1].mount_point, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn unescapes_paths_and_skips_what_is_not_a_cgroup_mount() {
        let text = "25 21 0:22 /a\\040b /sys/fs/cgroup/tab\\011tab\\134 rw - cgroup2 cgroup2 rw\n\
                    broken line\n\
                    22 1 8:1 / / rw,relatime - ext4 /dev/root rw\n";
        let mounts = cgroup_mounts(text);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].root, Path::new("/a b"));
        assert_eq!(
            mounts[0].mount_point,
            Path::new("/sys/fs/cgroup/tab\ttab\\")
        );
        assert_eq!(
            unescape("\\04"),
            "\\04",
            "an escape cut short is kept as it is"
        );
    }
}
