//! The wire format of the control socket, shared by the master and the `regiment` command.
//!
//! A connection carries one request and its answer. Every message is a frame: a 4-byte
//! big-endian length, then that many bytes of JSON. A request is `{"version": 1, "command":
//! ...}`; the master reads the version before anything else, so a client of another version
//! gets an answer it understands (a version mismatch) instead of a parse error. Requests are
//! untrusted: at most [`MAX_REQUEST`] bytes, read within a deadline, anything malformed is
//! answered with an error and logged. Answers are bounded by [`MAX_ANSWER`] on the client side.
//!
//! A client gives the master a deadline of its own, and the master tells it how long what it
//! asked may take ([`Frame::ends_within_ms`]: a rollout's `rollout_timeout`, a stop's drain
//! timeout, an upgrade's preflight and rollout), so that a client waiting for a rollout neither
//! gives up on a slow one nor waits forever on a master that is stopped or wedged.
//!
//! An upgrade of the master in place closes every open connection when the master executes its
//! new program; the new master serves the same socket. A client that waits for an upgrade's
//! outcome ([`Command::UpgradeOutcome`]) and loses its connection before the answer connects
//! again and asks again.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use crate::events::{Event, KillReport, RolloutRecord, Status, UpgradeRecord};

/// The version of this wire format. A master and a client of different versions refuse each
/// other with [`ErrorKind::Version`].
pub const VERSION: u32 = 1;
/// The largest request a master reads, in bytes: a command is a few dozen.
pub const MAX_REQUEST: usize = 4 * 1024;
/// The largest answer frame a client reads, in bytes: a status of thousands of workers fits.
pub const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// A request: the version of the client, and what it asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// [`VERSION`] of the client.
    pub version: u32,
    /// What it asks.
    pub command: Command,
}

/// What a client asks of the master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum Command {
    /// The status snapshot: answered with [`Answer::Status`].
    Status,
    /// The Prometheus exposition: answered with [`Answer::Metrics`].
    Metrics,
    /// A rolling restart: [`Answer::Progress`] for every event while it runs, then
    /// [`Answer::Rollout`] with its outcome.
    Reload,
    /// Scales to this many workers: answered with [`Answer::Done`].
    Scale {
        /// Workers wanted, from 1 to [`crate::MAX_WORKERS`].
        workers: usize,
    },
    /// Replaces the worker of a slot, new before old: answered with [`Answer::Done`], or
    /// [`Answer::Error`] ([`ErrorKind::Refused`]) when the slot has no worker to replace.
    Replace {
        /// The slot, from 0.
        slot: usize,
    },
    /// A graceful stop: answered with [`Answer::Done`] at once, and the connection stays open
    /// until the master has stopped, so a client can wait for it.
    Stop,
    /// An upgrade of the master in place, as SIGUSR2 does ([`crate::Handle::upgrade`]):
    /// answered at once with [`Answer::UpgradeBegun`], or [`Answer::Error`]
    /// ([`ErrorKind::Refused`]) when none began (one is under way, the master is stopping).
    /// The frame's [`Frame::ends_within_ms`] is the time the whole upgrade may take by this
    /// master's options: the preflight's bound (the start timeout), a minute and ten seconds
    /// for the exec and the new master's takeover, and a rollout's time (`rollout_timeout`).
    /// Its outcome is asked with [`Command::UpgradeOutcome`].
    Upgrade,
    /// Waits for the end of upgrade `number`: [`Answer::Progress`] for every event while it
    /// runs, then [`Answer::Upgrade`] with its record. The master closes the connection when it
    /// executes its new program: ask again, on a new connection to the same socket, the master
    /// that runs then.
    UpgradeOutcome {
        /// The number [`Answer::UpgradeBegun`] gave.
        number: u64,
    },
    /// The reports taken before kills, as [`crate::Handle::kill_reports`] returns them:
    /// answered with [`Answer::Reports`].
    Reports,
    /// Kill report `id`: answered with [`Answer::Report`], or [`Answer::Error`]
    /// ([`ErrorKind::Refused`]) when it is not kept (never taken, or past the last ones kept).
    Report {
        /// Its [`KillReport::id`].
        id: u64,
    },
}

