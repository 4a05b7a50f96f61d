//! The signal that makes a thread record its own stack, and asking one thread for it.
//!
//! One request at a time lives in [`REQUEST`]: the thread asked, and the raw addresses of its
//! frames. Its state word says who may write it: the capturing thread asks (`ASKED` with the
//! thread's id), the handler of that thread claims it (`WRITING`), records, and hands it back
//! (`DONE`). A handler that comes late (a thread given up on, its signal delivered later) finds
//! the request asked of another thread, or not asked at all, and leaves it alone; one caught
//! writing when the capturing thread gives up makes that request lost for good: it is leaked
//! (never freed, the late handler may still write into it) and a fresh one takes its place.

use std::ffi::c_int;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// The raw frames recorded per thread: [`super::MAX_FRAMES`] and the handler's own frames above
/// the code it interrupted (the walk itself, the handler, signal-hook-registry's, the trampoline).
const MAX_RAW: usize = super::MAX_FRAMES + 32;

/// The signal regiment reserves in its workers to ask a thread for its stack: `SIGRTMIN + 4`
/// (the C library keeps the first real-time signals for itself; `SIGRTMIN()` counts past them).
pub(super) fn stack_signal() -> c_int {
    libc::SIGRTMIN() + 4
}

/// A thread's stack as its handler recorded it: return addresses, innermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawStack {
    /// The addresses, innermost first, the capture's own frames included.
    pub(super) addresses: Vec<usize>,
    /// Where the thread's own code begins in `addresses`: past the signal trampoline, or past
    /// [`super::capture`] for the capturing thread (0 where it was not found).
    pub(super) first: usize,
}

impl RawStack {
    /// The addresses of the code the thread was running, innermost first.
    pub(super) fn own(&self) -> &[usize] {
        &self.addresses[self.first..]
    }
}

/// What a thread asked for its stack did.
#[derive(Debug)]
pub(super) enum Reply {
    /// It recorded it.
    Stack(RawStack),
    /// It did not by the time given (or the signal could not be sent).
    NotInTime,
    /// It had exited.
    Gone,
}

/// The request of the moment (see the module's doc); null until the first.
static REQUEST: AtomicPtr<Request> = AtomicPtr::new(std::ptr::null_mut());
/// One request at a time: two captures at once (two threads) take turns thread by thread.
static ASKING: Mutex<()> = Mutex::new(());

const IDLE: u64 = 0;
const ASKED: u64 = 1 << 32;
const WRITING: u64 = 2 << 32;
const DONE: u64 = 3 << 32;

struct Request {
    /// `IDLE`, or `ASKED`, `WRITING` or `DONE` with the thread's id in the low 32 bits.
    state: AtomicU64,
    len: AtomicUsize,
    addresses: [AtomicUsize; MAX_RAW],
}

impl Request {
    /// A request that stays allocated for good (see the module's doc).
    fn leaked() -> &'static Request {
        Box::leak(Box::new(Request {
            state: AtomicU64::new(IDLE),
            len: AtomicUsize::new(0),
            addresses: [const { AtomicUsize::new(0) }; MAX_RAW],
        }))
    }

    fn read(&self) -> Vec<usize> {
        let len = self.len.load(Ordering::Relaxed).min(MAX_RAW);
        self.addresses[..len]
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect()
    }
}

/// What installing the handler gave: the signal trampoline's address (the handler's return
/// address, where the interrupted code's frames begin), 0 when the C library does not say.
#[derive(Debug, Clone, Copy)]
struct Installed {
    trampoline: usize,
}

/// Installs the handler the first time; `None` if it could not be installed (logged once).
fn installed() -> Option<Installed> {
    static INSTALLED: OnceLock<Option<Installed>> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let signal = stack_signal();
        // SAFETY: the action only reads atomics, calls gettid (async-signal-safe) and walks
        // the stack without a lock (see the module doc of `stacks` for why that risk is
        // taken); it allocates nothing. `_unchecked`: real-time signals are not in
        // signal-hook-registry's FORBIDDEN list anyway, nothing is bypassed.
        let registered = unsafe { signal_hook_registry::register_unchecked(signal, |_| record()) };
        if let Err(error) = registered {
            tracing::warn!(%error, signal, "thread stacks unavailable: the signal handler could not be installed");
            return None;
        }
        // SAFETY: a null new action only reads the current one into `current`, which is a
        // plain C struct for which all zeroes is a valid value.
        let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
        let read = unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) };
        let trampoline = match read {
            0 => current.sa_restorer.map_or(0, |f| f as usize),
            _ => 0,
        };
        Some(Installed { trampoline })
    })
}

