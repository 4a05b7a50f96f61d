//! Captures of real threads of this test process (which other tests' threads share: they come
//! and go during a capture).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::signal::{current_tid, stack_signal};
use super::symbolize::{head, tail};
use super::*;

/// The longest a test thread waits for its `stop` before giving up on its own.
const CEILING: Duration = Duration::from_secs(60);

/// A thread running `body(stop)`, and its id.
struct TestThread<T> {
    tid: u32,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<T>,
}

impl<T: Send + 'static> TestThread<T> {
    fn spawn(body: impl FnOnce(&AtomicBool) -> T + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::spawn({
            let stop = stop.clone();
            move || {
                tx.send(current_tid()).unwrap();
                body(&stop)
            }
        });
        let tid = rx.recv().unwrap();
        TestThread { tid, stop, handle }
    }

    /// Stops it and returns what it returned (a panic in it fails the test).
    fn join(self) -> T {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("the test thread panicked")
    }
}

/// Sleeps in short steps until `stop` (or the ceiling): returns how many sleeps it finished.
#[inline(never)]
fn stacks_test_sleeper_5e1d(stop: &AtomicBool) -> u32 {
    let began = Instant::now();
    let mut sleeps = 0;
    while !stop.load(Ordering::Relaxed) && began.elapsed() < CEILING {
        std::thread::sleep(Duration::from_millis(20));
        sleeps += 1;
    }
    black_box(sleeps)
}

fn stack_of(stacks: &[ThreadStack], tid: u32) -> &ThreadStack {
    stacks
        .iter()
        .find(|s| s.tid == tid)
        .unwrap_or_else(|| panic!("thread {tid} not listed: {stacks:#?}"))
}

fn in_time() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// Held by each test while it captures: the tests run in parallel threads of one process, and
/// one capture at a time asks a thread (see `signal::ask`), so a capture that waits on another,
/// itself waiting for a thread with the signal blocked, would see its own share of time pass.
/// (A worker has one capturing thread, its IPC thread.)
static ONE_CAPTURE: Mutex<()> = Mutex::new(());

fn capture_alone(deadline: Instant) -> Vec<ThreadStack> {
    let _alone = ONE_CAPTURE.lock().unwrap_or_else(PoisonError::into_inner);
    capture(deadline)
}

/// A thread blocked in `std::thread::sleep` shows the function that called it, with its file
/// and line, below the sleep's own frames (the handler's and the trampoline's left out), and
/// goes on unharmed.
#[test]
fn a_sleeping_thread_shows_its_function_below_the_sleep() {
    let sleeper = TestThread::spawn(stacks_test_sleeper_5e1d);
    // The thread spends nearly all its time asleep, not all: a capture may catch it between
    // two sleeps (its first frame is then the loop's), so look a few times.
    let mut last = None;
    for _ in 0..50 {
        let stacks = capture_alone(in_time());
        let stack = stack_of(&stacks, sleeper.tid).clone();
        assert_eq!(stack.answer, Answer::Answered, "{stack:#?}");
        let first_is_the_sleep = stack.frames[0].function.contains("sleep")
            && !stack.frames[0]
                .function
                .contains("stacks_test_sleeper_5e1d");
        if first_is_the_sleep {
            last = Some(stack);
            break;
        }
        last = Some(stack);
    }
    let stack = last.unwrap();
    let first = &stack.frames[0].function;
    assert!(
        first.contains("sleep") && !first.contains("stacks_test"),
        "{stack:#?}"
    );
    for frame in &stack.frames[..2] {
        assert!(
            !frame.function.contains("backtrace")
                && !frame.function.contains("signal_hook")
                && !frame.function.contains("restore_rt"),
            "the capture's own frames are left out: {stack:#?}"
        );
    }
    let caller = stack
        .frames
        .iter()
        .find(|f| f.function.contains("stacks_test_sleeper_5e1d"))
        .unwrap_or_else(|| panic!("no frame of the sleeping function: {stack:#?}"));
    assert!(
        caller
            .file
            .as_deref()
            .is_some_and(|f| f.ends_with("stacks/tests.rs")),
        "{caller:?}"
    );
    assert!(caller.line.is_some(), "{caller:?}");
    // Hash-less names: `…::stacks_test_sleeper_5e1d`, not `…::stacks_test_sleeper_5e1d::h0123…`.
    assert!(
        caller.function.ends_with("stacks_test_sleeper_5e1d"),
        "{caller:?}"
    );

    let sleeps = sleeper.join();
    assert!(sleeps >= 1, "its sleeps went on");
}

