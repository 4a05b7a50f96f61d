//! The scheduler: one thread that wakes when the next job is due, samples what the due jobs
//! watch, and runs them outside its lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use super::Measure;
use super::readers::{Fresh, Readers};

/// Something the sampler runs at an interval. Implemented by the layers' shared state.
pub(crate) trait Job: Send + Sync {
    /// The measure sampled for this job just before [`Job::run`], if any.
    fn measure(&self) -> Option<Measure>;
    /// Called from the sampler thread (or [`run_now`]), outside the sampler's lock. `bytes`
    /// is the fresh sample of [`Job::measure`] (0 for jobs without a measure, or when it could
    /// not be read).
    fn run(&self, bytes: u64);
    /// True once running the job can change nothing (its replacer has fired): it is then
    /// dropped from the schedule, so that a fired job with a short interval does not wake the
    /// thread for nothing for the rest of the process.
    fn done(&self) -> bool {
        false
    }
}

/// Jobs taken out of the lock to run, each with its fresh sample.
type Due = Vec<(Arc<dyn Job>, u64)>;

/// Which jobs a round takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Those whose time has come: the thread's rounds.
    Due,
    /// All of them, due or not: [`run_now`].
    All,
}

pub(super) struct Entry {
    pub(super) job: Weak<dyn Job>,
    interval: Duration,
    next_due: Instant,
}

pub(super) struct State {
    pub(super) entries: Vec<Entry>,
    readers: Readers,
}

pub(super) struct Sampler {
    state: Mutex<State>,
    /// Last sample of each measure, in bytes; 0 until sampled. What requests read.
    bytes: [AtomicU64; 3],
    thread: OnceLock<Thread>,
}

pub(super) fn sampler() -> &'static Sampler {
    static SAMPLER: OnceLock<Sampler> = OnceLock::new();
    SAMPLER.get_or_init(|| Sampler {
        state: Mutex::new(State {
            entries: Vec::new(),
            readers: Readers::default(),
        }),
        bytes: Default::default(),
        thread: OnceLock::new(),
    })
}

impl Sampler {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A job panicking runs outside the lock, so poisoning can only come from a reader;
        // the state stays usable either way.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Samples `measure` now unless `fresh` has it from this round, stores it and returns it
    /// (0 if it cannot be read). One read can give several measures (smaps_rollup: PSS and
    /// USS); all of them are stored and kept in `fresh`, so the file is read once per round.
    fn sample(&self, readers: &mut Readers, measure: Measure, fresh: &mut Fresh) -> u64 {
        if let Some(bytes) = fresh[measure.index()] {
            return bytes;
        }
        let figures = readers.read(measure);
        for (i, figure) in figures.iter().enumerate() {
            if let Some(bytes) = *figure {
                self.bytes[i].store(bytes, Ordering::Relaxed);
                fresh[i] = Some(bytes);
            }
        }
        *fresh[measure.index()].get_or_insert(0)
    }

    /// Collects the jobs `round` takes at `now`, sampling each needed measure once; returns
    /// them with their sample, and when the next one is due.
    fn due(&self, now: Instant, round: Round) -> (Due, Option<Instant>) {
        // Upgraded to ask `done`; dropped after the lock, as `run_jobs` drops its own: the last
        // reference to a layer may be one of these, and its drop (a criterion, a replacer's
        // callback: user code) may build a layer, which registers, which locks.
        let mut held: Vec<Arc<dyn Job>> = Vec::new();
        let mut state = self.lock();
        let State { entries, readers } = &mut *state;
        // Dropped jobs (every layer and service gone: in a master, once the app is dropped)
        // and fired ones leave the schedule; with none left the thread parks until a
        // registration.
        entries.retain(|e| match e.job.upgrade() {
            Some(job) => {
                let live = !job.done();
                held.push(job);
                live
            }
            None => false,
        });
        let mut fresh: Fresh = [None; 3];
        let mut due = Vec::new();
        for entry in entries.iter_mut() {
            if round == Round::Due && entry.next_due > now {
                continue;
            }
            // Missed ticks are skipped, not caught up.
            entry.next_due = now + entry.interval;
            let Some(job) = entry.job.upgrade() else {
                continue;
            };
            let bytes = match job.measure() {
                Some(m) => self.sample(readers, m, &mut fresh),
                None => 0,
            };
            due.push((job, bytes));
        }
        let next = entries.iter().map(|e| e.next_due).min();
        drop(state);
        drop(held);
        (due, next)
    }

