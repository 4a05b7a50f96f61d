use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::schedule::sampler;
use super::smaps_rollup::{Rollup, parse_rollup};
use super::{Job, Measure, current, register, run_now};
#[cfg(target_os = "linux")]
use super::{smaps_rollup::SmapsRollup, sysinfo_rss::SysinfoRss};
use crate::test_support::wait_until;

const SAMPLE: &str =
    "55e0d8a5f000-7ffd0b1f2000 ---p 00000000 00:00 0                          [rollup]
Rss:               12000 kB
Pss:                9000 kB
Pss_Dirty:          5000 kB
Pss_Anon:           5000 kB
Shared_Clean:       4000 kB
Shared_Dirty:          0 kB
Private_Clean:      1000 kB
Private_Dirty:      7000 kB
Referenced:        12000 kB
Anonymous:          7000 kB
Swap:                  0 kB
";

#[test]
fn parses_smaps_rollup() {
    assert_eq!(
        parse_rollup(SAMPLE.as_bytes()),
        Some(Rollup {
            rss: 12000 * 1024,
            pss: 9000 * 1024,
            uss: 8000 * 1024,
        })
    );
    // A field missing (or cut short) is an error, never a zero that would hide a leak.
    assert_eq!(parse_rollup(&SAMPLE.as_bytes()[..120]), None);
    assert_eq!(parse_rollup(b"Rss: 12 MB\nPss: 1 kB\n"), None);
}

#[cfg(target_os = "linux")]
#[test]
fn the_three_methods_agree_on_this_process() {
    let _serial = crate::test_support::memory_lock();
    let mut statm = regiment_core::plumbing::Statm::open().unwrap();
    let rollup = SmapsRollup::open().unwrap().read().unwrap();
    let statm_rss = statm.resident_bytes().unwrap();
    let sysinfo_rss = SysinfoRss::new().read().unwrap();
    assert!(rollup.uss > 0 && rollup.uss <= rollup.pss && rollup.pss <= rollup.rss);
    // Read moments apart: equal within 16 MiB (other tests run alongside).
    for other in [statm_rss, sysinfo_rss] {
        assert!(
            rollup.rss.abs_diff(other) < 16 << 20,
            "{} vs {other}",
            rollup.rss
        );
    }
}

struct Counting {
    runs: AtomicUsize,
    last: AtomicU64,
    measure: Option<Measure>,
}

impl Job for Counting {
    fn measure(&self) -> Option<Measure> {
        self.measure
    }
    fn run(&self, bytes: u64) {
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.last.store(bytes, Ordering::Relaxed);
    }
}

#[test]
fn run_now_runs_live_jobs_with_a_fresh_sample_and_forgets_dropped_ones() {
    let _serial = crate::test_support::memory_lock();
    let job = Arc::new(Counting {
        runs: AtomicUsize::new(0),
        last: AtomicU64::new(0),
        measure: Some(Measure::Rss),
    });
    let weak: Weak<dyn Job> = Arc::downgrade(&job) as Weak<dyn Job>;
    // An hour: the thread never runs it during the test, only run_now does.
    register(weak, Some(Measure::Rss), Duration::from_secs(3600));
    // Registration sampled RSS already, so a first request sees a real figure.
    assert!(current(Measure::Rss).is_some_and(|b| b > 1 << 20));
    assert_eq!(job.runs.load(Ordering::Relaxed), 0);
    run_now();
    assert_eq!(job.runs.load(Ordering::Relaxed), 1);
    assert!(job.last.load(Ordering::Relaxed) > 1 << 20);
    let weak_job = Arc::downgrade(&job);
    drop(job);
    run_now();
    assert!(weak_job.upgrade().is_none());
    let live = sampler()
        .lock()
        .entries
        .iter()
        .filter(|e| std::ptr::addr_eq(e.job.as_ptr(), weak_job.as_ptr()))
        .count();
    assert_eq!(live, 0, "dropped jobs are pruned");
}

struct PanicsOnce(std::sync::atomic::AtomicBool);

impl Job for PanicsOnce {
    fn measure(&self) -> Option<Measure> {
        None
    }
    fn run(&self, _bytes: u64) {
        if !self.0.swap(true, Ordering::Relaxed) {
            panic!("a criterion that panics, on purpose");
        }
    }
}

#[test]
fn a_panicking_job_does_not_stop_the_thread() {
    let bad = Arc::new(PanicsOnce(Default::default()));
    register(
        Arc::downgrade(&bad) as Weak<dyn Job>,
        None,
        Duration::from_millis(1),
    );
    wait_until("the sampler thread ran the job", || {
        bad.0.load(Ordering::Relaxed)
    });
    // Jobs registered after the panic still run: the thread survived it.
    let good = Arc::new(Counting {
        runs: AtomicUsize::new(0),
        last: AtomicU64::new(0),
        measure: None,
    });
    register(
        Arc::downgrade(&good) as Weak<dyn Job>,
        None,
        Duration::from_millis(1),
    );
    wait_until(
        "the sampler thread, past the panic, ran a later job",
        || good.runs.load(Ordering::Relaxed) >= 2,
    );
}

#[test]
fn the_sampler_thread_runs_jobs_on_its_own() {
    let job = Arc::new(Counting {
        runs: AtomicUsize::new(0),
        last: AtomicU64::new(0),
        measure: None,
    });
    register(
        Arc::downgrade(&job) as Weak<dyn Job>,
        None,
        Duration::from_millis(5),
    );
    wait_until("the sampler thread ran the job three times", || {
        job.runs.load(Ordering::Relaxed) >= 3
    });
}
