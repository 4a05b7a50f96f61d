//! The client socket of an HTTP/2 connection, watched for what the server does to the
//! connection: its first GOAWAY frame, or its end (EOF or error) before any GOAWAY. The load
//! client (`load.rs`) and the gRPC channel (`grpc.rs`) use it; what they count is theirs, in
//! the closure they give. Writes pass through untouched.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What the server did to a watched connection; each is told once per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Its first GOAWAY frame arrived.
    Goaway,
    /// It closed or reset the connection without a GOAWAY first: a lost connection.
    Lost,
}

/// A client socket whose reads are scanned for the server's GOAWAY frames; `tell` hears of
/// each [`Seen`].
pub(crate) struct GoawayWatch<F> {
    io: TcpStream,
    scan: FrameScan,
    goaway: bool,
    ended: bool,
    tell: F,
}

impl<F: FnMut(Seen) + Unpin> GoawayWatch<F> {
    pub(crate) fn new(io: TcpStream, tell: F) -> Self {
        Self {
            io,
            scan: FrameScan::default(),
            goaway: false,
            ended: false,
            tell,
        }
    }

    fn ended_by_server(&mut self) {
        if !self.ended && !self.goaway {
            (self.tell)(Seen::Lost);
        }
        self.ended = true;
    }
}

impl<F: FnMut(Seen) + Unpin> AsyncRead for GoawayWatch<F> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        if let Err(e) = ready!(Pin::new(&mut this.io).poll_read(cx, buf)) {
            this.ended_by_server();
            return Poll::Ready(Err(e));
        }
        let read = &buf.filled()[before..];
        if read.is_empty() && buf.remaining() > 0 {
            this.ended_by_server();
        } else if this.scan.feed(read) && !this.goaway {
            this.goaway = true;
            (this.tell)(Seen::Goaway);
        }
        Poll::Ready(Ok(()))
    }
}

impl<F: Unpin> AsyncWrite for GoawayWatch<F> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Follows the frames a server sends (RFC 9113 §4.1: a 9-byte header whose first 3 bytes are
/// the payload length and 4th the type; the server's preface is a plain SETTINGS frame).
#[derive(Default)]
struct FrameScan {
    header: [u8; 9],
    have: usize,
    /// Payload bytes of the current frame still to skip.
    skip: usize,
}

impl FrameScan {
    const GOAWAY: u8 = 0x7;

    /// Consumes `data`; true if it completed the header of a GOAWAY frame.
    fn feed(&mut self, mut data: &[u8]) -> bool {
        let mut goaway = false;
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            let n = (9 - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == 9 {
                self.have = 0;
                let h = &self.header;
                self.skip = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                goaway |= h[3] == Self::GOAWAY;
            }
        }
        goaway
    }
}

#[cfg(test)]
mod tests {
    use super::FrameScan;

    fn frame(kind: u8, payload: usize) -> Vec<u8> {
        let mut f = vec![
            (payload >> 16) as u8,
            (payload >> 8) as u8,
            payload as u8,
            kind,
            0,
            0,
            0,
            0,
            0,
        ];
        // A payload that looks like a GOAWAY header must not count.
        f.extend(std::iter::repeat_n(0x7, payload));
        f
    }

    #[test]
    fn frame_scan_finds_goaway_across_reads_and_only_there() {
        let mut bytes = frame(0x4, 18); // SETTINGS
        bytes.extend(frame(0x0, 70_000)); // DATA, longer than 64 KiB
        let before_goaway = bytes.len();
        bytes.extend(frame(0x7, 8)); // GOAWAY
        for chunk in [1, 5, 9, 4096] {
            let mut scan = FrameScan::default();
            let mut seen_at = None;
            for (i, piece) in bytes.chunks(chunk).enumerate() {
                if scan.feed(piece) && seen_at.is_none() {
                    seen_at = Some(i * chunk + piece.len());
                }
            }
            let seen_at = seen_at.expect("the GOAWAY was found");
            assert!(seen_at > before_goaway, "chunk {chunk}: found at {seen_at}");
            assert!(
                seen_at <= before_goaway + 9 + chunk,
                "chunk {chunk}: {seen_at}"
            );
        }
        let mut scan = FrameScan::default();
        assert!(!scan.feed(&bytes[..before_goaway]));
    }
}
