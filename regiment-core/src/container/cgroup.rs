//! Which cgroup this process is in, as a directory: the line of `/proc/self/cgroup` for a
//! controller, mapped through the mount of its hierarchy in `/proc/self/mountinfo`.
//!
//! A cgroup v1 hierarchy that carries the controller comes first: on a hybrid machine the
//! memory controller is v1's and the cgroup2 mount (`/sys/fs/cgroup/unified`) has none. The
//! mount whose root is the closest ancestor of the process's cgroup path maps it: the directory
//! is the mount point joined with the rest of the path. Its ancestors that the mount shows
//! (up to the mount point) are where a parent's limit is read, as a parent's limit binds its
//! children.
//!
//! ```ignore
//! // In a container with a cgroup namespace: `0::/`, cgroup2 mounted at /sys/fs/cgroup with root /.
//! let cgroup = locate(&SystemRoot::host(), Controller::Memory)?.expect("in a cgroup");
//! assert_eq!(cgroup.dir, Path::new("/sys/fs/cgroup"));
//! ```

use std::path::{Path, PathBuf};

use super::membership::{self, Membership};
use super::mountinfo::{self, CgroupMount};
use super::system_root::{ReadError, SystemRoot};

/// A controller whose cgroup is looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Controller {
    Memory,
    Cpu,
}

impl Controller {
    /// Its name in `/proc/self/cgroup` and in a v1 mount's options.
    fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
        }
    }
}

/// The version of a cgroup hierarchy: its files differ (`memory.max` against
/// `memory.limit_in_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CgroupVersion {
    V1,
    V2,
}

/// The cgroup of this process for one controller, as a directory this process can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cgroup {
    pub version: CgroupVersion,
    /// The cgroup's directory, as the process sees it (`/sys/fs/cgroup/system.slice/app.service`).
    pub dir: PathBuf,
    /// Where its hierarchy is mounted: the last ancestor this process can see.
    pub mount_point: PathBuf,
}

impl Cgroup {
    /// The cgroup's directory, then each parent's, up to the mount point.
    pub(crate) fn ancestry(&self) -> impl Iterator<Item = &Path> {
        self.dir
            .ancestors()
            .take_while(|dir| dir.starts_with(&self.mount_point))
    }
}

/// The cgroup of this process for `controller`, or `None` when it is in none that a mount
/// shows (no cgroup filesystem mounted, or not the part of it that holds this process).
pub(crate) fn locate(
    root: &SystemRoot,
    controller: Controller,
) -> Result<Option<Cgroup>, ReadError> {
    let cgroup_file = Path::new("/proc/self/cgroup");
    let memberships = membership::parse(&root.read(cgroup_file)?)
        .map_err(|what| ReadError::malformed(cgroup_file, what))?;
    let mounts = mountinfo::cgroup_mounts(&root.read(Path::new("/proc/self/mountinfo"))?);

    let name = controller.name();
    let v1 = memberships
        .iter()
        .filter(|m| m.has_controller(name))
        .find_map(|m| map(m, mounts.iter().filter(|mount| mount.has_controller(name))))
        .map(|(dir, mount_point)| Cgroup {
            version: CgroupVersion::V1,
            dir,
            mount_point,
        });
    let cgroup = v1.or_else(|| {
        memberships
            .iter()
            .filter(|m| m.is_unified())
            .find_map(|m| map(m, mounts.iter().filter(|mount| mount.unified)))
            .map(|(dir, mount_point)| Cgroup {
                version: CgroupVersion::V2,
                dir,
                mount_point,
            })
    });
    // A mount can show a cgroup that this process left, or a path this namespace cannot
    // reach: only a directory that exists is the process's cgroup.
    Ok(cgroup.filter(|c| root.is_dir(&c.dir)))
}

