//! What the handover file holds, and its bytes: a header line naming the format and its
//! version (`regiment-handover v1`), then one JSON document: the master's descriptors, by what
//! each one is, and the policy's state, opaque here.
//!
//! The version is read before anything else, so that a master given a format it does not read
//! says which version it found and which it reads, instead of misreading the rest.

use std::os::fd::RawFd;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{HANDOVER_VERSION, HandoverError};

/// The first bytes of every handover file, before the version's digits.
const MAGIC: &[u8] = b"regiment-handover v";

/// The longest header line read: the magic and a version's digits.
const HEADER_MAX: usize = 64;

/// Everything the old master hands the new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Envelope {
    pub(crate) descriptors: DescriptorTable,
    /// What the driver carries over besides its descriptors.
    pub(crate) master: MasterEntry,
    /// The policy's state, as its snapshot serialized it (the policy defines the type).
    pub(crate) policy: serde_json::Value,
}

/// The driver's own state, handed over with its descriptors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MasterEntry {
    /// When the first master of this service was built, in Unix milliseconds: the status's
    /// start, across upgrades.
    pub(crate) started_at_ms: u64,
    /// `CLOCK_MONOTONIC` when the policy's state was taken, in nanoseconds: the new master
    /// subtracts the time the exec took from every deadline (the clock survives the exec).
    pub(crate) snapshot_monotonic_ns: u64,
    /// The names workers get in `LISTEN_FDNAMES`.
    pub(crate) listener_names: String,
    /// Whether the service manager was told `READY=1` already (an upgrade is then a reload).
    pub(crate) notified_ready: bool,
    /// The Unix socket files the master created, removed by the master that stops.
    pub(crate) socket_files: Vec<SocketFileEntry>,
}

/// A Unix socket file a master created, and the identity it had: removed at the end only if
/// it is still that file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SocketFileEntry {
    pub(crate) path: PathBuf,
    pub(crate) device: u64,
    pub(crate) inode: u64,
}

/// Which descriptor number is which of the master's own, as open in the old master when it
/// execs: the same numbers in the new one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DescriptorTable {
    /// The listeners workers share, in the order workers get them (fds 3.. in a worker).
    pub(crate) listeners: Vec<ListenerEntry>,
    pub(crate) control_socket: Option<ControlEntry>,
    pub(crate) admin: Option<ListenerEntry>,
    /// The master's end of each worker's IPC channel.
    pub(crate) workers: Vec<WorkerEntry>,
    /// The programs held open, by generation.
    pub(crate) programs: Vec<ProgramEntry>,
}

/// The socket family of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ListenerKind {
    Tcp,
    Unix,
}

/// A listening socket: the descriptor, its family, and its address as
/// [`crate::listen::Listener::describe`] gives it (`127.0.0.1:3000`, `unix:/run/app.sock`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenerEntry {
    pub(crate) fd: RawFd,
    pub(crate) kind: ListenerKind,
    pub(crate) addr: String,
}

/// The control socket: the descriptor and the file it is reachable at (removed on exit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControlEntry {
    pub(crate) fd: RawFd,
    pub(crate) file: SocketFileEntry,
}

/// One worker's IPC channel, the master's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkerEntry {
    /// The policy's id of the worker (`WorkerId`).
    pub(crate) id: u64,
    pub(crate) pid: u32,
    pub(crate) fd: RawFd,
    /// Bytes its channel task had read and not decoded yet (the start of a frame): the new
    /// master decodes them first.
    pub(crate) pending: Vec<u8>,
}

/// The program of a generation, held open (`O_PATH`), or only its path when spawns execute the
/// path (a script; no execveat). Its device and inode say which file the descriptor must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProgramEntry {
    pub(crate) generation: u64,
    pub(crate) path: PathBuf,
    pub(crate) fd: Option<RawFd>,
    pub(crate) device: u64,
    pub(crate) inode: u64,
}

impl ListenerEntry {
    /// The entry of a listener this master holds.
    pub(crate) fn of(listener: &crate::listen::Listener) -> Self {
        use std::os::fd::{AsFd, AsRawFd};
        ListenerEntry {
            fd: listener.as_fd().as_raw_fd(),
            kind: match listener {
                crate::listen::Listener::Tcp(_) => ListenerKind::Tcp,
                crate::listen::Listener::Unix(_) => ListenerKind::Unix,
            },
            addr: listener.describe(),
        }
    }
}

