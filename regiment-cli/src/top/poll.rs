//! The status polls of the live view: a thread asks the master for its status about once a
//! second and hands each answer, or why there was none, to the view. A master that goes away
//! is asked again each second: the view says so and carries on when it answers again (an
//! upgrade in place closes every connection while the master executes its new program).

use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant, SystemTime};

use regiment_core::Status;

use super::ask;

/// How often the master is asked.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);

/// One poll's outcome.
pub(crate) enum Polled {
    /// The master answered, at these times.
    Answered(Box<Status>, Instant, SystemTime),
    /// It did not: why, for a person.
    Failed(String),
}

/// Polls the master at `socket` until the view is gone; each answer is waited for at most
/// `wait`.
pub(crate) fn start(socket: PathBuf, wait: Duration, polled: Sender<Polled>) {
    std::thread::spawn(move || {
        loop {
            let asked = Instant::now();
            let outcome = match ask::status(&socket, wait) {
                Ok(status) => Polled::Answered(Box::new(status), Instant::now(), SystemTime::now()),
                Err(failure) => Polled::Failed(ask::why(&failure, &socket, wait)),
            };
            if polled.send(outcome).is_err() {
                return;
            }
            std::thread::sleep(INTERVAL.saturating_sub(asked.elapsed()));
        }
    });
}