/// A thread with the signal blocked does not answer: it is listed without frames, and the
/// capture returns all the same (by its deadline), with the other threads' stacks.
#[test]
fn a_thread_with_the_signal_blocked_is_listed_as_not_answered() {
    let blocked = TestThread::spawn(|stop| {
        // SAFETY: a sigset_t is filled by sigemptyset before use; pthread_sigmask only changes
        // this thread's mask.
        #[allow(unsafe_code)]
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, stack_signal());
            assert_eq!(
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
                0
            );
        }
        stacks_test_sleeper_5e1d(stop)
    });
    let sleeper = TestThread::spawn(stacks_test_sleeper_5e1d);
    // The mask is set before the thread's first sleep: wait for that sleep to have begun.
    while !is_asleep(blocked.tid) {
        std::thread::sleep(Duration::from_millis(1));
    }

    // Its deadline counts from when it may begin.
    let stacks = {
        let _alone = ONE_CAPTURE.lock().unwrap_or_else(PoisonError::into_inner);
        capture(Instant::now() + Duration::from_secs(2))
    };

    let silent = stack_of(&stacks, blocked.tid);
    assert_eq!(silent.answer, Answer::NotInTime, "{silent:#?}");
    assert!(silent.frames.is_empty(), "{silent:#?}");
    let answered = stack_of(&stacks, sleeper.tid);
    assert_eq!(answered.answer, Answer::Answered, "{answered:#?}");
    blocked.join();
    sleeper.join();
}

/// Whether thread `tid` of this process is asleep (state `S`).
fn is_asleep(tid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('S'))
    })
}

#[inline(never)]
fn stacks_test_caller_b81c() -> Vec<ThreadStack> {
    black_box(capture(in_time()))
}

/// The calling thread's own stack is listed, from the code that called `capture`.
#[test]
fn the_calling_thread_lists_its_own_stack_from_its_caller() {
    let stacks = {
        let _alone = ONE_CAPTURE.lock().unwrap_or_else(PoisonError::into_inner);
        stacks_test_caller_b81c()
    };
    let own = stack_of(&stacks, current_tid());
    assert_eq!(own.answer, Answer::Answered);
    assert!(
        own.frames[0].function.ends_with("stacks_test_caller_b81c"),
        "{own:#?}"
    );
}

/// Recurses `depth` times, then sleeps until `stop`.
#[inline(never)]
fn stacks_test_deep_c44a(depth: u32, stop: &AtomicBool) -> u32 {
    if depth == 0 {
        return stacks_test_sleeper_5e1d(stop);
    }
    black_box(stacks_test_deep_c44a(black_box(depth - 1), stop)) + 1
}

/// A deep stack is cut at `MAX_FRAMES`, innermost kept; every name and path within bounds.
#[test]
fn a_deep_stack_is_cut_at_48_frames() {
    let deep = TestThread::spawn(|stop| stacks_test_deep_c44a(200, stop));
    let mut recursing = None;
    for _ in 0..50 {
        let stacks = capture_alone(in_time());
        for stack in &stacks {
            assert!(stack.frames.len() <= MAX_FRAMES, "{stack:#?}");
            for frame in &stack.frames {
                assert!(
                    frame.function.len() <= MAX_FUNCTION + '…'.len_utf8(),
                    "{frame:?}"
                );
                let file = frame.file.as_deref().unwrap_or("");
                assert!(file.len() <= MAX_FILE + '…'.len_utf8(), "{frame:?}");
            }
        }
        let stack = stack_of(&stacks, deep.tid);
        let in_recursion = stack
            .frames
            .iter()
            .filter(|f| f.function.contains("stacks_test_deep_c44a"));
        if in_recursion.count() > 10 {
            recursing = Some(stack.clone());
            break;
        }
    }
    let stack = recursing.expect("the thread never seen recursing");
    assert_eq!(stack.frames.len(), MAX_FRAMES, "{stack:#?}");
    // Innermost kept: the sleep, not the thread's start.
    assert!(
        stack
            .frames
            .iter()
            .any(|f| f.function.contains("stacks_test_sleeper_5e1d")),
        "{stack:#?}"
    );
    assert!(
        deep.join() > 200,
        "it went back up its recursion and returned"
    );
}

/// Names are cut at their head, paths keep their end, both on a char boundary.
#[test]
fn names_and_paths_are_cut_on_char_boundaries() {
    let name = "é".repeat(150); // 300 bytes
    let cut = head(name.clone(), MAX_FUNCTION);
    assert!(
        cut.ends_with('…') && cut.len() <= MAX_FUNCTION + '…'.len_utf8(),
        "{cut}"
    );
    assert!(name.starts_with(cut.trim_end_matches('…')));
    assert_eq!(head("short".to_string(), MAX_FUNCTION), "short");

    let path = format!("/{}/src/handlers.rs", "ü".repeat(100));
    let cut = tail(path.clone(), MAX_FILE);
    assert!(
        cut.starts_with('…') && cut.len() <= MAX_FILE + '…'.len_utf8(),
        "{cut}"
    );
    assert!(cut.ends_with("/src/handlers.rs") && path.ends_with(cut.trim_start_matches('…')));
    assert_eq!(tail("/src/a.rs".to_string(), MAX_FILE), "/src/a.rs");
}