    fn run_loop(&self) {
        loop {
            let (due, next) = self.due(Instant::now(), Round::Due);
            run_jobs(due);
            match next {
                Some(at) => thread::park_timeout(at.saturating_duration_since(Instant::now())),
                None => thread::park(),
            }
        }
    }
}

/// Runs `due` outside the lock: jobs fire replacers, whose callbacks are user code that may
/// well build another layer (and so register with the sampler).
fn run_jobs(due: Due) {
    for (job, bytes) in &due {
        // A criterion's on_tick (user code) that panics must not end the thread that samples
        // memory for every layer of the process, nor break a caller of run_now.
        let run = std::panic::AssertUnwindSafe(|| job.run(*bytes));
        if std::panic::catch_unwind(run).is_err() {
            tracing::error!("regiment-tower: a criterion panicked in its on_tick");
        }
    }
    // The last references to dropped layers may go here: their drop runs unlocked too.
    drop(due);
}

/// Registers `job` to run every `interval`, starting the sampler thread if it is not running.
/// A job with a measure gets that measure sampled now, in the caller's thread, so requests
/// compare against a real figure from the first one on.
pub(crate) fn register(job: Weak<dyn Job>, measure: Option<Measure>, interval: Duration) {
    let s = sampler();
    let interval = interval.max(Duration::from_millis(1));
    {
        let mut state = s.lock();
        if let Some(m) = measure {
            s.sample(&mut state.readers, m, &mut [None; 3]);
        }
        state.entries.push(Entry {
            job,
            interval,
            next_due: Instant::now() + interval,
        });
    }
    let mut started = false;
    let thread = s.thread.get_or_init(|| {
        started = true;
        match thread::Builder::new()
            .name("regiment-sampler".into())
            .spawn(|| sampler().run_loop())
        {
            Ok(handle) => handle.thread().clone(),
            Err(error) => {
                tracing::warn!(%error, "regiment-tower: cannot start the sampler thread; memory is sampled at registration only");
                thread::current()
            }
        }
    });
    if !started {
        // It may be sleeping for longer than the new job's interval: let it recompute.
        thread.unpark();
    }
}

/// The last sampled figure of `measure` in bytes, or `None` if no layer watches it yet (or it
/// cannot be read on this system). One relaxed atomic load: what the layers do per request.
///
/// ```
/// use regiment_tower::{Measure, MemoryFootprint, sampler};
/// use tower::{Layer, service_fn};
///
/// let _svc = MemoryFootprint::mb(750).layer(service_fn(|()| async { Ok::<_, ()>(()) }));
/// # #[cfg(target_os = "linux")]
/// assert!(sampler::current(Measure::Rss).unwrap() > 0);
/// ```
pub fn current(measure: Measure) -> Option<u64> {
    match sampler().bytes[measure.index()].load(Ordering::Relaxed) {
        0 => None,
        n => Some(n),
    }
}

/// Where the last sample of `measure` is stored: a layer keeps it and loads it per request.
pub(crate) fn latest_bytes(measure: Measure) -> &'static AtomicU64 {
    &sampler().bytes[measure.index()]
}

/// Whether a job at `job` (its `Arc`'s pointer) is in the schedule.
#[cfg(test)]
pub(crate) fn is_scheduled<T: ?Sized>(job: *const T) -> bool {
    sampler()
        .lock()
        .entries
        .iter()
        .any(|e| std::ptr::addr_eq(e.job.as_ptr(), job))
}

/// Runs every registered job now, in the calling thread, whether due or not: each watched
/// measure is sampled once, memory watches are checked, criteria are ticked. The thread's own
/// schedule restarts from now.
///
/// For tests, and for programs that just did something known to grow memory and want the
/// check at once rather than at the next sample.
///
/// ```
/// regiment_tower::sampler::run_now();
/// ```
pub fn run_now() {
    let (due, _) = sampler().due(Instant::now(), Round::All);
    run_jobs(due);
}
