//! `regiment upgrade [--wait]`: begins an upgrade of the master in place and, with `--wait`,
//! follows it to its outcome. The master closes every control connection when it executes its
//! new program (same pid); the new master keeps serving the same socket. So the command
//! connects again, to the same path, and asks again: with short pauses, for at most
//! [`ASK_AGAIN_WITHIN`] after its connection was lost, and never past its deadline.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use regiment_core::events::{UpgradeOutcome, UpgradeRecord};
use regiment_core::plumbing::control::{Answer, Command};

use crate::client::{Connection, Failure};
use crate::deadline::Deadline;
use crate::describe;
use crate::follow::Follow;

/// How long the command asks again after a lost connection. A connection made while the new
/// program starts waits in the socket's queue until the new master serves it, so asking again
/// fails only when the master keeps closing connections: this bounds that.
const ASK_AGAIN_WITHIN: Duration = Duration::from_secs(120);
/// The pause before asking again, after asking again at once failed.
const PAUSE: Duration = Duration::from_millis(100);

/// Reads the answer to `upgrade` on `begun`, and follows the upgrade as far as `follow` says.
pub(crate) fn upgrade(
    socket: &Path,
    begun: &mut Connection,
    deadline: &Deadline,
    follow: Follow,
) -> Result<ExitCode, Failure> {
    let Answer::UpgradeBegun { number } = begun.answer()? else {
        return Err(Failure::Unexpected);
    };
    println!("upgrade {number} begun");
    if follow == Follow::UntilStarted {
        return Ok(ExitCode::SUCCESS);
    }
    let Some(record) = outcome(socket, number, deadline)? else {
        eprintln!(
            "regiment: upgrade {number}: the master that answers now knows no such upgrade (it \
             was started afresh, or a later upgrade began): its outcome is unknown, see \
             `regiment status`"
        );
        return Ok(ExitCode::FAILURE);
    };
    let line = describe::upgrade(&record);
    match record.outcome {
        UpgradeOutcome::Done => {
            println!("{line}");
            Ok(ExitCode::SUCCESS)
        }
        // The master answers once the upgrade ended.
        UpgradeOutcome::InProgress => Err(Failure::Unexpected),
        UpgradeOutcome::Aborted | UpgradeOutcome::Refused | UpgradeOutcome::RolledBack => {
            eprintln!("regiment: {line}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The record of upgrade `number` from the master that answers, printing the progress it
/// reports; `None` if it knows no such upgrade.
fn outcome(
    socket: &Path,
    number: u64,
    deadline: &Deadline,
) -> Result<Option<UpgradeRecord>, Failure> {
    let command = Command::UpgradeOutcome { number };
    // When the connection was lost, if it was and nothing was heard since.
    let mut lost_at: Option<Instant> = None;
    loop {
        let failure = match ask(socket, &command, deadline, &mut lost_at) {
            Ok(record) => return Ok(record),
            Err(failure) => failure,
        };
        let lost = lost_at.is_some();
        let within = lost_at.is_none_or(|at| at.elapsed() < ASK_AGAIN_WITHIN);
        match failure {
            Failure::ClosedEarly if within => {
                if lost {
                    std::thread::sleep(PAUSE);
                } else {
                    // At once: a connection made while the new program starts waits in the
                    // socket's queue, and the new master's first events are not missed.
                    println!(
                        "the master closed the connection (it executes a new program, same pid): \
                         asking again"
                    );
                    lost_at = Some(Instant::now());
                }
            }
            failure if lost => {
                return Err(Failure::AfterExec {
                    number,
                    failure: Box::new(failure),
                });
            }
            failure => return Err(failure),
        }
    }
}

/// Asks once: the record, or how asking failed. An answer heard means the connection is no
/// longer lost (`lost_at` is cleared).
fn ask(
    socket: &Path,
    command: &Command,
    deadline: &Deadline,
    lost_at: &mut Option<Instant>,
) -> Result<Option<UpgradeRecord>, Failure> {
    let mut connection = Connection::open(socket, command, deadline.clone())?;
    loop {
        match connection.answer()? {
            Answer::Progress { event } => {
                *lost_at = None;
                if let Some(line) = describe::event(&event) {
                    println!("{line}");
                }
            }
            Answer::Upgrade { record } => return Ok(record),
            _ => return Err(Failure::Unexpected),
        }
    }
}
