//! The private protocol between the master and each worker.
//!
//! Every message travels in a frame: a 4-byte big-endian length followed by that many bytes of
//! JSON, `{"v":1,"type":"...", ...}`. Frames are at most [`MAX_FRAME`] bytes. The master treats
//! every frame from a worker as untrusted: the [`codec::FrameDecoder`] never fails on content, it
//! yields [`Incoming::Invalid`] for a frame it cannot use (oversized, not JSON, unknown type,
//! other version) and carries on with the next one.
//!
//! Private to the crate: a master only talks to workers spawned from its own program. (The
//! end-to-end tests write raw frames through [`crate::plumbing`].) The unit tests below pin the
//! bytes on the wire.

pub(crate) mod bounded;
pub(crate) mod codec;
mod criterion;
mod report;

use serde::{Deserialize, Serialize};

pub use criterion::CriterionKind;
pub(crate) use report::{ThreadStack, WorkerReport};

/// The protocol version spoken by this build. A frame of another version (a worker of a newer
/// build) is reported, not obeyed.
pub(crate) const VERSION: u32 = 1;

/// The largest frame either side accepts, in bytes (length prefix excluded).
pub(crate) const MAX_FRAME: usize = 64 * 1024;

/// The longest replacement reason the master keeps; longer ones are cut at a char boundary.
/// Enough for "criterion, figure and threshold" (`rss 812 MB > 750 MB`).
pub(crate) const MAX_REASON: usize = 512;

/// What a worker tells the master. Heartbeats carry the figures `Handle::status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum WorkerMessage {
    /// The worker is ready to take traffic (per its readiness mode).
    Ready,
    /// The worker asks to be replaced. The master starts a replacement and drains this worker
    /// once the replacement is ready. Idempotent: repeats are ignored.
    ReplaceMe {
        /// Which criterion asked, for the master's metrics. Not written when unspecified, and
        /// absent from workers of earlier builds: read as unspecified.
        #[serde(default, skip_serializing_if = "CriterionKind::is_unspecified")]
        criterion: CriterionKind,
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
        /// Responses with a 5xx status since the worker started (absent from older workers).
        #[serde(default)]
        responses_5xx: u64,
        /// Requests whose service returned an error instead of a response (never, for an
        /// axum `Router`) since the worker started.
        #[serde(default)]
        failures: u64,
        /// How many of the requests that finished since the worker's previous heartbeat took
        /// the time of each of its latency buckets (see `crate::latency`): the master's p50 and
        /// p99 of the interval. Not sent for an interval in which no request finished, nor by
        /// workers of earlier builds: latency unknown. The master reads only as many buckets as
        /// it has (the frame bounds the list): other counts are logged and left unknown.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        latency: Option<Vec<u64>>,
    },
    /// The worker gives up its drain at its own deadline and exits with what is still open:
    /// the requests it leaves unanswered (counted as failures in the heartbeat it sent just
    /// before) and the connections it cuts. A master of an earlier build, which does not know
    /// it, reports it as an invalid message and carries on.
    DrainAbandoned {
        /// Requests in flight, left unanswered.
        in_flight: u64,
        /// Connections still open, cut as the worker exits.
        connections: u64,
    },
    /// What the worker is doing, as the master asked (`MasterMessage::Report`) before it
    /// kills it. A master of an earlier build never asks.
    Report(WorkerReport),
}

