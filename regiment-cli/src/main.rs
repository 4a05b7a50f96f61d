//! `regiment`: asks a running regiment master what it is doing, and steers it, through its
//! control socket (`REGIMENT_CONTROL_SOCKET` or `Builder::control_socket` on the master).
//!
//! ```text
//! $ regiment --socket /run/shop/control.sock status
//! $ regiment reload --wait && echo deployed     # REGIMENT_CONTROL_SOCKET is set
//! $ regiment upgrade --wait                       # the master itself runs the new binary
//! ```
//!
//! Exit status: 0 when the command was carried out (for `reload --wait`: the rollout
//! completed; for `upgrade --wait`: the upgrade is done), 1 when the master refused it or the
//! rollout did not complete (aborted, superseded, or not started because the master stops), or
//! the upgrade did not (refused, rolled back, aborted, or unknown to the master that answers
//! after the exec), 2 for a wrong command line, 3 when the master could not be reached (again,
//! after an upgrade's exec) or spoke another protocol, 4 when the master was busy (every
//! connection it serves at once taken: nothing was done), 5 when no answer came in time
//! (`--timeout`, extended by what the master says a rollout, an upgrade or a stop may take).

mod client;
mod columns;
mod deadline;
mod describe;
mod follow;
mod memory;
mod output;
mod printable;
mod reports;
mod table;
mod top;
mod upgrade;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use regiment_core::events::RolloutOutcome;
use regiment_core::plumbing::control::{Answer, Command};

use client::{Connection, Failure};
use deadline::Deadline;
use follow::Follow;
use output::Format;
use printable::printable;

#[derive(Parser)]
#[command(
    name = "regiment",
    version,
    about = "Asks a running regiment master what it is doing, and steers it.",
    after_help = "Exit status: 0 done (reload --wait: the rollout completed; upgrade --wait: the \
                  upgrade is done); 1 refused, or the rollout aborted, superseded or not started, \
                  or the upgrade refused, rolled back or aborted; 2 wrong command line; 3 the \
                  master could not be reached (upgrade --wait: again, after the exec) or speaks \
                  another protocol version; 4 the master is busy (nothing was done: try again); \
                  5 no answer within the timeout (what was asked may or may not have been done)."
)]
struct Cli {
    /// The master's control socket.
    #[arg(
        long,
        global = true,
        env = "REGIMENT_CONTROL_SOCKET",
        value_name = "PATH"
    )]
    socket: Option<PathBuf>,
    /// How long to wait for the master's answer (30s, 2m). `reload --wait`, `upgrade --wait`
    /// and `stop --wait` wait as long as the master says the rollout (its rollout_timeout), the
    /// upgrade (its start timeout, 70s, its rollout_timeout) or the stop (its drain timeout)
    /// may take, plus this. Past it: exit 5.
    #[arg(long, global = true, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    timeout: Duration,
    #[command(subcommand)]
    command: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Workers by slot, generations and the last rollout.
    Status {
        /// The status as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// A rolling restart: the program is resolved anew and every worker replaced, new before
    /// old.
    Reload {
        /// Show progress and wait for the outcome: exit 0 when the rollout completed, 1 with
        /// the reason when it was aborted or superseded.
        #[arg(long)]
        wait: bool,
    },
    /// Upgrades the master in place to the program now at its path: a preflight of the new
    /// program, then the master executes it (same pid, keeping its listeners, control socket
    /// and workers), then the new master rolls the workers to the new build. Refused (exit 1)
    /// while one is under way or the master stops.
    Upgrade {
        /// Show progress and wait for the outcome, across the exec (the command connects again
        /// to the same socket): exit 0 when the upgrade is done, 1 with the reason when it was
        /// refused, rolled back or aborted.
        #[arg(long)]
        wait: bool,
    },
    /// Scales to N workers (new slots are filled, the last slots' workers drained).
    Scale {
        /// Workers wanted, from 1 to 1024.
        workers: usize,
    },
    /// Replaces the worker of a slot, new before old; refused (exit 1) when the slot has no
    /// worker now (none such, or its worker exited and the next one is not there yet).
    Replace {
        /// The slot, from 0 (see `regiment status`).
        slot: usize,
    },
    /// Stops gracefully: every worker drains, then the master exits.
    Stop {
        /// Wait until the master has exited.
        #[arg(long)]
        wait: bool,
    },
    /// The metrics, in the Prometheus text format.
    Metrics,
    /// A live view: the master, a row per worker (requests per second, in flight, failures,
    /// memory, restarts) and the latest events, refreshed every second; r reloads, + and -
    /// scale, x replaces a slot, each once confirmed; q quits. Needs a terminal of at least
    /// 80x16 (else exit 2); a master that goes away is asked again every second.
    Top {
        /// Print one frame as plain text and exit (two statuses a second apart, for the
        /// rates), for scripts.
        #[arg(long)]
        once: bool,
    },
    /// The reports the master took of workers before it killed them (the last 16): id, time,
    /// slot, pid, generation, why, threads.
    Reports {
        /// The reports as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// One kill report whole: every thread's name, state, system call and wait channel.
    Report {
        /// Its id (see `regiment reports`).
        id: u64,
        /// The report as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(socket) = cli.socket else {
        eprintln!(
            "regiment: no control socket given: pass --socket PATH or set REGIMENT_CONTROL_SOCKET \
             (the path the master was given with REGIMENT_CONTROL_SOCKET or Builder::control_socket)"
        );
        return ExitCode::from(2);
    };
    match run(&socket, cli.command, cli.timeout) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("regiment: {}", printable(&failure.describe(&socket)));
            ExitCode::from(failure.exit_code())
        }
    }
}

