//! `regiment top`: a live view of the master and its workers over the control socket, drawn
//! with ratatui. A header (master, generations, the rollout and its stage, listeners, memory),
//! a row per worker (slot, pid, generation, state, age, requests per second, in flight, p50
//! and p99 latency, 5xx and failed, PSS, restarts and the last reason), the latest events and
//! kill reports, and keys that steer it, each asking before it acts. `--once` prints one frame as plain text, for scripts.
//!
//! ```text
//! $ regiment top            # q quits; r reload, + / - scale, x replace a slot
//! $ regiment top --once     # one frame, two statuses a second apart (for the rates)
//! ```

mod act;
mod ask;
mod frame;
mod history;
mod keys;
mod pane;
mod poll;
mod reports;
mod screen;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use crate::client::Failure;
use crate::deadline::EXIT_TIMED_OUT;
use history::{History, Reading};
use pane::Pane;

/// The smallest terminal the view is drawn in: the table's columns, and a few rows of each
/// pane.
pub(crate) const MIN_SIZE: (u16, u16) = (80, 16);
/// The exit status when the view cannot be shown (not a terminal, or too small).
const EXIT_NO_VIEW: u8 = 2;
/// The events `--once` prints.
const ONCE_EVENTS: usize = 10;

/// Runs `regiment top` against the master at `socket`; each answer is waited for at most
/// `wait`.
pub(crate) fn top(socket: &Path, wait: Duration, once: bool) -> Result<ExitCode, Failure> {
    match show(socket, wait, once) {
        // As every command says it, with the same exit status.
        Err(failure) if failure.is_no_answer() => {
            eprintln!("regiment: {}", ask::why(&failure, socket, wait));
            Ok(ExitCode::from(EXIT_TIMED_OUT))
        }
        shown => shown,
    }
}

fn show(socket: &Path, wait: Duration, once: bool) -> Result<ExitCode, Failure> {
    if once {
        return print_once(socket, wait);
    }
    if !std::io::stdout().is_terminal() {
        eprintln!(
            "regiment: top draws a live view on a terminal, and standard output is not one: \
             use `regiment top --once` for one frame as plain text, or `regiment status --json`"
        );
        return Ok(ExitCode::from(EXIT_NO_VIEW));
    }
    let (columns, rows) = ratatui::crossterm::terminal::size().map_err(Failure::Io)?;
    if columns < MIN_SIZE.0 || rows < MIN_SIZE.1 {
        eprintln!(
            "regiment: the terminal is {columns}x{rows}; top needs at least {}x{} (columns x \
             rows): enlarge it, or use `regiment top --once`",
            MIN_SIZE.0, MIN_SIZE.1
        );
        return Ok(ExitCode::from(EXIT_NO_VIEW));
    }
    // A master that cannot be reached at all is said as every command says it, before the
    // terminal is taken.
    let first = ask::status(socket, wait)?;
    screen::run(socket, wait, first).map_err(Failure::Io)?;
    Ok(ExitCode::SUCCESS)
}

/// One frame, from two statuses [`poll::INTERVAL`] apart.
fn print_once(socket: &Path, wait: Duration) -> Result<ExitCode, Failure> {
    let mut history = History::default();
    let mut pane = Pane::default();
    let first = ask::status(socket, wait)?;
    pane.seed(&first);
    // A master that cannot say (of a build without reports) has none to show.
    if let Ok(kept) = ask::reports(socket, wait) {
        reports::Told::default().tell(&kept, &mut pane);
    }
    history.push(Reading {
        status: first,
        at: Instant::now(),
    });
    std::thread::sleep(poll::INTERVAL);
    let second = ask::status(socket, wait)?;
    if let Some(before) = history.latest() {
        pane.observe(&before.status, &second, SystemTime::now());
    }
    history.push(Reading {
        status: second,
        at: Instant::now(),
    });
    let frame = frame::frame(&history, SystemTime::now());
    print!("{}", frame::plain(&frame, &pane, ONCE_EVENTS));
    Ok(ExitCode::SUCCESS)
}