/// What the master tells a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub(crate) enum MasterMessage {
    /// Stop accepting, finish what is in flight, exit. The master sends SIGKILL when
    /// `deadline_ms` milliseconds have passed since it wrote this frame.
    Drain {
        /// Milliseconds left before the master kills the worker, measured by the master as it
        /// writes the frame. Time left rather than an instant: the two processes need not
        /// share a clock (only Linux's `CLOCK_MONOTONIC` is shared, and not across time
        /// namespaces); the worker, counting from when it reads the frame, errs late by the
        /// frame's transit only.
        deadline_ms: u64,
    },
    /// Say what you are doing (your requests in flight, your threads' stacks) within
    /// `deadline_ms` milliseconds: the master is about to kill you, and keeps your answer in its
    /// report. A worker of an earlier build reports it as unusable, and the report holds what
    /// `/proc` tells.
    Report {
        /// Milliseconds left for the answer, measured as for [`MasterMessage::Drain`].
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

/// Encodes one message as a complete frame: the 4-byte big-endian length of the JSON body,
/// then the body.
pub fn encode<M: Serialize>(msg: &M) -> Vec<u8> {
    let body = serde_json::to_vec(&EnvelopeOut { v: VERSION, msg })
        .expect("protocol messages always serialize");
    debug_assert!(body.len() <= MAX_FRAME);
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// One frame as received: a message, or why it was unusable. The master logs an invalid frame
/// and reads on: a buggy worker cannot stop it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incoming<M> {
    /// A well-formed message of this version.
    Message(M),
    /// A frame that was skipped, with a description for the log.
    Invalid(String),
}

/// Parses the body of one frame. Never fails: what cannot be used (an unknown message type
/// too) becomes [`Incoming::Invalid`], not an error that ends the channel.
pub(crate) fn decode<M: for<'de> Deserialize<'de>>(body: &[u8]) -> Incoming<M> {
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
pub(crate) fn bounded_reason(reason: String) -> String {
    bounded::cut(reason, MAX_REASON)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes on the wire, which workers of another build of the same program must read.
    #[test]
    fn frames_are_a_big_endian_length_and_versioned_json() {
        let frame = encode(&WorkerMessage::ReplaceMe {
            criterion: CriterionKind::MemoryFootprint,
            reason: "rss 812 MB > 750 MB".into(),
        });
        assert_eq!(
            &frame[4..],
            br#"{"v":1,"type":"replace-me","criterion":{"kind":"memory-footprint"},"reason":"rss 812 MB > 750 MB"}"#
        );
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        assert_eq!(
            &encode(&WorkerMessage::ReplaceMe {
                criterion: CriterionKind::Custom {
                    name: "ServerErrors".into()
                },
                reason: "server-errors: 50 consecutive 5xx >= 50".into(),
            })[4..],
            br#"{"v":1,"type":"replace-me","criterion":{"kind":"custom","name":"ServerErrors"},"reason":"server-errors: 50 consecutive 5xx >= 50"}"#
        );
        // An application's own request names no criterion: the frame of earlier builds.
        assert_eq!(
            &encode(&WorkerMessage::ReplaceMe {
                criterion: CriterionKind::Unspecified,
                reason: "cache corrupt".into(),
            })[4..],
            br#"{"v":1,"type":"replace-me","reason":"cache corrupt"}"#
        );
        let frame = encode(&WorkerMessage::Heartbeat {
            rss: 1 << 20,
            requests: 10,
            in_flight: 1,
            responses_5xx: 2,
            failures: 0,
            latency: None,
        });
        assert_eq!(
            &frame[4..],
            br#"{"v":1,"type":"heartbeat","rss":1048576,"requests":10,"in_flight":1,"responses_5xx":2,"failures":0}"#
        );
        // The requests of the interval by latency bucket, once some finished.
        let frame = encode(&WorkerMessage::Heartbeat {
            rss: 1 << 20,
            requests: 10,
            in_flight: 1,
            responses_5xx: 2,
            failures: 0,
            latency: Some(vec![7, 2, 0, 1]),
        });
        assert_eq!(
            &frame[4..],
            br#"{"v":1,"type":"heartbeat","rss":1048576,"requests":10,"in_flight":1,"responses_5xx":2,"failures":0,"latency":[7,2,0,1]}"#
        );
        // A worker of an earlier build sends no response classes: read as zero.
        assert_eq!(
            decode::<WorkerMessage>(
                br#"{"v":1,"type":"heartbeat","rss":1,"requests":2,"in_flight":0}"#
            ),
            Incoming::Message(WorkerMessage::Heartbeat {
                rss: 1,
                requests: 2,
                in_flight: 0,
                responses_5xx: 0,
                failures: 0,
                latency: None,
            })
        );
        assert_eq!(
            &encode(&WorkerMessage::Ready)[4..],
            br#"{"v":1,"type":"ready"}"#
        );
        assert_eq!(
            &encode(&WorkerMessage::DrainAbandoned {
                in_flight: 2,
                connections: 3
            })[4..],
            br#"{"v":1,"type":"drain-abandoned","in_flight":2,"connections":3}"#
        );
        // What a worker reads when it is to stop: 30 s before the master sends SIGKILL.
        assert_eq!(
            decode::<MasterMessage>(br#"{"v":1,"type":"drain","deadline_ms":30000}"#),
            Incoming::Message(MasterMessage::Drain {
                deadline_ms: 30_000
            })
        );
        assert_eq!(VERSION, 1);
    }

    /// A worker of an earlier build names no criterion, one of a later build may name a kind
    /// this build does not know: either way the request stands, its criterion unspecified.
    #[test]
    fn a_replacement_request_without_a_known_criterion_still_reads() {
        for body in [
            br#"{"v":1,"type":"replace-me","reason":"request-count: 3 requests >= 3"}"#.as_slice(),
            br#"{"v":1,"type":"replace-me","criterion":{"kind":"cpu-time"},"reason":"request-count: 3 requests >= 3"}"#,
            br#"{"v":1,"type":"replace-me","criterion":{"kind":"cpu-time","cores":2},"reason":"request-count: 3 requests >= 3"}"#,
        ] {
            assert_eq!(
                decode::<WorkerMessage>(body),
                Incoming::Message(WorkerMessage::ReplaceMe {
                    criterion: CriterionKind::Unspecified,
                    reason: "request-count: 3 requests >= 3".into(),
                }),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// A criterion that is not one (a worker gone wrong) makes the frame unusable, reported and
    /// skipped like any malformed message.
    #[test]
    fn a_malformed_criterion_is_an_invalid_frame() {
        for body in [
            br#"{"v":1,"type":"replace-me","criterion":"memory-footprint","reason":"r"}"#
                .as_slice(),
            br#"{"v":1,"type":"replace-me","criterion":{"kind":"custom"},"reason":"r"}"#,
            br#"{"v":1,"type":"replace-me","criterion":{"kind":"custom","name":7},"reason":"r"}"#,
            br#"{"v":1,"type":"replace-me","criterion":null,"reason":"r"}"#,
            br#"{"v":1,"type":"replace-me","criterion":{"kind":"max-age"}}"#,
        ] {
            assert!(
                matches!(decode::<WorkerMessage>(body), Incoming::Invalid(why) if why.starts_with("unknown or malformed message")),
                "{} accepted",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn bounds_custom_criterion_names_and_leaves_other_kinds_alone() {
        use criterion::MAX_CRITERION_NAME;
        let long = CriterionKind::Custom {
            name: "é".repeat(MAX_CRITERION_NAME),
        };
        let CriterionKind::Custom { name } = long.bounded() else {
            panic!("still custom");
        };
        assert!(name.len() <= MAX_CRITERION_NAME + '…'.len_utf8(), "{name}");
        assert!(name.ends_with('…'));
        let short = CriterionKind::Custom {
            name: "ServerErrors".into(),
        };
        assert_eq!(short.clone().bounded(), short);
        assert_eq!(
            CriterionKind::RequestCount.bounded(),
            CriterionKind::RequestCount
        );
        // The longest name kept, with the longest reason kept, fits in a frame.
        let frame = encode(&WorkerMessage::ReplaceMe {
            criterion: CriterionKind::Custom {
                name: "é".repeat(MAX_CRITERION_NAME),
            }
            .bounded(),
            reason: bounded_reason("é".repeat(MAX_REASON)),
        });
        assert!(frame.len() - 4 < MAX_FRAME);
    }

    #[test]
    fn the_longest_reason_kept_fits_in_a_frame() {
        let frame = encode(&WorkerMessage::ReplaceMe {
            criterion: CriterionKind::Unspecified,
            reason: bounded_reason("é".repeat(MAX_REASON)),
        });
        assert!(frame.len() - 4 < MAX_FRAME);
        assert!("rss 812 MB > 750 MB".len() <= MAX_REASON);
    }

    #[test]
    fn round_trips_every_message() {
        for m in [
            WorkerMessage::Ready,
            WorkerMessage::ReplaceMe {
                criterion: CriterionKind::Unspecified,
                reason: "x".into(),
            },
            WorkerMessage::ReplaceMe {
                criterion: CriterionKind::RequestCount,
                reason: "x".into(),
            },
            WorkerMessage::ReplaceMe {
                criterion: CriterionKind::MemoryFootprint,
                reason: "x".into(),
            },
            WorkerMessage::ReplaceMe {
                criterion: CriterionKind::MaxAge,
                reason: "x".into(),
            },
            WorkerMessage::ReplaceMe {
                criterion: CriterionKind::Custom { name: "n".into() },
                reason: "x".into(),
            },
            WorkerMessage::Heartbeat {
                rss: 1,
                requests: 2,
                in_flight: 3,
                responses_5xx: 4,
                failures: 5,
                latency: None,
            },
            WorkerMessage::Heartbeat {
                rss: 1,
                requests: 2,
                in_flight: 3,
                responses_5xx: 4,
                failures: 5,
                latency: Some(vec![1; crate::latency::BUCKETS]),
            },
            WorkerMessage::DrainAbandoned {
                in_flight: 1,
                connections: 2,
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
        let newer = format!(r#"{{"v":{},"type":"ready"}}"#, VERSION + 1);
        let cases: [&[u8]; 5] = [
            newer.as_bytes(),
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
        // The description says what was wrong, for the master's log and events.
        assert!(matches!(
            decode::<WorkerMessage>(b"not json"),
            Incoming::Invalid(why) if why.starts_with("not a protocol message")
        ));
        assert!(matches!(
            decode::<WorkerMessage>(br#"{"v":2,"type":"ready"}"#),
            Incoming::Invalid(why) if why.contains("protocol version 2")
        ));
    }

    /// A latency that is not a list of counts makes the heartbeat unusable, reported and
    /// skipped like any malformed message; a list of another length is read (the master
    /// judges it).
    #[test]
    fn a_malformed_latency_is_an_invalid_frame() {
        for body in [
            br#"{"v":1,"type":"heartbeat","rss":1,"requests":2,"in_flight":0,"latency":"fast"}"#
                .as_slice(),
            br#"{"v":1,"type":"heartbeat","rss":1,"requests":2,"in_flight":0,"latency":[-1]}"#,
            br#"{"v":1,"type":"heartbeat","rss":1,"requests":2,"in_flight":0,"latency":[1.5]}"#,
        ] {
            assert!(
                matches!(decode::<WorkerMessage>(body), Incoming::Invalid(why) if why.starts_with("unknown or malformed message")),
                "{} accepted",
                String::from_utf8_lossy(body)
            );
        }
        assert!(matches!(
            decode::<WorkerMessage>(
                br#"{"v":1,"type":"heartbeat","rss":1,"requests":2,"in_flight":0,"latency":[1,2]}"#
            ),
            Incoming::Message(WorkerMessage::Heartbeat { latency: Some(l), .. }) if l == [1, 2]
        ));
    }

    #[test]
    fn bounds_reasons_on_char_boundaries() {
        let r = bounded_reason("é".repeat(MAX_REASON));
        assert!(r.len() <= MAX_REASON + '…'.len_utf8());
        assert_eq!(bounded_reason("short".into()), "short");
    }
}
