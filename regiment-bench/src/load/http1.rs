//! HTTP/1.1 on the bare socket: the request written as prepared bytes, the answer parsed with
//! `httparse`, the body counted (Content-Length, chunked, or up to EOF) and dropped.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Attempt, Outcome, Protocol, ThreadRun, drive};

/// An open connection and what it has read past the last answer.
struct Open {
    stream: TcpStream,
    buf: BytesMut,
    /// Answers read on it: a reused connection may be found closed by the server, a new one
    /// may not.
    answered: u64,
}

/// Whether a connection stays open after an answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    Open,
    Close,
}

/// One connection's loop: requests one after the other until the run is over.
pub(super) async fn connection(thread: &ThreadRun, index: usize) {
    let host = thread.plan.addr.to_string();
    let close = thread.plan.protocol == Protocol::NewConnection;
    let requests: Vec<Vec<u8>> = thread
        .plan
        .paths
        .iter()
        .map(|p| {
            let mut r = format!("GET {p} HTTP/1.1\r\nHost: {host}\r\n");
            if close {
                r.push_str("Connection: close\r\n");
            }
            r.push_str("\r\n");
            r.into_bytes()
        })
        .collect();
    drive(thread, index, async |open: &mut Option<Open>, path| {
        let attempt = exchange(open, thread, &requests[path]).await;
        if close {
            *open = None;
        }
        attempt
    })
    .await;
}

/// Sends `request` on the open connection (opening one if needed) and reads its answer.
async fn exchange(open: &mut Option<Open>, thread: &ThreadRun, request: &[u8]) -> Attempt {
    if open.is_none() {
        let stream = match TcpStream::connect(thread.plan.addr).await {
            Ok(s) => s,
            Err(_) => return Attempt::Failed(Outcome::ConnectError),
        };
        let _ = stream.set_nodelay(true);
        *open = Some(Open {
            stream,
            buf: BytesMut::with_capacity(4096),
            answered: 0,
        });
    }
    let conn = open.as_mut().expect("opened above");
    let reused = conn.answered > 0;
    if conn.stream.write_all(request).await.is_err() {
        return if reused {
            Attempt::Retry
        } else {
            Attempt::Failed(Outcome::Reset)
        };
    }
    let mut read_any = false;
    loop {
        match parse(&conn.buf) {
            Parsed::Whole { len, status, keep } => {
                conn.buf.advance(len);
                conn.answered += 1;
                if keep == Keep::Close {
                    *open = None;
                }
                return Attempt::Answered(status);
            }
            Parsed::Invalid => return Attempt::Failed(Outcome::Reset),
            Parsed::Partial => {}
            Parsed::UntilEof { status } => {
                // No length: the body ends with the connection.
                match conn.stream.read_buf(&mut conn.buf).await {
                    Ok(0) => {
                        *open = None;
                        return Attempt::Answered(status);
                    }
                    Ok(_) => {
                        conn.buf.clear();
                        continue;
                    }
                    Err(_) => return Attempt::Failed(Outcome::Reset),
                }
            }
        }
        conn.buf.reserve(4096);
        match conn.stream.read_buf(&mut conn.buf).await {
            Ok(n) if n > 0 => read_any = true,
            // EOF or reset before any byte of the answer on a connection that answered
            // before: the server closed it while idle (a draining worker does).
            _ if !read_any && conn.buf.is_empty() && reused => return Attempt::Retry,
            _ => return Attempt::Failed(Outcome::Reset),
        }
    }
}

enum Parsed {
    /// A whole answer of `len` bytes at the start of the buffer.
    Whole {
        len: usize,
        status: u16,
        keep: Keep,
    },
    /// Headers whole, no length: the body runs to EOF.
    UntilEof {
        status: u16,
    },
    Partial,
    Invalid,
}

fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let head = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Invalid,
    };
    let status = res.code.unwrap_or(0);
    let mut length = None;
    let mut chunked = false;
    let mut keep = Keep::Open;
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_none() {
                return Parsed::Invalid;
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h.value.eq_ignore_ascii_case(b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection")
            && h.value.eq_ignore_ascii_case(b"close")
        {
            keep = Keep::Close;
        }
    }
    // 1xx, 204 and 304 have no body (RFC 9112 §6.3).
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Parsed::Whole {
            len: head,
            status,
            keep,
        };
    }
    if chunked {
        return match chunked_len(&buf[head..]) {
            Some(Ok(body)) => Parsed::Whole {
                len: head + body,
                status,
                keep,
            },
            Some(Err(())) => Parsed::Invalid,
            None => Parsed::Partial,
        };
    }
    match length {
        Some(body) if buf.len() >= head + body => Parsed::Whole {
            len: head + body,
            status,
            keep,
        },
        Some(_) => Parsed::Partial,
        None => Parsed::UntilEof { status },
    }
}

/// The length of a whole chunked body at the start of `buf`, trailers included; `None` if it
/// is not all there yet.
fn chunked_len(buf: &[u8]) -> Option<Result<usize, ()>> {
    let mut at = 0;
    loop {
        let line_end = find_crlf(&buf[at..])?;
        let line = &buf[at..at + line_end];
        let size_text = line.split(|&b| b == b';').next().unwrap_or(line);
        let size = match std::str::from_utf8(size_text)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
        {
            Some(s) => s,
            None => return Some(Err(())),
        };
        at += line_end + 2;
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let end = find_crlf(&buf[at..])?;
                at += end + 2;
                if end == 0 {
                    return Some(Ok(at));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return None;
        }
        at += size + 2;
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(buf: &[u8]) -> Option<(usize, u16, Keep)> {
        match parse(buf) {
            Parsed::Whole { len, status, keep } => Some((len, status, keep)),
            _ => None,
        }
    }

    #[test]
    fn content_length_answers_are_whole_only_with_their_body() {
        let a = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(whole(a).map(|w| w.0), Some(a.len()));
        assert!(matches!(parse(&a[..a.len() - 1]), Parsed::Partial));
        let mut two = a.to_vec();
        two.extend_from_slice(a);
        assert_eq!(whole(&two).map(|w| w.0), Some(a.len()));
    }

    #[test]
    fn chunked_answers_end_at_the_last_chunk_and_its_trailers() {
        let a = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(whole(a).map(|w| w.0), Some(a.len()));
        for cut in 40..a.len() {
            assert!(matches!(parse(&a[..cut]), Parsed::Partial), "cut at {cut}");
        }
        let t = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nx-t: 1\r\n\r\n";
        assert_eq!(whole(t).map(|w| w.0), Some(t.len()));
    }

    #[test]
    fn statuses_and_connection_close_are_read() {
        let a =
            b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        let (_, status, keep) = whole(a).expect("whole");
        assert_eq!(status, 503);
        assert!(keep == Keep::Close);
        assert!(matches!(parse(b"garbage\r\n\r\n"), Parsed::Invalid));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\n\r\n"),
            Parsed::UntilEof { status: 200 }
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 204 No Content\r\n\r\n"),
            Parsed::Whole { .. }
        ));
    }
}