/// The directory of `membership`'s cgroup in the mount, of `mounts`, whose root is its closest
/// ancestor; with that mount's mount point.
fn map<'a>(
    membership: &Membership,
    mounts: impl Iterator<Item = &'a CgroupMount>,
) -> Option<(PathBuf, PathBuf)> {
    mounts
        .filter_map(|mount| {
            let below = membership.path.strip_prefix(&mount.root).ok()?;
            Some((mount, below))
        })
        // The closest: a mount of the container's own cgroup rather than one of its parent.
        .max_by_key(|(mount, _)| mount.root.components().count())
        .map(|(mount, below)| {
            // Joined with an empty path, the mount point would gain a trailing slash.
            let dir = if below.as_os_str().is_empty() {
                mount.mount_point.clone()
            } else {
                mount.mount_point.join(below)
            };
            (dir, mount.mount_point.clone())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::fixtures::fixture;

    fn located(case: &str, controller: Controller) -> Cgroup {
        locate(&fixture(case), controller)
            .unwrap()
            .unwrap_or_else(|| panic!("{case}: no cgroup"))
    }

    #[test]
    fn a_container_with_a_cgroup_namespace_is_at_the_mount_point() {
        let cgroup = located("v2-limited", Controller::Memory);
        assert_eq!(cgroup.version, CgroupVersion::V2);
        assert_eq!(cgroup.dir, Path::new("/sys/fs/cgroup"));
        assert_eq!(
            cgroup.ancestry().collect::<Vec<_>>(),
            [Path::new("/sys/fs/cgroup")]
        );
    }

    #[test]
    fn a_nested_path_on_a_host_maps_below_the_mount_with_its_ancestors() {
        let cgroup = located("v2-kubepods", Controller::Memory);
        assert_eq!(cgroup.version, CgroupVersion::V2);
        let scope = "/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod55c6c714_b240_4dec_9a45_57b61696ab6e.slice/cri-containerd-2032491dcae31e6746f47daa0ac74564f2843a1bd847c5e6c4eb501ca132ac36.scope";
        assert_eq!(cgroup.dir, Path::new(scope));
        let ancestry: Vec<&Path> = cgroup.ancestry().collect();
        assert_eq!(ancestry.len(), 5, "{ancestry:?}");
        assert_eq!(ancestry[3], Path::new("/sys/fs/cgroup/kubepods.slice"));
        assert_eq!(ancestry[4], Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn a_v1_mount_of_the_containers_own_cgroup_is_mapped_by_its_root() {
        // `/docker/8e10...` in /proc/self/cgroup, mounted with that root: the mount point itself.
        let cgroup = located("v1-limited", Controller::Memory);
        assert_eq!(cgroup.version, CgroupVersion::V1);
        assert_eq!(cgroup.dir, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(cgroup.ancestry().count(), 1);
    }

    #[test]
    fn a_v1_hierarchy_mounted_whole_is_walked_from_its_root() {
        let cgroup = located("v1-nested", Controller::Memory);
        assert_eq!(
            cgroup.dir,
            Path::new(
                "/sys/fs/cgroup/memory/system.slice/docker-898b44c4a066d2dc6343c21d8a5b7c6a77079367d23bcde8c88be0eb204d3a1e.scope"
            )
        );
        assert_eq!(cgroup.ancestry().count(), 3);
    }

    #[test]
    fn on_a_hybrid_machine_memory_is_v1s_and_the_unified_mount_is_left() {
        let memory = located("hybrid", Controller::Memory);
        assert_eq!(memory.version, CgroupVersion::V1);
        assert_eq!(
            memory.dir,
            Path::new("/sys/fs/cgroup/memory/process_api/de35e3616d1b4bea243746f5054eea19")
        );
        let cpu = located("hybrid", Controller::Cpu);
        assert_eq!(
            (cpu.version, cpu.dir),
            (CgroupVersion::V1, PathBuf::from("/sys/fs/cgroup/cpu"))
        );
    }

    #[test]
    fn a_cgroup_no_mount_shows_is_none() {
        // The cgroup line names a path outside the mount's root: the mount shows another cgroup.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        std::fs::create_dir_all(dir.path().join("sys/fs/cgroup")).unwrap();
        std::fs::write(dir.path().join("proc/self/cgroup"), "0::/elsewhere\n").unwrap();
        std::fs::write(
            dir.path().join("proc/self/mountinfo"),
            "27 175 0:24 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup rw\n",
        )
        .unwrap();
        assert_eq!(
            locate(&SystemRoot::at(dir.path()), Controller::Memory).unwrap(),
            None
        );
    }

    /// The real files of this machine, where it has them: the cgroup found is a directory that
    /// holds the controller's files.
    #[test]
    fn this_machines_cgroup_is_a_directory_of_the_controller() {
        if !Path::new("/proc/self/cgroup").exists() {
            return;
        }
        let Some(cgroup) = locate(&SystemRoot::host(), Controller::Memory).unwrap() else {
            return;
        };
        assert!(cgroup.dir.is_dir(), "{cgroup:?}");
        let own = match cgroup.version {
            CgroupVersion::V1 => "memory.limit_in_bytes",
            CgroupVersion::V2 => "cgroup.controllers",
        };
        assert!(cgroup.dir.join(own).exists(), "{cgroup:?}");
    }
}
