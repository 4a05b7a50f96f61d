//! What the container (the cgroup) this process runs in allows it, read from the kernel's
//! files. Plumbing for the master, not user API.
//!
//! Each reader has a variant that takes a [`SystemRoot`](system_root::SystemRoot), under which
//! `/proc` and the cgroup mounts are read, so that the tests run it on copies of real files
//! (`tests/fixtures/cgroup/`, one directory per case with a `SOURCE.md`).
//!
//! ```ignore
//! let cgroup = cgroup::locate(&SystemRoot::host(), Controller::Memory)?;
//! ```

mod cgroup;
#[cfg(test)]
mod fixtures;
mod membership;
mod mountinfo;
mod system_root;
