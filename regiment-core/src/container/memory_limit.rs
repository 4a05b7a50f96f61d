//! The memory limit that applies to this process: the lowest of its cgroup's limits and its
//! ancestors' (a parent's limit binds its children), or the machine's memory when that is lower
//! or there is no limit.
//!
//! - cgroup v2: `memory.max`, and `memory.high` when lower (above it the kernel throttles and
//!   reclaims hard: a budget should stay under it too). `max` means no limit at that level.
//! - cgroup v1: `memory.limit_in_bytes` (a value near 2^63 means no limit), and the
//!   `hierarchical_memory_limit` of the process's own cgroup in `memory.stat`: the kernel's
//!   minimum over every ancestor, those above the mount included, which a container cannot
//!   walk to.
//! - Neither, or a limit above it: `MemTotal` of `/proc/meminfo`.
//!
//! Only the ancestors that the mount shows are read: inside a container with a cgroup
//! namespace that is the container's own cgroup, whose limit its runtime sets.
//!
//! ```ignore
//! let limit = memory_limit();
//! tracing::info!("memory limit: {} bytes ({})", limit.bytes, limit.source);
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use super::cgroup::{self, Cgroup, CgroupVersion, Controller};
use super::meminfo::{self, MEMINFO};
use super::system_root::{ReadError, SystemRoot};

/// A memory limit, in bytes, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemoryLimit {
    pub bytes: u64,
    pub source: LimitSource,
}

/// What sets a [`MemoryLimit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LimitSource {
    /// cgroup v2 `memory.max` of this cgroup (the process's own or an ancestor).
    CgroupV2Max { cgroup: PathBuf },
    /// cgroup v2 `memory.high` of this cgroup, lower than every `memory.max`.
    CgroupV2High { cgroup: PathBuf },
    /// cgroup v1 `memory.limit_in_bytes` of this cgroup, or its `hierarchical_memory_limit`
    /// when an ancestor the mount hides sets it.
    CgroupV1 { cgroup: PathBuf },
    /// The machine's memory (`MemTotal`): no cgroup limits this process below it.
    Machine,
}

impl fmt::Display for LimitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitSource::CgroupV2Max { cgroup } => write!(f, "memory.max of {}", cgroup.display()),
            LimitSource::CgroupV2High { cgroup } => {
                write!(f, "memory.high of {}", cgroup.display())
            }
            LimitSource::CgroupV1 { cgroup } => {
                write!(f, "the cgroup v1 memory limit of {}", cgroup.display())
            }
            LimitSource::Machine => write!(f, "the machine's memory"),
        }
    }
}

/// The memory limit of this process. Never fails: what cannot be read is logged, and the
/// machine's memory stands in.
pub(crate) fn memory_limit() -> MemoryLimit {
    memory_limit_under(&SystemRoot::host())
}

/// [`memory_limit`] from the files under `root`.
pub(crate) fn memory_limit_under(root: &SystemRoot) -> MemoryLimit {
    let machine = MemoryLimit {
        bytes: machine_memory(root),
        source: LimitSource::Machine,
    };
    match cgroup_limit(root) {
        Ok(Some(limit)) if limit.bytes <= machine.bytes => limit,
        Ok(Some(limit)) => {
            tracing::debug!(
                target: "regiment",
                "the cgroup's memory limit ({} bytes, {}) is above the machine's memory",
                limit.bytes,
                limit.source
            );
            machine
        }
        Ok(None) => machine,
        Err(e) => {
            tracing::warn!(
                target: "regiment",
                "the cgroup's memory limit is unknown, the machine's memory stands for it: {e}"
            );
            machine
        }
    }
}

/// `MemTotal`, or (without a readable `/proc/meminfo`) the physical memory the C library
/// counts, or no bound at all.
fn machine_memory(root: &SystemRoot) -> u64 {
    meminfo::machine_memory(root).unwrap_or_else(|e| {
        let bytes = physical_memory();
        tracing::warn!(
            target: "regiment",
            "the machine's memory is not in {MEMINFO} ({e}); sysconf counts {bytes:?} bytes"
        );
        bytes.unwrap_or(u64::MAX)
    })
}

