//! The machine's memory: `MemTotal` of `/proc/meminfo` (proc_meminfo(5)), what a process has
//! when no cgroup limits it.
//!
//! ```ignore
//! assert_eq!(mem_total("MemTotal:       24683772 kB\nMemFree: 1 kB\n"), Some(25_276_182_528));
//! ```

use std::path::Path;

use super::system_root::{ReadError, SystemRoot};

/// The path of the file, as the process sees it.
pub(crate) const MEMINFO: &str = "/proc/meminfo";

/// The machine's memory in bytes, from `MEMINFO` under `root`.
pub(crate) fn machine_memory(root: &SystemRoot) -> Result<u64, ReadError> {
    let path = Path::new(MEMINFO);
    mem_total(&root.read(path)?)
        .ok_or_else(|| ReadError::malformed(path, "no `MemTotal: N kB` line"))
}

/// `MemTotal` in bytes (the file counts in kibibytes, whatever its `kB` says).
fn mem_total(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let kib = line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_total_in_bytes() {
        // The first lines of this machine's /proc/meminfo.
        let text = "MemTotal:       24683772 kB\nMemFree:         1369388 kB\nMemAvailable:   23148484 kB\n";
        assert_eq!(mem_total(text), Some(24_683_772 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total("MemTotal: lots\n"), None);
    }

    #[test]
    fn this_machines_memory_is_read() {
        if Path::new(MEMINFO).exists() {
            assert!(machine_memory(&SystemRoot::host()).unwrap() > 0);
        }
    }
}