impl DescriptorTable {
    /// Every descriptor named, with what it is named as (`listener 0 (127.0.0.1:3000)`), in
    /// the table's order.
    pub(crate) fn named(&self) -> Vec<(RawFd, String)> {
        let mut out = Vec::new();
        for (i, l) in self.listeners.iter().enumerate() {
            out.push((l.fd, format!("listener {i} ({})", l.addr)));
        }
        if let Some(c) = &self.control_socket {
            out.push((
                c.fd,
                format!("the control socket ({})", c.file.path.display()),
            ));
        }
        if let Some(a) = &self.admin {
            out.push((a.fd, format!("the admin listener ({})", a.addr)));
        }
        for w in &self.workers {
            out.push((
                w.fd,
                format!("the IPC channel of worker #{} (pid {})", w.id, w.pid),
            ));
        }
        for p in &self.programs {
            if let Some(fd) = p.fd {
                out.push((
                    fd,
                    format!(
                        "the program of generation {} ({})",
                        p.generation,
                        p.path.display()
                    ),
                ));
            }
        }
        out
    }

    /// [`DescriptorTable::named`], refused if a descriptor is named twice or is one of the
    /// standard streams (0, 1, 2: never one of the master's own).
    pub(crate) fn distinct(&self) -> Result<Vec<(RawFd, String)>, HandoverError> {
        let named = self.named();
        for (i, (fd, what)) in named.iter().enumerate() {
            if *fd <= 2 {
                return Err(HandoverError::Descriptor {
                    what: what.clone(),
                    fd: *fd,
                    why: String::from("is not one of the master's own (0, 1 and 2 are stdio)"),
                });
            }
            if let Some((_, first)) = named[..i].iter().find(|(other, _)| other == fd) {
                return Err(HandoverError::NamedTwice {
                    fd: *fd,
                    first: first.clone(),
                    second: what.clone(),
                });
            }
        }
        Ok(named)
    }
}

impl Envelope {
    /// The file's bytes: the header line, then the JSON document.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = format!("regiment-handover v{HANDOVER_VERSION}\n").into_bytes();
        // A `Value` and plain structs: serializing them cannot fail.
        serde_json::to_writer(&mut out, self).expect("an envelope serializes");
        out
    }

    /// Reads the bytes [`Envelope::encode`] wrote; the version first.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, HandoverError> {
        let body = check_header(bytes)?;
        serde_json::from_slice(body).map_err(|e| HandoverError::Malformed(e.to_string()))
    }
}

