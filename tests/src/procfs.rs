//! What `/proc` tells about a process the tests started (its resident and proportional memory,
//! its state, its children: regiment-bench's readers), and its limit on open descriptors (read
//! and changed with `prlimit(2)`).

// Raw descriptors and libc calls of a test harness, each under a SAFETY comment.
#![allow(unsafe_code)]

use std::io;

// What /proc tells: regiment-bench's readers, one copy for the benchmarks and the tests.
pub use regiment_bench::procfs::{children, pss_kb, rss_kb, state};

/// Sets the soft limit on open descriptors (`RLIMIT_NOFILE`) of `pid` to `soft`, keeping its
/// hard limit; returns the soft limit it had.
pub fn set_nofile_soft_limit(pid: u32, soft: u64) -> io::Result<u64> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a null new limit only reads; `old` is a valid rlimit to write to.
    if unsafe { libc::prlimit(pid as i32, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let new = libc::rlimit {
        rlim_cur: soft,
        rlim_max: old.rlim_max,
    };
    // SAFETY: `new` is a valid rlimit to read; the old one is not asked for.
    if unsafe { libc::prlimit(pid as i32, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(old.rlim_cur)
}
