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

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// The default interval between two samples of RSS ([`Measure::default_interval`]).
///
/// ```
/// use regiment_tower::{MemoryFootprint, sampler::DEFAULT_INTERVAL};
/// assert_eq!(MemoryFootprint::mb(750).get_interval(), DEFAULT_INTERVAL);
/// ```
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// The default interval between two samples of PSS or USS ([`Measure::default_interval`]).
///
/// ```
/// use regiment_tower::{Measure, MemoryFootprint, sampler::DEFAULT_ROLLUP_INTERVAL};
/// assert_eq!(MemoryFootprint::mb(750).measure(Measure::Pss).get_interval(), DEFAULT_ROLLUP_INTERVAL);
/// ```
pub const DEFAULT_ROLLUP_INTERVAL: Duration = Duration::from_secs(10);

/// Which memory figure a [`MemoryFootprint`](crate::MemoryFootprint) compares.
///
/// ```
/// use regiment_tower::{Measure, MemoryFootprint};
/// let layer = MemoryFootprint::mb(750).measure(Measure::Pss);
/// assert_eq!(layer.get_measure(), Measure::Pss);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Measure {
    /// Resident set size: every page of the process in RAM, its shares of shared libraries
    /// and of pages shared copy-on-write with other processes counted in full. What `top`
    /// shows; over-counts memory that several workers share.
    #[default]
    Rss,
    /// Proportional set size (Linux): each shared page counted as its size divided by the
    /// number of processes that map it. The sum over all workers is what they really use.
    Pss,
    /// Unique set size (Linux): private pages only (`Private_Clean + Private_Dirty`), what
    /// the kernel would free if this process exited. The best measure of a leak.
    Uss,
}

impl Measure {
    fn index(self) -> usize {
        self as usize
    }

    /// The interval a [`MemoryFootprint`](crate::MemoryFootprint) samples at unless told
    /// otherwise: [`DEFAULT_INTERVAL`] (1 s) for RSS, a `pread` of about 2 µs;
    /// [`DEFAULT_ROLLUP_INTERVAL`] (10 s) for PSS and USS, whose `smaps_rollup` read walks the
    /// page tables and costs about 20 ms per GiB resident on the reference machine
    /// (`BENCHMARKS.md`): 2% of a core at 1 s for a 1 GiB worker, 0.2% at 10 s.
    ///
    /// ```
    /// use regiment_tower::{Measure, sampler};
    /// assert_eq!(Measure::Rss.default_interval(), sampler::DEFAULT_INTERVAL);
    /// assert_eq!(Measure::Uss.default_interval(), sampler::DEFAULT_ROLLUP_INTERVAL);
    /// ```
    pub fn default_interval(self) -> Duration {
        match self {
            Measure::Rss => DEFAULT_INTERVAL,
            Measure::Pss | Measure::Uss => DEFAULT_ROLLUP_INTERVAL,
        }
    }

    /// The lower-case name used in reasons: `rss`, `pss`, `uss`.
    ///
    /// ```
    /// assert_eq!(regiment_tower::Measure::Uss.name(), "uss");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Measure::Rss => "rss",
            Measure::Pss => "pss",
            Measure::Uss => "uss",
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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

/// The figures read in this round, by [`Measure`] index.
type Fresh = [Option<u64>; 3];

struct Entry {
    job: Weak<dyn Job>,
    interval: Duration,
    next_due: Instant,
}

struct State {
    entries: Vec<Entry>,
    readers: Readers,
}

struct Sampler {
    state: Mutex<State>,
    /// Last sample of each measure, in bytes; 0 until sampled. What requests read.
    bytes: [AtomicU64; 3],
    thread: OnceLock<Thread>,
}

fn sampler() -> &'static Sampler {
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
    fn lock(&self) -> MutexGuard<'_, State> {
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