/// Checks the header line and returns what follows it.
fn check_header(bytes: &[u8]) -> Result<&[u8], HandoverError> {
    let line_end = bytes.iter().take(HEADER_MAX).position(|b| *b == b'\n');
    let (header, body) = match line_end {
        Some(end) => (&bytes[..end], &bytes[end + 1..]),
        None => (&bytes[..bytes.len().min(HEADER_MAX)], &[][..]),
    };
    let Some(digits) = header
        .strip_prefix(MAGIC)
        .filter(|_| line_end.is_some())
        .and_then(|d| std::str::from_utf8(d).ok())
    else {
        return Err(HandoverError::NotAHandover {
            starts_with: String::from_utf8_lossy(header).into_owned(),
        });
    };
    let version: u32 = digits.parse().map_err(|_| HandoverError::NotAHandover {
        starts_with: String::from_utf8_lossy(header).into_owned(),
    })?;
    if !super::reads(version) {
        return Err(HandoverError::UnknownVersion {
            found: version,
            reads: HANDOVER_VERSION,
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            descriptors: DescriptorTable {
                listeners: vec![ListenerEntry {
                    fd: 3,
                    kind: ListenerKind::Tcp,
                    addr: "127.0.0.1:3000".into(),
                }],
                control_socket: Some(ControlEntry {
                    fd: 9,
                    file: SocketFileEntry {
                        path: "/run/app/control.sock".into(),
                        device: 1,
                        inode: 3,
                    },
                }),
                admin: None,
                workers: vec![WorkerEntry {
                    id: 4,
                    pid: 1234,
                    fd: 11,
                    pending: vec![0, 0, 0, 9, b'{'],
                }],
                programs: vec![ProgramEntry {
                    generation: 2,
                    path: "/srv/app".into(),
                    fd: Some(12),
                    device: 1,
                    inode: 2,
                }],
            },
            master: MasterEntry {
                started_at_ms: 1_796_632_007_081,
                snapshot_monotonic_ns: 5_000_000_000,
                listener_names: "regiment0".into(),
                notified_ready: true,
                socket_files: vec![],
            },
            policy: serde_json::json!({"generation": 2}),
        }
    }

    #[test]
    fn an_envelope_reads_back_as_written_and_starts_with_its_version() {
        let bytes = sample().encode();
        assert!(bytes.starts_with(format!("regiment-handover v{HANDOVER_VERSION}\n").as_bytes()));
        assert_eq!(Envelope::decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn an_unknown_version_names_both_versions_and_the_rest_is_not_read() {
        let bytes = b"regiment-handover v999\n{not even json";
        let err = Envelope::decode(bytes).unwrap_err();
        assert_eq!(
            err,
            HandoverError::UnknownVersion {
                found: 999,
                reads: HANDOVER_VERSION
            }
        );
        let text = err.to_string();
        assert!(text.contains("version 999"), "{text}");
        assert!(
            text.contains(&format!("version {HANDOVER_VERSION}")),
            "{text}"
        );
    }

    #[test]
    fn garbage_is_refused_with_what_it_starts_with_never_a_panic() {
        let cases: &[&[u8]] = &[
            b"",
            b"\n",
            b"hello world\n{}",
            b"regiment-handover v\n{}",
            b"regiment-handover vx1\n{}",
            b"regiment-handover v99999999999999999999\n{}",
            b"regiment-handover v1",
            &[0xff; 200],
        ];
        for bytes in cases {
            let err = Envelope::decode(bytes).unwrap_err();
            assert!(
                matches!(err, HandoverError::NotAHandover { .. }),
                "{bytes:?}: {err}"
            );
        }
        let bodies: &[&[u8]] = &[
            b"",
            b"{}",
            b"[1,2]",
            b"{\"descriptors\":{},\"policy\":null}",
            b"{\"descriptors\":{\"listeners\":[{\"fd\":\"3\"}]}}",
        ];
        for body in bodies {
            let mut bytes = b"regiment-handover v1\n".to_vec();
            bytes.extend_from_slice(body);
            let err = Envelope::decode(&bytes).unwrap_err();
            assert!(
                matches!(err, HandoverError::Malformed(_)),
                "{body:?}: {err}"
            );
        }
        // A field this version does not know is a malformed file, not a field to ignore: a
        // later format is a later version.
        let mut value = serde_json::to_value(sample()).unwrap();
        value["descriptors"]["extra"] = serde_json::json!(1);
        let mut bytes = b"regiment-handover v1\n".to_vec();
        bytes.extend_from_slice(value.to_string().as_bytes());
        assert!(matches!(
            Envelope::decode(&bytes),
            Err(HandoverError::Malformed(_))
        ));
    }

    #[test]
    fn the_table_names_each_descriptor_by_what_it_is() {
        let named = sample().descriptors.named();
        let fds: Vec<RawFd> = named.iter().map(|(fd, _)| *fd).collect();
        assert_eq!(fds, [3, 9, 11, 12]);
        assert_eq!(named[0].1, "listener 0 (127.0.0.1:3000)");
        assert!(
            named[2].1.contains("worker #4 (pid 1234)"),
            "{}",
            named[2].1
        );
        assert_eq!(sample().descriptors.distinct().unwrap(), named);
    }

    #[test]
    fn a_descriptor_named_twice_or_a_standard_stream_is_refused() {
        let mut twice = sample().descriptors;
        twice.workers[0].fd = 3;
        let err = twice.distinct().unwrap_err().to_string();
        assert_eq!(
            err,
            "fd 3 is named twice: as listener 0 (127.0.0.1:3000) and as the IPC channel of \
             worker #4 (pid 1234)"
        );
        let mut stdio = sample().descriptors;
        stdio.listeners[0].fd = 1;
        let err = stdio.distinct().unwrap_err().to_string();
        assert!(err.contains("listener 0") && err.contains("fd 1"), "{err}");
    }
}
