//! The background sampler: memory measured off the request path, time-based criteria ticked.
//!
//! One thread per process (`regiment-sampler`), a plain [`std::thread`] so the layers work
//! under any runtime or none. The first [`MemoryFootprint`](crate::MemoryFootprint) or
//! [`CriterionLayer`](crate::CriterionLayer) to wrap a service starts it; it then sleeps
//! until the next job is due:
//!
//! - each memory watch (one per `MemoryFootprint` layer) at its interval (default 1 s for RSS,
//!   10 s for PSS and USS: [`Measure::default_interval`]): the measure it
//!   watches ([`Measure::Rss`], [`Measure::Pss`] or [`Measure::Uss`]) is sampled at most once
//!   per wake-up, however many watches share it, so each measure is read at the shortest
//!   interval asked for it. The figure is stored in an atomic that the layers read on each
//!   request, and the watch is checked against its threshold there and then, so an idle
//!   worker that grows is replaced too, without waiting for a request;
//! - each custom criterion's [`on_tick`](crate::Criterion::on_tick) at its
//!   [`tick_interval`](crate::Criterion::tick_interval) (that is how [`MaxAge`](crate::MaxAge)
//!   fires in a worker that gets no traffic).
//!
//! Jobs are held weakly: once every layer and service of a watch is dropped, it stops being
//! sampled. A job whose replacer has fired is dropped from the schedule too (the worker is on
//! its way out; checking again could change nothing). With no job the thread sleeps until one
//! is registered.
//!
//! How the figures are read: on Linux, RSS from a kept-open `/proc/self/statm` (one `pread`,
//! about two microseconds) and PSS/USS from a kept-open `/proc/self/smaps_rollup` (one `pread`
//! for both, which walks the page tables: 5 ms with 256 MiB resident); elsewhere RSS from
//! `sysinfo`, and PSS/USS are not available (a warning is logged once and such a watch never
//! fires).
//! `BENCHMARKS.md` at the workspace root has the measured costs.
//!
//! ```
//! use regiment_tower::sampler::{self, Measure};
//!
//! // Samples every registered measure now (none here) and runs the due checks.
//! sampler::run_now();
//! // Reads what the sampler stores: None until a layer watching RSS exists.
//! let _rss: Option<u64> = sampler::current(Measure::Rss);
//! # #[cfg(target_os = "linux")] {
//! let rollup = sampler::SmapsRollup::open()?.read()?;
//! assert!(rollup.rss >= rollup.uss);
//! # }
//! # Ok::<(), std::io::Error>(())
//! ```

mod measure;
mod readers;
mod schedule;
mod smaps_rollup;
#[cfg(any(not(target_os = "linux"), test))]
mod sysinfo_rss;
#[cfg(test)]
mod tests;

pub use measure::{DEFAULT_INTERVAL, DEFAULT_ROLLUP_INTERVAL, Measure};
pub(crate) use schedule::{Job, latest_bytes, register};
pub use schedule::{current, run_now};
pub use smaps_rollup::Rollup;
#[cfg(target_os = "linux")]
pub use smaps_rollup::SmapsRollup;

#[cfg(test)]
pub(crate) use schedule::is_scheduled;