    /// Collects the jobs due at `now` (all of them if `force`), sampling each needed measure
    /// once; returns them with their sample, and when the next one is due.
    fn due(&self, now: Instant, force: bool) -> (Due, Option<Instant>) {
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
            if !force && entry.next_due > now {
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
            let (due, next) = self.due(Instant::now(), false);
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

pub(crate) fn slot(measure: Measure) -> &'static AtomicU64 {
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
    let (due, _) = sampler().due(Instant::now(), true);
    run_jobs(due);
}

/// The readers, opened on first use and kept open. A reader that fails to open is not retried
/// (the file will not appear later) and is reported once.
#[derive(Default)]
struct Readers {
    #[cfg(target_os = "linux")]
    statm: Option<Option<regiment_core::plumbing::Statm>>,
    #[cfg(target_os = "linux")]
    smaps: Option<Option<SmapsRollup>>,
    #[cfg(not(target_os = "linux"))]
    sysinfo: Option<SysinfoRss>,
    warned: [bool; 3],
}

impl Readers {
    /// Reads `measure`, and whatever else the same read gives, by [`Measure`] index.
    fn read(&mut self, measure: Measure) -> Fresh {
        match self.read_inner(measure) {
            Ok(figures) => figures,
            Err(error) => {
                if !std::mem::replace(&mut self.warned[measure.index()], true) {
                    tracing::warn!(%measure, %error, "regiment-tower: cannot measure memory; a MemoryFootprint on this measure will not fire");
                }
                [None; 3]
            }
        }
    }

    #[cfg(target_os = "linux")]
    fn read_inner(&mut self, measure: Measure) -> io::Result<Fresh> {
        fn gone() -> io::Error {
            io::Error::new(io::ErrorKind::NotFound, "could not be opened earlier")
        }
        match measure {
            Measure::Rss => {
                let statm = self.statm.get_or_insert_with(|| {
                    regiment_core::plumbing::Statm::open()
                        .map_err(|e| tracing::warn!(error = %e, "regiment-tower: cannot open /proc/self/statm"))
                        .ok()
                });
                let rss = statm.as_mut().ok_or_else(gone)?.resident_bytes()?;
                Ok([Some(rss), None, None])
            }
            Measure::Pss | Measure::Uss => {
                let smaps = self.smaps.get_or_insert_with(|| {
                    SmapsRollup::open()
                        .map_err(|e| tracing::warn!(error = %e, "regiment-tower: cannot open /proc/self/smaps_rollup (Linux 4.14+)"))
                        .ok()
                });
                let rollup = smaps.as_mut().ok_or_else(gone)?.read()?;
                // RSS stays statm's alone, so that its figure has one source.
                Ok([None, Some(rollup.pss), Some(rollup.uss)])
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn read_inner(&mut self, measure: Measure) -> io::Result<Fresh> {
        match measure {
            Measure::Rss => Ok([
                Some(self.sysinfo.get_or_insert_with(SysinfoRss::new).read()?),
                None,
                None,
            ]),
            Measure::Pss | Measure::Uss => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "PSS and USS are measured on Linux only",
            )),
        }
    }
}

/// One reading of `/proc/self/smaps_rollup`, in bytes.
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// let r: regiment_tower::sampler::Rollup = regiment_tower::sampler::SmapsRollup::open()?.read()?;
/// assert!(r.uss <= r.pss && r.pss <= r.rss);
/// # }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rollup {
    /// Resident set size (`Rss`).
    pub rss: u64,
    /// Proportional set size (`Pss`).
    pub pss: u64,
    /// Unique set size: `Private_Clean + Private_Dirty`.
    pub uss: u64,
}

/// A kept-open `/proc/self/smaps_rollup` (Linux 4.14+), re-read with `pread` at offset 0.
///
/// The kernel builds the figures on each read by walking every mapping's page tables, so a
/// read costs more than `statm` (see `BENCHMARKS.md`); keeping the file open saves the path
/// walk and the `open`/`close`.
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// let mut smaps = regiment_tower::sampler::SmapsRollup::open()?;
/// let r = smaps.read()?;
/// assert!(r.rss > 0 && r.pss <= r.rss && r.uss <= r.pss);
/// # }
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub struct SmapsRollup {
    file: std::fs::File,
    // About 1 KiB of text on current kernels; room for new fields.
    buf: Box<[u8; 4096]>,
}

#[cfg(target_os = "linux")]
impl SmapsRollup {
    /// Opens `/proc/self/smaps_rollup`.
    ///
    /// ```
    /// let _smaps = regiment_tower::sampler::SmapsRollup::open()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open() -> io::Result<Self> {
        Ok(Self {
            file: std::fs::File::open("/proc/self/smaps_rollup")?,
            buf: Box::new([0; 4096]),
        })
    }

    /// Reads the figures now (one `pread` at offset 0).
    ///
    /// ```
    /// let mut smaps = regiment_tower::sampler::SmapsRollup::open()?;
    /// assert!(smaps.read()?.pss > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read(&mut self) -> io::Result<Rollup> {
        use std::os::unix::fs::FileExt;
        let mut len = 0;
        // One pread returns the whole text in practice; loop in case a kernel splits it.
        while len < self.buf.len() {
            let n = self.file.read_at(&mut self.buf[len..], len as u64)?;
            if n == 0 {
                break;
            }
            len += n;
            if parse_rollup(&self.buf[..len]).is_some() && self.buf[len - 1] == b'\n' {
                break;
            }
        }
        parse_rollup(&self.buf[..len]).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "unexpected smaps_rollup format")
        })
    }
}

/// Parses the `Rss`, `Pss`, `Private_Clean` and `Private_Dirty` lines (values in kB).
#[cfg(any(target_os = "linux", test))]
fn parse_rollup(text: &[u8]) -> Option<Rollup> {
    let (mut rss, mut pss, mut clean, mut dirty) = (None, None, None, None);
    for line in text.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let field = match &line[..colon] {
            b"Rss" => &mut rss,
            b"Pss" => &mut pss,
            b"Private_Clean" => &mut clean,
            b"Private_Dirty" => &mut dirty,
            _ => continue,
        };
        let kb = std::str::from_utf8(&line[colon + 1..])
            .ok()?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse::<u64>()
            .ok()?;
        *field = Some(kb * 1024);
    }
    Some(Rollup {
        rss: rss?,
        pss: pss?,
        uss: clean? + dirty?,
    })
}

/// RSS through sysinfo: the portable path, used where there is no `/proc`.
#[cfg(any(not(target_os = "linux"), test))]
struct SysinfoRss {
    system: sysinfo::System,
    pid: Option<sysinfo::Pid>,
}

#[cfg(any(not(target_os = "linux"), test))]
impl SysinfoRss {
    fn new() -> Self {
        Self {
            system: sysinfo::System::new(),
            pid: sysinfo::get_current_pid().ok(),
        }
    }

    fn read(&mut self) -> io::Result<u64> {
        let pid = self
            .pid
            .ok_or_else(|| io::Error::other("sysinfo: no pid for this process"))?;
        self.system.refresh_processes_specifics(
            sysinfo::ProcessesToUpdate::Some(&[pid]),
            false,
            sysinfo::ProcessRefreshKind::nothing().with_memory(),
        );
        self.system
            .process(pid)
            .map(|p| p.memory())
            .filter(|b| *b > 0)
            .ok_or_else(|| io::Error::other("sysinfo: this process not found"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::wait_until;
    use std::sync::atomic::AtomicUsize;

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
}
