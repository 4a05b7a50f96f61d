//! The CPUs this process may use, the default number of workers: the CPUs its affinity allows
//! (`taskset`, a cpuset), fewer when its cgroup's CPU quota is lower, rounded up, at least 1.
//!
//! The quota is the lowest along the cgroup's ancestry that the mount shows: cgroup v2
//! `cpu.max` (`150000 100000`: 1.5 CPUs; `max 100000`: none), cgroup v1 `cpu.cfs_quota_us` over
//! `cpu.cfs_period_us` (`-1`: none).
//!
//! Why not `std::thread::available_parallelism`, which reads affinity and quotas too: it rounds
//! a quota down (1.5 CPUs give 1 worker, where a second one would use the half CPU left; the
//! JDK rounds up too), and it looks for cgroup v2 at `/sys/fs/cgroup` joined with the path of
//! `/proc/self/cgroup` only, so it misses the quota of a container whose own cgroup is mounted
//! there without a cgroup namespace (mountinfo's root is then that path, not `/`).
//!
//! ```ignore
//! // Under `taskset -c 0,1`, in a container of `--cpus=1.5`: 2.
//! let workers = available_cpus();
//! ```

use std::path::Path;

use super::cgroup::{self, CgroupVersion, Controller};
use super::system_root::{ReadError, SystemRoot};

/// The CPUs this process may use: its affinity, its cgroup's quota if lower (rounded up), at
/// least 1.
pub(crate) fn available_cpus() -> usize {
    available_cpus_under(&SystemRoot::host(), affinity_cpus())
}

/// [`available_cpus`] for a process whose affinity allows `affinity` CPUs, its cgroup read
/// under `root`.
pub(crate) fn available_cpus_under(root: &SystemRoot, affinity: usize) -> usize {
    let quota = cpu_quota(root).unwrap_or_else(|e| {
        tracing::warn!(target: "regiment", "the cgroup's CPU quota is unknown, none is assumed: {e}");
        None
    });
    quota
        .map_or(affinity, |q| affinity.min(q.cpus_rounded_up()))
        .max(1)
}

/// The CPUs in this process's affinity mask.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn affinity_cpus() -> usize {
    use nix::sched::{CpuSet, sched_getaffinity};
    use nix::unistd::Pid;
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
            .count(),
        Err(e) => {
            tracing::warn!(target: "regiment", "sched_getaffinity failed ({e}): the CPUs std counts are taken");
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

/// Without `sched_getaffinity`: the CPUs std counts.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn affinity_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A CPU bandwidth quota: `quota_us` of CPU time in every `period_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CpuQuota {
    quota_us: u64,
    period_us: u64,
}

impl CpuQuota {
    /// The CPUs it amounts to, a part of one counting as one.
    fn cpus_rounded_up(self) -> usize {
        usize::try_from(self.quota_us.div_ceil(self.period_us)).unwrap_or(usize::MAX)
    }

    fn is_below(self, other: CpuQuota) -> bool {
        u128::from(self.quota_us) * u128::from(other.period_us)
            < u128::from(other.quota_us) * u128::from(self.period_us)
    }
}

/// The lowest quota along the ancestry of this process's CPU cgroup, if any is set.
fn cpu_quota(root: &SystemRoot) -> Result<Option<CpuQuota>, ReadError> {
    let Some(cgroup) = cgroup::locate(root, Controller::Cpu)? else {
        return Ok(None);
    };
    let mut lowest: Option<CpuQuota> = None;
    for dir in cgroup.ancestry() {
        let quota = match cgroup.version {
            CgroupVersion::V2 => v2_quota(root, dir)?,
            CgroupVersion::V1 => v1_quota(root, dir)?,
        };
        if let Some(quota) = quota
            && lowest.is_none_or(|l| quota.is_below(l))
        {
            lowest = Some(quota);
        }
    }
    Ok(lowest)
}

/// `cpu.max`: `QUOTA PERIOD`, or `max PERIOD` for none.
fn v2_quota(root: &SystemRoot, dir: &Path) -> Result<Option<CpuQuota>, ReadError> {
    let file = dir.join("cpu.max");
    let Some(text) = root.read_if_present(&file)? else {
        return Ok(None);
    };
    let malformed =
        || ReadError::malformed(&file, format!("{:?} is not `QUOTA PERIOD`", text.trim()));
    let mut fields = text.split_whitespace();
    let (Some(quota), Some(period), None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(malformed());
    };
    let period_us: u64 = period.parse().map_err(|_| malformed())?;
    if quota == "max" {
        return Ok(None);
    }
    let quota_us: u64 = quota.parse().map_err(|_| malformed())?;
    if period_us == 0 {
        return Err(malformed());
    }
    Ok(Some(CpuQuota {
        quota_us,
        period_us,
    }))
}

