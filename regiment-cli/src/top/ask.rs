//! What `regiment top` asks the master, each wait bounded: a status, the kill reports, or one
//! of the acting commands. Never through a watched [`Deadline`], whose thread exits the process: the view
//! holds the terminal in raw mode, and a master that does not answer is shown, not fatal.

use std::path::Path;
use std::time::Duration;

use regiment_core::plumbing::control::{Answer, Command};
use regiment_core::{KillReport, Status};

use crate::client::{Connection, Failure};
use crate::deadline::Deadline;

/// A connection whose every answer must come within `wait`, if given.
pub(crate) fn open(
    socket: &Path,
    command: &Command,
    wait: Option<Duration>,
) -> Result<Connection, Failure> {
    let connection = Connection::open(socket, command, Deadline::unwatched())?;
    connection.wait_at_most(wait).map_err(Failure::Io)?;
    Ok(connection)
}

/// One status, within `wait`.
pub(crate) fn status(socket: &Path, wait: Duration) -> Result<Status, Failure> {
    match open(socket, &Command::Status, Some(wait))?.answer()? {
        Answer::Status { status } => Ok(*status),
        _ => Err(Failure::Unexpected),
    }
}

/// The kill reports the master keeps, oldest first, within `wait`.
pub(crate) fn reports(socket: &Path, wait: Duration) -> Result<Vec<KillReport>, Failure> {
    match open(socket, &Command::Reports, Some(wait))?.answer()? {
        Answer::Reports { reports } => Ok(reports),
        _ => Err(Failure::Unexpected),
    }
}

/// Why asking failed, in a line for the view: a master that did not answer within `wait`
/// says so rather than "resource temporarily unavailable".
pub(crate) fn why(failure: &Failure, socket: &Path, wait: Duration) -> String {
    if failure.is_no_answer() {
        format!(
            "no answer from the master at {} within {} (--timeout): it is stopped, wedged or \
             overloaded",
            socket.display(),
            humantime::format_duration(wait)
        )
    } else {
        failure.describe(socket)
    }
}