/// The handler's action: records the interrupted thread's stack if it is the one asked.
fn record() {
    let request = REQUEST.load(Ordering::Acquire);
    if request.is_null() {
        return;
    }
    // SAFETY: requests are never freed (see the module's doc).
    let request = unsafe { &*request };
    let tid = u64::from(current_tid());
    if request
        .state
        .compare_exchange(
            ASKED | tid,
            WRITING | tid,
            Ordering::Acquire,
            Ordering::Relaxed,
        )
        .is_err()
    {
        return; // asked of another thread, or given up on
    }
    let mut len = 0;
    // SAFETY: the crate's lock (taken by `trace`) serialises the platforms whose unwinder is not
    // thread-safe (Windows' dbghelp); on Linux `_Unwind_Backtrace` is. Taking it here could
    // deadlock a thread interrupted while it held it. The walk allocates nothing, and the
    // callback stops before `len` passes the array (no panic in the handler).
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            request.addresses[len].store(frame.ip() as usize, Ordering::Relaxed);
            len += 1;
            len < MAX_RAW
        });
    }
    request.len.store(len, Ordering::Relaxed);
    request.state.store(DONE | tid, Ordering::Release);
}

/// The calling thread's id.
pub(super) fn current_tid() -> u32 {
    // SAFETY: gettid has no preconditions; it is async-signal-safe.
    let tid = unsafe { libc::gettid() };
    tid as u32
}

/// The calling thread's own stack, from the frame of its caller's caller: `below` is the
/// address of the function whose frame and those inside it are left out.
#[inline(never)]
pub(super) fn own_stack(below: usize) -> RawStack {
    let mut addresses = Vec::with_capacity(MAX_RAW);
    let mut first = 0;
    backtrace::trace(|frame| {
        addresses.push(frame.ip() as usize);
        if frame.symbol_address() as usize == below {
            first = addresses.len();
        }
        addresses.len() < MAX_RAW
    });
    RawStack { addresses, first }
}

/// Asks thread `tid` of this process for its stack, waiting for it until `until`.
pub(super) fn ask(tid: u32, until: Instant) -> Reply {
    let Some(installed) = installed() else {
        return Reply::NotInTime;
    };
    let _turn = ASKING.lock().unwrap_or_else(PoisonError::into_inner);
    let mut request = REQUEST.load(Ordering::Acquire);
    if request.is_null() {
        request = std::ptr::from_ref(Request::leaked()).cast_mut();
        REQUEST.store(request, Ordering::Release);
    }
    // SAFETY: requests are never freed.
    let request = unsafe { &*request };
    let tid64 = u64::from(tid);
    request.len.store(0, Ordering::Relaxed);
    request.state.store(ASKED | tid64, Ordering::Release);

    // SAFETY: tgkill with this process's id: it can only reach one of our own threads, whose
    // handler was installed above. A thread that exited (ESRCH) is skipped.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            std::process::id() as libc::pid_t,
            tid as libc::pid_t,
            stack_signal(),
        )
    };
    let gone = sent != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    if sent == 0 {
        wait_until_done(request, tid64, until);
    }
    match request
        .state
        .compare_exchange(ASKED | tid64, IDLE, Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) if gone => Reply::Gone,
        Ok(_) => Reply::NotInTime,
        Err(state) if state == DONE | tid64 => {
            let addresses = request.read();
            request.state.store(IDLE, Ordering::Release);
            let first = match installed.trampoline {
                0 => 0,
                trampoline => addresses
                    .iter()
                    .position(|&a| a == trampoline)
                    .map_or(0, |i| i + 1),
            };
            Reply::Stack(RawStack { addresses, first })
        }
        Err(_) => {
            // Caught writing: that request is the late handler's for good (see the module's doc).
            REQUEST.store(
                std::ptr::from_ref(Request::leaked()).cast_mut(),
                Ordering::Release,
            );
            Reply::NotInTime
        }
    }
}

/// Waits until the request is done or `until` passes: yields first (an answer takes some
/// microseconds), then sleeps briefly, not to take a CPU from the threads it waits for.
fn wait_until_done(request: &Request, tid: u64, until: Instant) {
    let mut polls = 0u32;
    while request.state.load(Ordering::Acquire) != DONE | tid && Instant::now() < until {
        if polls < 100 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(
                Duration::from_micros(100).min(until.saturating_duration_since(Instant::now())),
            );
        }
        polls += 1;
    }
}
