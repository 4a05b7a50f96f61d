//! The private protocol between the master and each worker.
//!
//! Every message travels in a frame: a 4-byte big-endian length followed by that many bytes of
//! JSON, `{"v":1,"type":"...", ...}`. Frames are at most [`MAX_FRAME`] bytes. The master treats
//! every frame from a worker as untrusted: the [`codec::FrameDecoder`] never fails on content, it
//! yields [`Incoming::Invalid`] for a frame it cannot use (oversized, not JSON, unknown type,
//! other version) and carries on with the next one.
//!
//! ```
//! use regiment_core::protocol::{WorkerMessage, encode};
//!
//! let frame = encode(&WorkerMessage::ReplaceMe { reason: "rss 812 MB > 750 MB".into() });
//! assert_eq!(&frame[4..], br#"{"v":1,"type":"replace-me","reason":"rss 812 MB > 750 MB"}"#);
//! ```

pub mod codec;

use serde::{Deserialize, Serialize};

/// The protocol version spoken by this build. A frame of another version is reported, not obeyed.
///
/// ```
/// use regiment_core::protocol::{Incoming, WorkerMessage, VERSION, decode};
/// assert_eq!(VERSION, 1);
/// // A frame of another version (a worker of a newer build) is reported, not obeyed.
/// let newer = format!(r#"{{"v":{},"type":"ready"}}"#, VERSION + 1);
/// assert!(matches!(decode::<WorkerMessage>(newer.as_bytes()), Incoming::Invalid(_)));
/// ```
pub const VERSION: u32 = 1;

/// The largest frame either side accepts, in bytes (length prefix excluded).
///
/// ```
/// use regiment_core::protocol::{MAX_FRAME, MAX_REASON, WorkerMessage, encode};
/// // The longest reason the master keeps still fits in a frame, with room to spare.
/// let frame = encode(&WorkerMessage::ReplaceMe { reason: "x".repeat(MAX_REASON) });
/// assert!(frame.len() - 4 < MAX_FRAME);
/// ```
pub const MAX_FRAME: usize = 64 * 1024;

/// The longest replacement reason the master keeps; longer ones are cut at a char boundary.
///
/// ```
/// use regiment_core::protocol::MAX_REASON;
/// // Enough for "criterion, figure and threshold"; keep reasons to one line.
/// let reason = format!("rss {} MB > {} MB", 812, 750);
/// assert!(reason.len() <= MAX_REASON);
/// ```
pub const MAX_REASON: usize = 512;

/// What a worker tells the master.
///
/// ```
/// use regiment_core::protocol::{WorkerMessage, encode};
/// // Heartbeats carry the figures `Handle::status` shows.
/// let frame = encode(&WorkerMessage::Heartbeat { rss: 1 << 20, requests: 10, in_flight: 1 });
/// let body = std::str::from_utf8(&frame[4..]).unwrap();
/// assert_eq!(body, r#"{"v":1,"type":"heartbeat","rss":1048576,"requests":10,"in_flight":1}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum WorkerMessage {
    /// The worker is ready to take traffic (per its readiness mode).
    Ready,
    /// The worker asks to be replaced. The master starts a replacement and drains this worker
    /// once the replacement is ready. Idempotent: repeats are ignored.
    ReplaceMe {
        /// Why, for the master's events and status: criterion, figure and threshold.
        reason: String,
    },
    /// Periodic liveness and load figures.
    Heartbeat {
        /// Resident set size in bytes, 0 where unknown.
        rss: u64,
        /// Requests accepted since the worker started.
        requests: u64,
        /// Requests being served now.
        in_flight: u64,
    },
}

/// What the master tells a worker.
///
/// ```
/// use regiment_core::protocol::{Incoming, MasterMessage, decode};
/// // What a worker reads when it is to stop: 30 s before the master sends SIGKILL.
/// let body = br#"{"v":1,"type":"drain","deadline_ms":30000}"#;
/// let drain = MasterMessage::Drain { deadline_ms: 30_000 };
/// assert_eq!(decode::<MasterMessage>(body), Incoming::Message(drain));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum MasterMessage {
    /// Stop accepting, finish what is in flight, exit. The master sends SIGKILL when
    /// `deadline_ms` milliseconds have passed since it sent this.
    Drain {
        /// Milliseconds left before the master kills the worker.
        deadline_ms: u64,
    },
}

