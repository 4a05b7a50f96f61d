//! Recognises the client connection preface of HTTP/2 (RFC 9113 §3.4) in the first bytes a
//! connection reads: the 24-byte magic `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, then a SETTINGS
//! frame. A connection past it speaks HTTP/2 and may stay idle for as long as its client likes;
//! one that never gets that far is cut by the first-request rule (see [`crate::connection`]).

/// The fixed part of the client preface.
const MAGIC: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The type of a SETTINGS frame, the one that must follow the magic.
const SETTINGS: u8 = 0x4;
/// The size of a frame header.
const FRAME_HEADER: usize = 9;

/// How far a connection got into the preface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Preface {
    /// Not known yet: every byte so far matched.
    Undecided,
    /// The magic is complete; its SETTINGS frame is not yet.
    Magic,
    /// The whole client preface: magic and SETTINGS frame.
    Complete,
    /// The bytes are not (or not a valid) HTTP/2 client preface.
    Not,
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    /// Bytes of the magic matched so far.
    Magic(usize),
    /// Bytes of the SETTINGS frame header read so far.
    Header(usize),
    /// Bytes of the SETTINGS payload still to come.
    Payload(usize),
    Done(Preface),
}

/// Follows the first bytes of a connection; see [`Preface`].
#[derive(Debug, Clone)]
pub(crate) struct PrefaceScan {
    stage: Stage,
    header: [u8; FRAME_HEADER],
}

impl Default for PrefaceScan {
    fn default() -> Self {
        Self {
            stage: Stage::Magic(0),
            header: [0; FRAME_HEADER],
        }
    }
}

impl PrefaceScan {
    /// Takes the next bytes read; returns how far the preface got.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Preface {
        while !data.is_empty() {
            match self.stage {
                Stage::Magic(seen) => {
                    let n = (MAGIC.len() - seen).min(data.len());
                    if data[..n] != MAGIC[seen..seen + n] {
                        self.stage = Stage::Done(Preface::Not);
                        break;
                    }
                    self.stage = if seen + n == MAGIC.len() {
                        Stage::Header(0)
                    } else {
                        Stage::Magic(seen + n)
                    };
                    data = &data[n..];
                }
                Stage::Header(have) => {
                    let n = (FRAME_HEADER - have).min(data.len());
                    self.header[have..have + n].copy_from_slice(&data[..n]);
                    data = &data[n..];
                    if have + n < FRAME_HEADER {
                        self.stage = Stage::Header(have + n);
                    } else if self.header[3] != SETTINGS {
                        self.stage = Stage::Done(Preface::Not);
                    } else {
                        let [a, b, c, ..] = self.header;
                        let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
                        self.stage = if len == 0 {
                            Stage::Done(Preface::Complete)
                        } else {
                            Stage::Payload(len)
                        };
                    }
                }
                Stage::Payload(left) => {
                    let n = left.min(data.len());
                    data = &data[n..];
                    self.stage = if n == left {
                        Stage::Done(Preface::Complete)
                    } else {
                        Stage::Payload(left - n)
                    };
                }
                Stage::Done(_) => break,
            }
        }
        self.preface()
    }

    fn preface(&self) -> Preface {
        match self.stage {
            Stage::Magic(_) => Preface::Undecided,
            Stage::Header(_) | Stage::Payload(_) => Preface::Magic,
            Stage::Done(p) => p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The magic, then a SETTINGS frame with one setting (6 bytes), then a WINDOW_UPDATE.
    fn preface_and_more() -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend([0, 0, 6, SETTINGS, 0, 0, 0, 0, 0]);
        bytes.extend([0, 3, 0, 0, 0, 100]);
        bytes.extend([0, 0, 4, 0x8, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        bytes
    }

    #[test]
    fn the_whole_preface_completes_in_one_read_or_byte_by_byte() {
        let bytes = preface_and_more();
        assert_eq!(PrefaceScan::default().feed(&bytes), Preface::Complete);

        let complete_at = MAGIC.len() + FRAME_HEADER + 6;
        let mut scan = PrefaceScan::default();
        for (i, b) in bytes.iter().enumerate() {
            let seen = i + 1;
            let expected = if seen < MAGIC.len() {
                Preface::Undecided
            } else if seen < complete_at {
                Preface::Magic
            } else {
                Preface::Complete
            };
            assert_eq!(scan.feed(&[*b]), expected, "after {seen} bytes");
        }
    }

    #[test]
    fn an_empty_settings_frame_completes_it() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend([0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);
        assert_eq!(PrefaceScan::default().feed(&bytes), Preface::Complete);
    }

    #[test]
    fn http1_and_broken_prefaces_are_not_http2() {
        assert_eq!(
            PrefaceScan::default().feed(b"GET / HTTP/1.1\r\n"),
            Preface::Not
        );
        // A prefix that parts from the magic late.
        assert_eq!(PrefaceScan::default().feed(b"PRI * HTTP/1.1"), Preface::Not);
        let mut scan = PrefaceScan::default();
        assert_eq!(scan.feed(b"PRI * HTTP/2.0"), Preface::Undecided);
        assert_eq!(scan.feed(b"\r\n\r\nSM\r\n\r\n"), Preface::Magic);
        // The magic followed by another frame than SETTINGS.
        assert_eq!(scan.feed(&[0, 0, 0, 0x6, 0, 0, 0, 0, 0]), Preface::Not);
        // Decided for good.
        assert_eq!(scan.feed(&preface_and_more()), Preface::Not);
    }
}
