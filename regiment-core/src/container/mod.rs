//! What the container (the cgroup) this process runs in allows it, read from the kernel's
//! files: the memory limit that applies ([`memory_limit`]). Plumbing for the master, not user
//! API.
//!
//! Each reader has a variant that takes a [`SystemRoot`](system_root::SystemRoot), under which
//! `/proc` and the cgroup mounts are read, so that the tests run it on copies of real files
//! (`tests/fixtures/cgroup/`, one directory per case with a `SOURCE.md`).
//!
//! ```ignore
//! let limit = container::memory_limit();
//! tracing::info!("{} bytes, from {}", limit.bytes, limit.source);
//! ```

mod cgroup;
#[cfg(test)]
mod fixtures;
mod meminfo;
mod membership;
mod memory_limit;
mod mountinfo;
mod system_root;

// Read once the memory budget (issue 24) is built: the expectation fails the build then, so
// that it goes.
#[expect(unused_imports, reason = "the memory budget will read the limit")]
pub(crate) use memory_limit::{LimitSource, MemoryLimit, memory_limit};