/// One frame of the master's answer, with the master's [`VERSION`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// [`VERSION`] of the master.
    pub version: u32,
    /// The answer.
    pub answer: Answer,
    /// How long, from this frame, what was asked may still take by the master's options: the
    /// time its rollout has left (for [`Command::Reload`]), the drain timeout (for
    /// [`Command::Stop`], until the connection closes), the time the upgrade has left (for
    /// [`Command::Upgrade`], whose answer is complete but whose upgrade goes on, and
    /// [`Command::UpgradeOutcome`]). Absent otherwise. Clients of this version that do not know
    /// the field ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_within_ms: Option<u64>,
}

/// What the master answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Answer {
    /// The status snapshot.
    Status {
        /// The snapshot, as [`crate::Handle::status`] returns it.
        status: Box<Status>,
    },
    /// The metrics in the Prometheus text format.
    Metrics {
        /// The exposition.
        text: String,
    },
    /// Something happened while a rollout runs.
    Progress {
        /// The event, as [`crate::Handle::events`] streams it.
        event: Event,
    },
    /// The rollout ended: its record, or `None` when none was started (the master stops).
    Rollout {
        /// What was rolled out and how it ended.
        record: Option<RolloutRecord>,
    },
    /// An upgrade of the master in place began ([`Command::Upgrade`]).
    UpgradeBegun {
        /// Its number, for [`Command::UpgradeOutcome`].
        number: u64,
    },
    /// Upgrade `number` of [`Command::UpgradeOutcome`] ended: its record (done, aborted,
    /// refused or rolled back), or `None` when this master knows no such upgrade (it was
    /// started afresh, or a later upgrade began since).
    Upgrade {
        /// How the upgrade went.
        record: Option<UpgradeRecord>,
    },
    /// The reports taken before kills, oldest first ([`Command::Reports`]).
    Reports {
        /// The reports kept.
        reports: Vec<KillReport>,
    },
    /// One report taken before a kill ([`Command::Report`]).
    Report {
        /// The report.
        report: Box<KillReport>,
    },
    /// The command was taken.
    Done {
        /// What was done, for a person.
        message: String,
    },
    /// The request was refused.
    Error {
        /// Why, for a program.
        error: ErrorKind,
        /// Why, for a person.
        message: String,
    },
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The client speaks another version of this format.
    Version,
    /// The peer is neither the master's user nor root.
    PermissionDenied,
    /// The request could not be read: too large, not JSON, not a known command, too slow.
    BadRequest,
    /// A well-formed request the master cannot carry out (no such slot, too many workers, it
    /// is stopping).
    Refused,
    /// Every connection the master serves at once is taken: nothing was done, ask again later.
    Busy,
}

/// Writes one frame: its length, then its JSON.
///
/// ```
/// use regiment_core::plumbing::control::{Command, Request, VERSION, read_frame, write_frame};
/// let mut wire = Vec::new();
/// write_frame(&mut wire, &Request { version: VERSION, command: Command::Status })?;
/// let back: Request = serde_json::from_slice(&read_frame(&mut &wire[..], 4096)?).unwrap();
/// assert_eq!(back.command, Command::Status);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_frame(w: &mut impl Write, message: &impl Serialize) -> io::Result<()> {
    w.write_all(&frame_bytes(message)?)?;
    w.flush()
}

/// One frame as bytes, length first.
pub fn frame_bytes(message: &impl Serialize) -> io::Result<Vec<u8>> {
    let json = serde_json::to_vec(message).map_err(io::Error::other)?;
    let len = u32::try_from(json.len()).map_err(io::Error::other)?;
    let mut bytes = Vec::with_capacity(4 + json.len());
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(&json);
    Ok(bytes)
}

/// Reads one frame's body, refusing one longer than `max` bytes before reading it. An end of
/// stream before the length is `UnexpectedEof`.
pub fn read_frame(r: &mut impl Read, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0; 4];
    r.read_exact(&mut len)?;
    let len = frame_len(len, max)?;
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(body)
}

