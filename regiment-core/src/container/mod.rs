//! What the container (the cgroup) this process runs in allows it, read from the kernel's
//! files: the memory limit that applies ([`memory_limit`]), the OOM kills counted in its
//! cgroup ([`oom_kills`]), and the CPUs it may use ([`available_cpus`], the default number of
//! workers). Plumbing for the master, not user API.
//!
//! Each reader has a variant that takes a [`SystemRoot`](system_root::SystemRoot), under which
//! `/proc` and the cgroup mounts are read, so that the tests run it on copies of real files
//! (`tests/fixtures/cgroup/`, one directory per case with a `SOURCE.md`).
//!
//! ```ignore
//! let limit = container::memory_limit();
//! tracing::info!("{} bytes, from {}", limit.bytes, limit.source);
//! let before = container::oom_kills();
//! let workers = container::available_cpus();
//! ```

mod cgroup;
mod cpus;
#[cfg(test)]
pub(crate) mod fixtures;
mod membership;
mod meminfo;
mod memory_limit;
mod mountinfo;
mod oom;
mod system_root;

pub(crate) use cpus::available_cpus;
#[cfg(test)]
pub(crate) use memory_limit::{LimitSource, memory_limit_under};
pub(crate) use memory_limit::{MemoryLimit, memory_limit};
pub(crate) use oom::oom_kills;
// The driver's tests read the count of a copy of a real cgroup tree.
#[cfg(test)]
pub(crate) use {fixtures::copy_of, oom::oom_kills_under, system_root::SystemRoot};