/// The physical pages times their size (sysconf(3)).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn physical_memory() -> Option<u64> {
    use nix::unistd::{SysconfVar, sysconf};
    let pages = u64::try_from(sysconf(SysconfVar::_PHYS_PAGES).ok()??).ok()?;
    let size = u64::try_from(sysconf(SysconfVar::PAGE_SIZE).ok()??).ok()?;
    pages.checked_mul(size)
}

/// nix reads `_SC_PHYS_PAGES` on Linux only.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn physical_memory() -> Option<u64> {
    None
}

/// The lowest limit of the process's memory cgroup and its ancestors, if any is set.
fn cgroup_limit(root: &SystemRoot) -> Result<Option<MemoryLimit>, ReadError> {
    let Some(cgroup) = cgroup::locate(root, Controller::Memory)? else {
        tracing::debug!(target: "regiment", "this process is in no memory cgroup");
        return Ok(None);
    };
    match cgroup.version {
        CgroupVersion::V2 => v2_limit(root, &cgroup),
        CgroupVersion::V1 => v1_limit(root, &cgroup),
    }
}

/// The lowest of a value over the ancestry, and the cgroup that holds it (the closest to the
/// process, among equal ones).
#[derive(Debug, Default)]
struct Lowest(Option<(u64, PathBuf)>);

impl Lowest {
    fn offer(&mut self, bytes: Option<u64>, cgroup: &Path) {
        if let Some(bytes) = bytes
            && self.0.as_ref().is_none_or(|(lowest, _)| bytes < *lowest)
        {
            self.0 = Some((bytes, cgroup.to_path_buf()));
        }
    }
}

fn v2_limit(root: &SystemRoot, cgroup: &Cgroup) -> Result<Option<MemoryLimit>, ReadError> {
    let (mut max, mut high) = (Lowest::default(), Lowest::default());
    for dir in cgroup.ancestry() {
        max.offer(v2_value(root, &dir.join("memory.max"))?, dir);
        high.offer(v2_value(root, &dir.join("memory.high"))?, dir);
    }
    let max = max.0.map(|(bytes, cgroup)| MemoryLimit {
        bytes,
        source: LimitSource::CgroupV2Max { cgroup },
    });
    let high = high.0.map(|(bytes, cgroup)| MemoryLimit {
        bytes,
        source: LimitSource::CgroupV2High { cgroup },
    });
    Ok(match (max, high) {
        (Some(max), Some(high)) if high.bytes < max.bytes => Some(high),
        (max, high) => max.or(high),
    })
}

/// A v2 limit file: a number of bytes, or `max` for none (absent: none either).
fn v2_value(root: &SystemRoot, file: &Path) -> Result<Option<u64>, ReadError> {
    let Some(text) = root.read_if_present(file)? else {
        return Ok(None);
    };
    match text.trim() {
        "max" => Ok(None),
        value => value
            .parse()
            .map(Some)
            .map_err(|_| ReadError::malformed(file, format!("{value:?} is neither bytes nor max"))),
    }
}

/// From this value up, a v1 limit is the kernel's "unlimited": `PAGE_COUNTER_MAX` pages,
/// shown as 9223372036854771712 with 4 KiB pages (2^63 less a page; less with larger pages).
/// No machine has 2^62 bytes.
const V1_UNLIMITED_FROM: u64 = 1 << 62;