#[derive(Serialize)]
struct EnvelopeOut<'a, M> {
    v: u32,
    #[serde(flatten)]
    msg: &'a M,
}

#[derive(Deserialize)]
struct Version {
    v: u32,
}

/// Encodes one message as a complete frame (length prefix included).
///
/// ```
/// use regiment_core::protocol::{MasterMessage, encode};
/// let frame = encode(&MasterMessage::Drain { deadline_ms: 500 });
/// // The 4-byte big-endian length prefix counts the JSON body after it.
/// let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
/// assert_eq!(len, frame.len() - 4);
/// ```
pub fn encode<M: Serialize>(msg: &M) -> Vec<u8> {
    let body = serde_json::to_vec(&EnvelopeOut { v: VERSION, msg })
        .expect("protocol messages always serialize");
    debug_assert!(body.len() <= MAX_FRAME);
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// One frame as received: a message, or why it was unusable.
///
/// ```
/// use regiment_core::protocol::{Incoming, WorkerMessage, decode};
/// // The master logs an invalid frame and reads on: a buggy worker cannot stop it.
/// match decode::<WorkerMessage>(b"not json") {
///     Incoming::Message(m) => panic!("accepted {m:?}"),
///     Incoming::Invalid(why) => assert!(why.starts_with("not a protocol message")),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming<M> {
    /// A well-formed message of this version.
    Message(M),
    /// A frame that was skipped, with a description for the log.
    Invalid(String),
}

/// Parses the body of one frame. Never fails: what cannot be used becomes [`Incoming::Invalid`].
///
/// ```
/// use regiment_core::protocol::{Incoming, WorkerMessage, decode};
/// assert_eq!(decode(br#"{"v":1,"type":"ready"}"#), Incoming::Message(WorkerMessage::Ready));
/// // An unknown message type is reported, not an error that ends the channel.
/// assert!(matches!(decode::<WorkerMessage>(br#"{"v":1,"type":"reboot"}"#), Incoming::Invalid(_)));
/// ```
pub fn decode<M: for<'de> Deserialize<'de>>(body: &[u8]) -> Incoming<M> {
    match serde_json::from_slice::<Version>(body) {
        Ok(Version { v: VERSION }) => {}
        Ok(Version { v }) => {
            return Incoming::Invalid(format!(
                "protocol version {v}, this build speaks version {VERSION}"
            ));
        }
        Err(e) => return Incoming::Invalid(format!("not a protocol message: {e}")),
    }
    match serde_json::from_slice::<M>(body) {
        Ok(m) => Incoming::Message(m),
        Err(e) => Incoming::Invalid(format!("unknown or malformed message: {e}")),
    }
}

/// Cuts `reason` to at most [`MAX_REASON`] bytes on a char boundary.
pub(crate) fn bounded_reason(mut reason: String) -> String {
    if reason.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_message() {
        for m in [
            WorkerMessage::Ready,
            WorkerMessage::ReplaceMe { reason: "x".into() },
            WorkerMessage::Heartbeat {
                rss: 1,
                requests: 2,
                in_flight: 3,
            },
        ] {
            let f = encode(&m);
            assert_eq!(decode::<WorkerMessage>(&f[4..]), Incoming::Message(m));
        }
        let f = encode(&MasterMessage::Drain {
            deadline_ms: 30_000,
        });
        assert_eq!(
            decode::<MasterMessage>(&f[4..]),
            Incoming::Message(MasterMessage::Drain {
                deadline_ms: 30_000
            })
        );
    }

    #[test]
    fn rejects_other_versions_unknown_types_and_garbage() {
        let cases: [&[u8]; 4] = [
            br#"{"v":2,"type":"ready"}"#,
            br#"{"v":1,"type":"launch-missiles"}"#,
            br#"{"type":"ready"}"#,
            b"\xff\x00garbage",
        ];
        for body in cases {
            assert!(
                matches!(decode::<WorkerMessage>(body), Incoming::Invalid(_)),
                "{:?} accepted",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn bounds_reasons_on_char_boundaries() {
        let r = bounded_reason("é".repeat(MAX_REASON));
        assert!(r.len() <= MAX_REASON + '…'.len_utf8());
        assert_eq!(bounded_reason("short".into()), "short");
    }
}