/// `cpu.cfs_quota_us` (`-1` for none) over `cpu.cfs_period_us`.
fn v1_quota(root: &SystemRoot, dir: &Path) -> Result<Option<CpuQuota>, ReadError> {
    let quota_file = dir.join("cpu.cfs_quota_us");
    let Some(quota) = root.read_if_present(&quota_file)? else {
        return Ok(None);
    };
    let quota: i64 = quota.trim().parse().map_err(|_| {
        ReadError::malformed(&quota_file, format!("{:?} is not a number", quota.trim()))
    })?;
    let Ok(quota_us) = u64::try_from(quota) else {
        return Ok(None);
    };
    let period_file = dir.join("cpu.cfs_period_us");
    let period = root.read(&period_file)?;
    let period_us: u64 = period
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            ReadError::malformed(&period_file, format!("{:?} is not a period", period.trim()))
        })?;
    Ok(Some(CpuQuota {
        quota_us,
        period_us,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::fixtures::{copy_of, fixture};

    #[test]
    fn a_v2_quota_of_one_and_a_half_cpus_gives_two() {
        // `docker run --cpus=1.5`: 150000 in every 100000 (docker/docs#5106).
        assert_eq!(available_cpus_under(&fixture("v2-limited"), 8), 2);
        assert_eq!(
            available_cpus_under(&fixture("v2-limited"), 1),
            1,
            "the affinity binds when lower"
        );
    }

    #[test]
    fn no_quota_leaves_the_affinity() {
        assert_eq!(available_cpus_under(&fixture("v2-unlimited"), 8), 8);
        assert_eq!(available_cpus_under(&fixture("v2-kubepods"), 8), 8);
        // This machine's v1 cpu hierarchy: cpu.cfs_quota_us -1.
        assert_eq!(available_cpus_under(&fixture("hybrid"), 2), 2);
    }

    #[test]
    fn a_v1_quota_is_quota_over_period() {
        let copy = copy_of("hybrid");
        std::fs::write(
            copy.path().join("sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
            "150000\n",
        )
        .unwrap();
        assert_eq!(available_cpus_under(&SystemRoot::at(copy.path()), 8), 2);
    }

    #[test]
    fn the_lowest_quota_of_the_ancestry_counts_and_a_part_of_a_cpu_is_one() {
        let copy = copy_of("v2-kubepods");
        let pods = copy.path().join("sys/fs/cgroup/kubepods.slice");
        std::fs::write(pods.join("cpu.max"), "250000 100000\n").unwrap();
        let burstable = pods.join("kubepods-burstable.slice");
        std::fs::write(burstable.join("cpu.max"), "400000 100000\n").unwrap();
        let root = SystemRoot::at(copy.path());
        assert_eq!(available_cpus_under(&root, 8), 3);
        // A fifth of a CPU (measured: CPUQuota=20% is `20000 100000`).
        std::fs::write(burstable.join("cpu.max"), "20000 100000\n").unwrap();
        assert_eq!(available_cpus_under(&root, 8), 1);
    }

    #[test]
    fn a_quota_that_cannot_be_read_is_none_and_said() {
        let copy = copy_of("v2-limited");
        std::fs::write(copy.path().join("sys/fs/cgroup/cpu.max"), "150000\n").unwrap();
        let (cpus, log) = crate::test_support::capture_log(|| {
            available_cpus_under(&SystemRoot::at(copy.path()), 4)
        });
        assert_eq!(cpus, 4);
        assert!(
            log.contains("/sys/fs/cgroup/cpu.max") && log.contains("QUOTA PERIOD"),
            "{log}"
        );
    }

    #[test]
    fn quotas_compare_as_fractions() {
        let q = |quota_us, period_us| CpuQuota {
            quota_us,
            period_us,
        };
        assert!(q(150_000, 100_000).is_below(q(200_000, 100_000)));
        assert!(q(50_000, 50_000).is_below(q(150_000, 100_000)));
        assert!(!q(100_000, 100_000).is_below(q(50_000, 50_000)));
        assert_eq!(q(100_000, 100_000).cpus_rounded_up(), 1);
        assert_eq!(q(100_001, 100_000).cpus_rounded_up(), 2);
    }

    /// This machine: at least one CPU, no more than its affinity allows.
    #[test]
    fn this_machines_cpus_are_counted() {
        let cpus = available_cpus();
        assert!((1..=affinity_cpus()).contains(&cpus), "{cpus}");
    }
}
