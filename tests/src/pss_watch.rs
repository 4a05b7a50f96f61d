//! Watches, from outside, the memory a master and its workers hold together: the sum of their
//! proportional set sizes (`Pss:` of /proc/PID/smaps_rollup, each shared page divided among the
//! processes that map it), read on a thread of its own at a fixed interval, and the largest sum
//! seen.
//!
//! ```no_run
//! use std::time::Duration;
//! use tests::pss_watch::PssWatch;
//!
//! # let master = 1;
//! let watch = PssWatch::start(master, Duration::from_millis(100));
//! // ... load the cluster ...
//! let seen = watch.stop();
//! assert!(seen.max_kb < 200 * 1024, "{seen}");
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::procfs::{children, pss_kb};

/// What a [`PssWatch`] saw.
#[derive(Debug, Clone, Default)]
pub struct PssSeen {
    /// Readings taken.
    pub samples: u64,
    /// The largest sum of PSS over the master and its children, kB.
    pub max_kb: u64,
    /// When the largest sum was read, since the watch started.
    pub max_at: Duration,
    /// The most processes one reading counted (the master included).
    pub most_processes: usize,
    /// The sum at each whole second since the watch started (the first reading of each), kB:
    /// how it moved, for the report.
    pub each_second_kb: Vec<u64>,
}

impl fmt::Display for PssSeen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mb = |kb: u64| kb as f64 / 1024.0;
        write!(
            f,
            "{} readings, max {:.1} MiB at {:.1} s, up to {} processes; each second (MiB):",
            self.samples,
            mb(self.max_kb),
            self.max_at.as_secs_f64(),
            self.most_processes
        )?;
        for kb in &self.each_second_kb {
            write!(f, " {:.0}", mb(*kb))?;
        }
        Ok(())
    }
}

/// A thread reading the PSS of a master and its children until stopped (or dropped).
#[derive(Debug)]
pub struct PssWatch {
    stop: Arc<AtomicBool>,
    /// The largest sum so far, kB, for a test that gives up early once it is too large.
    max_kb: Arc<AtomicU64>,
    thread: Option<JoinHandle<PssSeen>>,
}

impl PssWatch {
    /// Reads `master` and its children every `interval` (the next reading is due `interval`
    /// after the last was due, not after it ended, so slow readings do not stretch it).
    pub fn start(master: u32, interval: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let max_kb = Arc::new(AtomicU64::new(0));
        let max_so_far = max_kb.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut seen = PssSeen::default();
            let mut due = started;
            while !stopped.load(Ordering::Relaxed) {
                // A child gone between the listing and its reading is left out of this sum.
                let Some(master_kb) = pss_kb(master) else {
                    break;
                };
                let read: Vec<u64> = children(master).into_iter().filter_map(pss_kb).collect();
                let sum = master_kb + read.iter().sum::<u64>();
                let at = started.elapsed();
                seen.samples += 1;
                seen.most_processes = seen.most_processes.max(1 + read.len());
                if sum > seen.max_kb {
                    seen.max_kb = sum;
                    seen.max_at = at;
                    max_so_far.store(sum, Ordering::Relaxed);
                }
                if seen.each_second_kb.len() as u64 <= at.as_secs() {
                    seen.each_second_kb.push(sum);
                }
                due += interval;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                } else {
                    // Behind (a loaded machine): the next reading now, and on from there.
                    due = now;
                }
            }
            seen
        });
        Self {
            stop,
            max_kb,
            thread: Some(thread),
        }
    }

    /// The largest sum read so far, kB (0 before the first reading).
    pub fn max_kb(&self) -> u64 {
        self.max_kb.load(Ordering::Relaxed)
    }

    /// Stops the readings and returns what they saw.
    pub fn stop(mut self) -> PssSeen {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("stopped once");
        thread.join().expect("the PSS watch")
    }
}

impl Drop for PssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
