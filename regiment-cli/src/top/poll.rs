//! The polls of the live view: a thread asks the master for its status about once a second and
//! hands each answer, or why there was none, to the view; and for its kill reports now and
//! then. A master that goes away is asked again each second: the view says so and carries on
//! when it answers again (an upgrade in place closes every connection while the master
//! executes its new program).

use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant, SystemTime};

use regiment_core::{KillReport, Status};

use super::ask;

/// How often the master is asked for its status.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);

/// How often the master is asked for its kill reports at least. Not at every status: its
/// answer holds every report it keeps, each with its threads (up to a few hundred kilobytes).
/// But also as soon as a status shows a worker gone, as every kill the master decides ends
/// one, so that a new report shows within a poll of its kill.
pub(crate) const REPORTS_INTERVAL: Duration = Duration::from_secs(10);

/// One poll's outcome.
pub(crate) enum Polled {
    /// The master answered, at these times.
    Answered(Box<Status>, Instant, SystemTime),
    /// It did not: why, for a person.
    Failed(String),
    /// The kill reports it keeps, oldest first.
    Reports(Vec<KillReport>),
}

/// Polls the master at `socket` until the view is gone; each answer is waited for at most
/// `wait`.
pub(crate) fn start(socket: PathBuf, wait: Duration, polled: Sender<Polled>) {
    std::thread::spawn(move || {
        let mut pids: Vec<u32> = Vec::new();
        let mut reports_asked: Option<Instant> = None;
        loop {
            let asked = Instant::now();
            let mut reports_due = reports_asked.is_none_or(|at| at.elapsed() >= REPORTS_INTERVAL);
            let outcome = match ask::status(&socket, wait) {
                Ok(status) => {
                    let now: Vec<u32> = status.workers.iter().map(|w| w.pid).collect();
                    reports_due |= pids.iter().any(|pid| !now.contains(pid));
                    pids = now;
                    Polled::Answered(Box::new(status), Instant::now(), SystemTime::now())
                }
                Err(failure) => {
                    // Once it answers again: it may be a new master, with reports of its own.
                    reports_asked = None;
                    reports_due = false;
                    Polled::Failed(ask::why(&failure, &socket, wait))
                }
            };
            if polled.send(outcome).is_err() {
                return;
            }
            if reports_due {
                reports_asked = Some(Instant::now());
                // A master that cannot say (of a build without reports) has none to show; one
                // that stopped answering is told by the status polls.
                if let Ok(reports) = ask::reports(&socket, wait)
                    && polled.send(Polled::Reports(reports)).is_err()
                {
                    return;
                }
            }
            std::thread::sleep(INTERVAL.saturating_sub(asked.elapsed()));
        }
    });
}