fn v1_limit(root: &SystemRoot, cgroup: &Cgroup) -> Result<Option<MemoryLimit>, ReadError> {
    let mut lowest = Lowest::default();
    // The process's own cgroup first: the hierarchical limit, equal to one of the ancestry's,
    // is then named after the closest that sets it, as no farther one is lower.
    lowest.offer(v1_hierarchical_limit(root, &cgroup.dir)?, &cgroup.dir);
    for dir in cgroup.ancestry() {
        lowest.offer(v1_value(root, &dir.join("memory.limit_in_bytes"))?, dir);
    }
    Ok(lowest.0.map(|(bytes, cgroup)| MemoryLimit {
        bytes,
        source: LimitSource::CgroupV1 { cgroup },
    }))
}

fn v1_value(root: &SystemRoot, file: &Path) -> Result<Option<u64>, ReadError> {
    let Some(text) = root.read_if_present(file)? else {
        return Ok(None);
    };
    let value = text.trim();
    let bytes: u64 = value
        .parse()
        .map_err(|_| ReadError::malformed(file, format!("{value:?} is not a number of bytes")))?;
    Ok((bytes < V1_UNLIMITED_FROM).then_some(bytes))
}

/// `hierarchical_memory_limit` of `memory.stat` in `dir`.
fn v1_hierarchical_limit(root: &SystemRoot, dir: &Path) -> Result<Option<u64>, ReadError> {
    let file = dir.join("memory.stat");
    let Some(text) = root.read_if_present(&file)? else {
        return Ok(None);
    };
    let Some(value) = text
        .lines()
        .find_map(|l| l.strip_prefix("hierarchical_memory_limit "))
    else {
        return Ok(None);
    };
    let bytes: u64 = value
        .trim()
        .parse()
        .map_err(|_| ReadError::malformed(&file, format!("hierarchical_memory_limit {value:?}")))?;
    Ok((bytes < V1_UNLIMITED_FROM).then_some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::fixtures::{copy_of, fixture};
    use crate::test_support::capture_log;

    fn limit(case: &str) -> MemoryLimit {
        memory_limit_under(&fixture(case))
    }

    fn v2_max(bytes: u64, cgroup: &str) -> MemoryLimit {
        MemoryLimit {
            bytes,
            source: LimitSource::CgroupV2Max {
                cgroup: cgroup.into(),
            },
        }
    }

    fn v1(bytes: u64, cgroup: &str) -> MemoryLimit {
        MemoryLimit {
            bytes,
            source: LimitSource::CgroupV1 {
                cgroup: cgroup.into(),
            },
        }
    }

    fn machine(kib: u64) -> MemoryLimit {
        MemoryLimit {
            bytes: kib * 1024,
            source: LimitSource::Machine,
        }
    }

    #[test]
    fn v2_limited_is_memory_max() {
        assert_eq!(limit("v2-limited"), v2_max(131_072_000, "/sys/fs/cgroup"));
    }

    #[test]
    fn v2_unlimited_is_the_machine() {
        assert_eq!(limit("v2-unlimited"), machine(24_683_772));
    }

    #[test]
    fn v2_memory_high_below_max_is_the_limit() {
        assert_eq!(
            limit("v2-high-below-max"),
            MemoryLimit {
                bytes: 1_610_612_736,
                source: LimitSource::CgroupV2High {
                    cgroup: "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/firefox.service".into()
                },
            }
        );
    }

    #[test]
    fn v2_a_parents_limit_binds_a_child_without_one() {
        assert_eq!(
            limit("v2-nested-parent-limit"),
            v2_max(
                4_194_304_000,
                "/sys/fs/cgroup/system.slice/slurm-worker-1_slurmstepd.scope/job_4749/step_0/user"
            )
        );
        assert_eq!(
            limit("v2-kubepods"),
            v2_max(3_040_550_912, "/sys/fs/cgroup/kubepods.slice")
        );
    }

    #[test]
    fn v1_limited_is_memory_limit_in_bytes() {
        assert_eq!(
            limit("v1-limited"),
            v1(4_294_967_296, "/sys/fs/cgroup/memory")
        );
    }

    #[test]
    fn v1_unlimited_is_the_machine() {
        assert_eq!(limit("v1-unlimited"), machine(24_683_772));
    }

    #[test]
    fn v1_nested_is_read_in_the_cgroup_below_the_mount() {
        assert_eq!(
            limit("v1-nested"),
            v1(
                4_294_967_296,
                "/sys/fs/cgroup/memory/system.slice/docker-898b44c4a066d2dc6343c21d8a5b7c6a77079367d23bcde8c88be0eb204d3a1e.scope"
            )
        );
    }

    #[test]
    fn a_hybrid_machine_reads_v1_memory_and_here_has_no_limit() {
        assert_eq!(limit("hybrid"), machine(24_683_772));
    }

    /// A v1 limit set on an ancestor that the mount hides shows only in the kernel's
    /// hierarchical limit: here the cgroup's own is unlimited.
    #[test]
    fn v1_a_hidden_ancestors_limit_is_the_hierarchical_one() {
        assert_eq!(
            limit("v1-hidden-ancestor"),
            v1(7_853_834_240, "/sys/fs/cgroup/memory")
        );
    }

    #[test]
    fn a_limit_above_the_machines_memory_is_the_machine() {
        let copy = copy_of("v2-limited");
        // 64 GiB, on a machine of 23.5 GiB.
        std::fs::write(
            copy.path().join("sys/fs/cgroup/memory.max"),
            "68719476736\n",
        )
        .unwrap();
        assert_eq!(
            memory_limit_under(&SystemRoot::at(copy.path())),
            machine(24_683_772)
        );
    }

    #[test]
    fn a_file_that_cannot_be_read_falls_back_to_the_machine_and_says_why() {
        let copy = copy_of("v2-limited");
        std::fs::write(copy.path().join("sys/fs/cgroup/memory.max"), "lots\n").unwrap();
        let (limit, log) = capture_log(|| memory_limit_under(&SystemRoot::at(copy.path())));
        assert_eq!(limit, machine(24_683_772));
        assert!(
            log.contains("WARN")
                && log.contains("/sys/fs/cgroup/memory.max")
                && log.contains("\"lots\""),
            "{log}"
        );

        std::fs::remove_file(copy.path().join("proc/self/cgroup")).unwrap();
        let (limit, log) = capture_log(|| memory_limit_under(&SystemRoot::at(copy.path())));
        assert_eq!(limit, machine(24_683_772));
        assert!(log.contains("cannot read /proc/self/cgroup"), "{log}");
    }

    #[test]
    fn without_meminfo_the_machine_is_what_sysconf_counts() {
        let copy = copy_of("v2-unlimited");
        std::fs::remove_file(copy.path().join("proc/meminfo")).unwrap();
        let (limit, log) = capture_log(|| memory_limit_under(&SystemRoot::at(copy.path())));
        assert_eq!(limit.source, LimitSource::Machine);
        assert_eq!(Some(limit.bytes), physical_memory().or(Some(u64::MAX)));
        assert!(limit.bytes > 0);
        assert!(log.contains("cannot read /proc/meminfo"), "{log}");
    }

    #[test]
    fn the_source_says_which_file() {
        assert_eq!(
            limit("v2-limited").source.to_string(),
            "memory.max of /sys/fs/cgroup"
        );
        assert_eq!(LimitSource::Machine.to_string(), "the machine's memory");
    }

    /// This machine's own files: a limit no higher than its memory, from a cgroup directory
    /// that exists when it is a cgroup's.
    #[test]
    fn this_machines_limit_is_read() {
        let limit = memory_limit();
        assert!(limit.bytes > 0);
        if let Ok(total) = meminfo::machine_memory(&SystemRoot::host()) {
            assert!(limit.bytes <= total, "{limit:?} above {total}");
        }
        match &limit.source {
            LimitSource::CgroupV2Max { cgroup }
            | LimitSource::CgroupV2High { cgroup }
            | LimitSource::CgroupV1 { cgroup } => assert!(cgroup.is_dir(), "{limit:?}"),
            LimitSource::Machine => {}
        }
    }
}