/// The length a frame announces, if it is within `max`.
pub fn frame_len(prefix: [u8; 4], max: usize) -> io::Result<usize> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes exceeds the limit of {max}"),
        ));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_answers_have_a_stable_json_shape() {
        let request = Request {
            version: VERSION,
            command: Command::Scale { workers: 3 },
        };
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"version":1,"command":{"name":"scale","workers":3}}"#
        );
        let frame = Frame {
            version: VERSION,
            answer: Answer::Error {
                error: ErrorKind::PermissionDenied,
                message: "no".into(),
            },
            ends_within_ms: None,
        };
        let json = serde_json::to_string(&frame).unwrap();
        assert_eq!(
            json,
            r#"{"version":1,"answer":{"kind":"error","error":"permission-denied","message":"no"}}"#
        );
        assert_eq!(serde_json::from_str::<Frame>(&json).unwrap(), frame);
        let stopping = Frame {
            version: VERSION,
            answer: Answer::Done {
                message: "stopping".into(),
            },
            ends_within_ms: Some(30_000),
        };
        let json = serde_json::to_string(&stopping).unwrap();
        assert_eq!(
            json,
            r#"{"version":1,"answer":{"kind":"done","message":"stopping"},"ends_within_ms":30000}"#
        );
        assert_eq!(serde_json::from_str::<Frame>(&json).unwrap(), stopping);
    }

    #[test]
    fn upgrade_commands_and_answers_have_a_stable_json_shape() {
        let shape = |command: Command| {
            serde_json::to_string(&Request {
                version: VERSION,
                command,
            })
            .unwrap()
        };
        assert_eq!(
            shape(Command::Upgrade),
            r#"{"version":1,"command":{"name":"upgrade"}}"#
        );
        assert_eq!(
            shape(Command::UpgradeOutcome { number: 3 }),
            r#"{"version":1,"command":{"name":"upgrade-outcome","number":3}}"#
        );
        let begun = Frame {
            version: VERSION,
            answer: Answer::UpgradeBegun { number: 3 },
            ends_within_ms: Some(345_000),
        };
        let json = serde_json::to_string(&begun).unwrap();
        assert_eq!(
            json,
            r#"{"version":1,"answer":{"kind":"upgrade-begun","number":3},"ends_within_ms":345000}"#
        );
        assert_eq!(serde_json::from_str::<Frame>(&json).unwrap(), begun);
        let ended = Frame {
            version: VERSION,
            answer: Answer::Upgrade {
                record: Some(UpgradeRecord {
                    number: 3,
                    outcome: crate::events::UpgradeOutcome::RolledBack,
                    why: Some("the new options were refused".into()),
                    generation: None,
                    started_at_ms: 1_000,
                    ended_at_ms: Some(2_500),
                }),
            },
            ends_within_ms: None,
        };
        let json = serde_json::to_string(&ended).unwrap();
        assert_eq!(
            json,
            r#"{"version":1,"answer":{"kind":"upgrade","record":{"number":3,"outcome":"rolled-back","why":"the new options were refused","generation":null,"started_at_ms":1000,"ended_at_ms":2500}}}"#
        );
        assert_eq!(serde_json::from_str::<Frame>(&json).unwrap(), ended);
        let unknown = r#"{"version":1,"answer":{"kind":"upgrade","record":null}}"#;
        assert_eq!(
            serde_json::from_str::<Frame>(unknown).unwrap().answer,
            Answer::Upgrade { record: None }
        );
    }

    #[test]
    fn a_frame_longer_than_the_limit_is_refused_before_it_is_read() {
        let wire = frame_bytes(&"x".repeat(100)).unwrap();
        let err = read_frame(&mut &wire[..], 50).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(
            err.to_string()
                .contains("102 bytes exceeds the limit of 50")
        );
        assert_eq!(read_frame(&mut &wire[..], 200).unwrap().len(), 102);
        let cut = &wire[..10];
        assert_eq!(
            read_frame(&mut &cut[..], 200).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
