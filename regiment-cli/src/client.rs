//! One connection to the master's control socket: the request, then its answers, and every way
//! this can fail, told in words an operator acts on.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use regiment_core::plumbing::control::{
    Answer, Command, ErrorKind, Frame, MAX_ANSWER, Request, VERSION, read_frame, write_frame,
};

use crate::deadline::Deadline;

/// The exit status when the master is busy: nothing was done, ask again.
pub(crate) const EXIT_BUSY: u8 = 4;

pub(crate) struct Connection {
    stream: UnixStream,
    deadline: Deadline,
    /// What the command waits for when the master says how long it may take.
    awaited: &'static str,
}

/// Why a command was not carried out.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No file at the path.
    NoSocket,
    /// The file's mode, or the master's peer check, refused us.
    PermissionDenied(Option<String>),
    /// A file is there, but nothing listens: its master died.
    MasterGone,
    /// The file is no socket: a regular file, a directory, ...
    NotASocket(&'static str),
    /// Every connection the master serves at once is taken.
    Busy(String),
    /// The master closed the connection before its answer was complete.
    ClosedEarly,
    /// The master speaks another version of the protocol.
    Version(String),
    /// The master refused the request (no such slot, stopping, bad request).
    Refused(String),
    /// An answer of the wrong kind or shape: not a regiment master, or a bug.
    Unexpected,
    Io(io::Error),
    /// Upgrade `number` lost its connection when the master executed its new program, and
    /// asking again failed so.
    AfterExec {
        number: u64,
        failure: Box<Failure>,
    },
}

impl Failure {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Failure::Refused(_) => 1,
            Failure::Busy(_) => EXIT_BUSY,
            Failure::AfterExec { failure, .. } => failure.exit_code(),
            _ => 3,
        }
    }

    /// No answer came within [`Connection::wait_at_most`].
    pub(crate) fn is_no_answer(&self) -> bool {
        matches!(self, Failure::Io(e)
            if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }

    pub(crate) fn describe(&self, socket: &Path) -> String {
        let path = socket.display();
        match self {
            Failure::NoSocket => format!(
                "no control socket at {path}: is the master running, with \
                 REGIMENT_CONTROL_SOCKET (or Builder::control_socket) set to this path?"
            ),
            Failure::PermissionDenied(None) => format!(
                "permission denied on {path}: the control socket serves the master's user and \
                 root only"
            ),
            Failure::PermissionDenied(Some(why)) => {
                format!("permission denied by the master at {path}: {why}")
            }
            Failure::MasterGone => format!(
                "the master is gone: nothing listens on {path} (the file of a master that died)"
            ),
            Failure::NotASocket(kind) => format!(
                "{path} is not a socket but {kind}: give the path of the master's control socket \
                 (REGIMENT_CONTROL_SOCKET or Builder::control_socket on the master)"
            ),
            Failure::Busy(why) => why.clone(),
            Failure::ClosedEarly => format!(
                "the master at {path} closed the connection before answering: it stopped or \
                 crashed"
            ),
            Failure::Version(why) => format!(
                "protocol version mismatch with the master at {path}: {why}; use the regiment \
                 command of the master's release"
            ),
            Failure::Refused(why) => why.clone(),
            Failure::Unexpected => {
                format!("the answer from {path} is not one a regiment master gives")
            }
            Failure::Io(e) => format!("talking to the master at {path}: {e}"),
            Failure::AfterExec { number, failure } => format!(
                "upgrade {number}: the master closed the connection (as it does when it executes \
                 its new program) and could not be asked again for the outcome: {}",
                failure.describe(socket)
            ),
        }
    }
}

impl Connection {
    /// Connects and sends `command`; `deadline` is moved by the master's answers.
    pub(crate) fn open(
        socket: &Path,
        command: &Command,
        deadline: Deadline,
    ) -> Result<Self, Failure> {
        let mut stream = UnixStream::connect(socket).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Failure::NoSocket,
            io::ErrorKind::PermissionDenied => Failure::PermissionDenied(None),
            io::ErrorKind::ConnectionRefused => match not_a_socket(socket) {
                Some(kind) => Failure::NotASocket(kind),
                None => Failure::MasterGone,
            },
            _ => Failure::Io(e),
        })?;
        let request = Request {
            version: VERSION,
            command: command.clone(),
        };
        // A master that refuses us answers, then closes: its answer says why, so a failed
        // write is left for `answer` to explain.
        let _ = write_frame(&mut stream, &request);
        let awaited = match command {
            Command::Reload => {
                "the rollout did not end within the time the master gives it (its rollout_timeout)"
            }
            Command::Stop => "the master did not exit within its drain timeout",
            Command::Upgrade | Command::UpgradeOutcome { .. } => {
                "the upgrade did not end within the time the master gives it (its start timeout \
                 for the preflight, 70s for the exec, its rollout_timeout)"
            }
            _ => "no answer within the time the master said",
        };
        Ok(Self {
            stream,
            deadline,
            awaited,
        })
    }

    /// The next answer; a refusal is a [`Failure`].
    pub(crate) fn answer(&mut self) -> Result<Answer, Failure> {
        let body = read_frame(&mut self.stream, MAX_ANSWER).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => Failure::ClosedEarly,
            io::ErrorKind::InvalidData => Failure::Unexpected,
            _ => Failure::Io(e),
        })?;
        // The version first: a master of another release may answer in another shape.
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| Failure::Unexpected)?;
        match value.get("version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(VERSION) => {}
            Some(v) => {
                return Err(Failure::Version(format!(
                    "the master speaks version {v}, this command {VERSION}"
                )));
            }
            None => return Err(Failure::Unexpected),
        }
        let frame: Frame = serde_json::from_value(value).map_err(|_| Failure::Unexpected)?;
        if let Some(ms) = frame.ends_within_ms {
            self.deadline
                .extend(Duration::from_millis(ms), self.awaited);
        }
        match frame.answer {
            Answer::Error { error, message } => Err(match error {
                ErrorKind::Version => Failure::Version(message),
                ErrorKind::PermissionDenied => Failure::PermissionDenied(Some(message)),
                ErrorKind::BadRequest | ErrorKind::Refused => Failure::Refused(message),
                ErrorKind::Busy => Failure::Busy(message),
            }),
            answer => Ok(answer),
        }
    }

    /// Bounds each wait for an answer, if `wait` is given: past it, [`Connection::answer`]
    /// fails with [`Failure::Io`] of kind `WouldBlock` (see [`Failure::is_no_answer`]).
    pub(crate) fn wait_at_most(&self, wait: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(wait)
    }

    /// Waits for the master to close the connection: it has stopped.
    pub(crate) fn wait_closed(&mut self) -> Result<(), Failure> {
        match self.answer() {
            Err(Failure::ClosedEarly) => Ok(()),
            Err(failure) => Err(failure),
            Ok(_) => Err(Failure::Unexpected),
        }
    }
}

/// What the file at `path` is, if it is there and no socket: a master's socket refuses a
/// connection only when its master died.
fn not_a_socket(path: &Path) -> Option<&'static str> {
    let kind = std::fs::metadata(path).ok()?.file_type();
    Some(if kind.is_socket() {
        return None;
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_file() {
        "a regular file"
    } else {
        "a file of another kind"
    })
}
