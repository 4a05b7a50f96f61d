//! Carries out what the operator confirmed, on a thread of its own so that the view keeps
//! drawing: the master's answer, and for a reload every event it streams until the rollout's
//! outcome, come back as lines for the pane.

use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::time::Duration;

use regiment_core::plumbing::control::{Answer, Command};

use super::ask;
use super::keys::Act;
use crate::client::Failure;
use crate::describe;

/// Starts `act` against the master at `socket`; its lines go to `lines`. Each answer is waited
/// for at most `wait`, but a reload's next event as long as the rollout may take (the master
/// says how long, and the status polls show a master that stopped answering).
pub(crate) fn start(act: Act, socket: PathBuf, wait: Duration, lines: Sender<String>) {
    std::thread::spawn(move || {
        let said = carry_out(&act, &socket, wait, &lines);
        if let Err(failure) = said {
            let _ = lines.send(format!("refused: {}", ask::why(&failure, &socket, wait)));
        }
    });
}

fn carry_out(
    act: &Act,
    socket: &std::path::Path,
    wait: Duration,
    lines: &Sender<String>,
) -> Result<(), Failure> {
    let command = match act {
        Act::Reload => Command::Reload,
        Act::Scale { to, .. } => Command::Scale { workers: *to },
        Act::Replace { slot } => Command::Replace { slot: *slot },
    };
    let each = (*act != Act::Reload).then_some(wait);
    let mut connection = ask::open(socket, &command, each)?;
    if *act != Act::Reload {
        let Answer::Done { message } = connection.answer()? else {
            return Err(Failure::Unexpected);
        };
        let _ = lines.send(message);
        return Ok(());
    }
    loop {
        match connection.answer()? {
            Answer::Progress { event } => {
                if let Some(line) = describe::event(&event) {
                    let _ = lines.send(line);
                }
            }
            Answer::Rollout { record: None } => {
                let _ = lines.send("no rollout was started: the master is stopping".into());
                return Ok(());
            }
            Answer::Rollout {
                record: Some(record),
            } => {
                let _ = lines.send(format!("rollout: {}", describe::outcome(&record)));
                return Ok(());
            }
            _ => return Err(Failure::Unexpected),
        }
    }
}
