//! The command's deadline. A command waits `--timeout` for the master's answer; when the
//! master says that what was asked takes longer (a rollout, up to its `rollout_timeout`; a
//! stop, up to its drain timeout), the deadline moves to that time plus `--timeout`. When it
//! passes, whatever the command was blocked on (connecting to a master whose accept queue is
//! full, reading from one that is stopped or wedged), it says so and exits with
//! [`EXIT_TIMED_OUT`].

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The exit status of a command whose deadline passed.
pub(crate) const EXIT_TIMED_OUT: u8 = 5;

/// The deadline, watched by a thread of its own; cheap to clone.
#[derive(Clone)]
pub(crate) struct Deadline {
    state: Arc<Mutex<State>>,
    margin: Duration,
}

struct State {
    at: Instant,
    /// What the command says when it passes.
    why: String,
}

impl Deadline {
    /// Starts watching: the master at `socket` must answer within `timeout`.
    pub(crate) fn start(timeout: Duration, socket: &Path) -> Deadline {
        let why = format!(
            "no answer from the master at {} within {} (--timeout): it is stopped, wedged or \
             overloaded; what was asked may or may not have been done",
            socket.display(),
            humantime::format_duration(timeout)
        );
        let deadline = Deadline {
            state: Arc::new(Mutex::new(State {
                at: from_now(timeout),
                why,
            })),
            margin: timeout,
        };
        let state = deadline.state.clone();
        std::thread::spawn(move || watch(&state));
        deadline
    }

    /// A deadline that nothing watches: for `regiment top`, which asks again and again and must
    /// never exit from a watcher thread while it holds the terminal in raw mode; it bounds each
    /// wait with [`crate::client::Connection::wait_at_most`] instead.
    pub(crate) fn unwatched() -> Deadline {
        Deadline {
            state: Arc::new(Mutex::new(State {
                at: from_now(Duration::MAX),
                why: String::new(),
            })),
            margin: Duration::ZERO,
        }
    }

    /// The master says what was asked may take `within` from now: the deadline is that plus
    /// the margin (`--timeout`), if that is later; `awaited` says what did not happen in time.
    pub(crate) fn extend(&self, within: Duration, awaited: &str) {
        let at = from_now(within.saturating_add(self.margin));
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if at > state.at {
            state.at = at;
            state.why = format!(
                "{awaited} ({}) plus --timeout ({}): the master is stopped or wedged",
                humantime::format_duration(round(within)),
                humantime::format_duration(self.margin)
            );
        }
    }
}

fn watch(state: &Mutex<State>) {
    loop {
        let at = state.lock().unwrap_or_else(|e| e.into_inner()).at;
        let now = Instant::now();
        if now >= at {
            let why = state.lock().unwrap_or_else(|e| e.into_inner()).why.clone();
            eprintln!("regiment: {why}");
            std::process::exit(i32::from(EXIT_TIMED_OUT));
        }
        std::thread::sleep(at - now);
    }
}

/// The instant `wait` from now; a wait longer than an `Instant` reaches is a century.
fn from_now(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// To the second, for a person.
fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}