/// A duration above zero, as `30s` or `2m`.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("a timeout above zero, such as 30s".into()),
        Err(e) => Err(format!("{e}; expected a duration such as 30s or 2m")),
    }
}

fn run(socket: &std::path::Path, action: Action, timeout: Duration) -> Result<ExitCode, Failure> {
    let command = match &action {
        // Each of its answers bounded by --timeout, none fatal: no watched deadline.
        Action::Top { once } => return top::top(socket, timeout, *once),
        Action::Status { .. } => Command::Status,
        Action::Reload { .. } => Command::Reload,
        Action::Upgrade { .. } => Command::Upgrade,
        Action::Scale { workers } => Command::Scale { workers: *workers },
        Action::Replace { slot } => Command::Replace { slot: *slot },
        Action::Stop { .. } => Command::Stop,
        Action::Metrics => Command::Metrics,
        Action::Reports { .. } => Command::Reports,
        Action::Report { id, .. } => Command::Report { id: *id },
    };
    let deadline = Deadline::start(timeout, socket);
    let mut connection = Connection::open(socket, &command, deadline.clone())?;
    match action {
        Action::Status { json } => {
            let Answer::Status { status } = connection.answer()? else {
                return Err(Failure::Unexpected);
            };
            output::print(&*status, Format::from_json_flag(json), table::status)
        }
        Action::Metrics => {
            let Answer::Metrics { text } = connection.answer()? else {
                return Err(Failure::Unexpected);
            };
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Action::Reports { json } => reports::list(&mut connection, Format::from_json_flag(json)),
        Action::Report { json, .. } => reports::one(&mut connection, Format::from_json_flag(json)),
        Action::Reload { wait } => reload(
            &mut connection,
            if wait {
                Follow::ToTheOutcome
            } else {
                Follow::UntilStarted
            },
        ),
        Action::Upgrade { wait } => upgrade::upgrade(
            socket,
            &mut connection,
            &deadline,
            if wait {
                Follow::ToTheOutcome
            } else {
                Follow::UntilStarted
            },
        ),
        Action::Scale { .. } | Action::Replace { .. } => {
            let Answer::Done { message } = connection.answer()? else {
                return Err(Failure::Unexpected);
            };
            println!("{}", printable(&message));
            Ok(ExitCode::SUCCESS)
        }
        Action::Stop { wait } => {
            let Answer::Done { message } = connection.answer()? else {
                return Err(Failure::Unexpected);
            };
            println!("{}", printable(&message));
            if wait {
                connection.wait_closed()?;
                println!("stopped");
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Top { .. } => unreachable!("regiment top returned above"),
    }
}

/// Follows the rollout a reload started, as far as `follow` says.
fn reload(connection: &mut Connection, follow: Follow) -> Result<ExitCode, Failure> {
    loop {
        match connection.answer()? {
            Answer::Progress { event } => {
                if let Some(line) = describe::event(&event) {
                    if follow == Follow::ToTheOutcome {
                        println!("{line}");
                    } else if matches!(event, regiment_core::Event::RolloutStarted { .. }) {
                        println!("{line}");
                        return Ok(ExitCode::SUCCESS);
                    }
                }
            }
            Answer::Rollout { record: None } => {
                eprintln!("regiment: no rollout was started: the master is stopping");
                return Ok(ExitCode::FAILURE);
            }
            Answer::Rollout {
                record: Some(record),
            } => {
                let line = describe::outcome(&record);
                return Ok(if record.outcome == RolloutOutcome::Done {
                    println!("{line}");
                    ExitCode::SUCCESS
                } else {
                    eprintln!("regiment: {line}");
                    ExitCode::FAILURE
                });
            }
            _ => return Err(Failure::Unexpected),
        }
    }
}
