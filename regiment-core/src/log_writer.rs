//! A log output that never fails, for `tracing_subscriber::fmt().with_writer(..)`.
//!
//! A master must keep supervising when its log output goes away: a pipe whose reader exited
//! (`app 2>&1 | head`), a `logger` that was restarted, a journald stream that broke. Writing
//! then fails (EPIPE: Rust programs ignore SIGPIPE), and tracing-subscriber reports a failed
//! write with `eprintln!`, which panics when stderr is that broken stream. The panic ends
//! whatever logged: the supervisor's loop, a worker's drain. [`LogWriter`] swallows the failure
//! instead and counts the lines lost ([`LogWriter::lines_lost`]; the master's metrics show it
//! as `regiment_log_lines_lost_total`). Once its output works again (a full non-blocking pipe
//! drained, a full disk freed), the first line written says how many were lost before it.

use std::io::{self, Write};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// Standard error or standard output, written without ever failing or panicking.
///
/// ```
/// use std::io::IsTerminal;
/// // Colours only on a terminal: a file or a pipe gets plain text.
/// tracing_subscriber::fmt()
///     .with_writer(regiment_core::LogWriter::stderr)
///     .with_ansi(std::io::stderr().is_terminal())
///     .init();
/// tracing::info!("this line is lost, not a panic, if stderr is a closed pipe");
/// assert_eq!(regiment_core::LogWriter::lines_lost(), 0);
/// ```
#[derive(Debug)]
pub struct LogWriter {
    stream: Stream,
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stderr,
    Stdout,
}

static STDERR: Tally = Tally::new("stderr");
static STDOUT: Tally = Tally::new("stdout");

impl LogWriter {
    /// Writes to this process's standard error.
    pub fn stderr() -> Self {
        Self {
            stream: Stream::Stderr,
        }
    }

    /// Writes to this process's standard output (for a program's own lines, where `println!`
    /// would panic once stdout is closed).
    ///
    /// ```
    /// use std::io::Write;
    /// let _ = writeln!(regiment_core::LogWriter::stdout(), "listening on 127.0.0.1:3000");
    /// ```
    pub fn stdout() -> Self {
        Self {
            stream: Stream::Stdout,
        }
    }

    /// The lines this process could not write through a `LogWriter`, on either stream, since
    /// it started.
    pub fn lines_lost() -> u64 {
        STDERR.lost.load(Ordering::Relaxed) + STDOUT.lost.load(Ordering::Relaxed)
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    /// Writes all of `buf` or counts it lost; never an error. tracing-subscriber writes each
    /// event with one call.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self.stream {
            Stream::Stderr => STDERR.put(&mut io::stderr().lock(), buf),
            Stream::Stdout => STDOUT.put(&mut io::stdout().lock(), buf),
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Standard error is unbuffered; standard output is flushed at each line it is given.
        let _ = match self.stream {
            Stream::Stderr => io::stderr().flush(),
            Stream::Stdout => io::stdout().flush(),
        };
        Ok(())
    }
}

/// What one stream lost: lines in all, and how many of them were already told.
#[derive(Debug)]
struct Tally {
    name: &'static str,
    lost: AtomicU64,
    told: AtomicU64,
    /// The errno of the last failure (0: none known), for the note.
    last_errno: AtomicI32,
}

impl Tally {
    const fn new(name: &'static str) -> Self {
        Self {
            name,
            lost: AtomicU64::new(0),
            told: AtomicU64::new(0),
            last_errno: AtomicI32::new(0),
        }
    }

    /// Writes `buf` to `out`, preceded by a note of the lines lost since the last note, if
    /// any; counts what could not be written.
    fn put(&self, out: &mut impl Write, buf: &[u8]) {
        let lost = self.lost.load(Ordering::Relaxed);
        let told = self.told.load(Ordering::Relaxed);
        if lost > told {
            let note = self.note(lost - told);
            if let Err(e) = out.write_all(note.as_bytes()) {
                self.count(buf, &e);
                return;
            }
            self.told.fetch_max(lost, Ordering::Relaxed);
        }
        if let Err(e) = out.write_all(buf) {
            self.count(buf, &e);
        }
    }

    fn count(&self, buf: &[u8], e: &io::Error) {
        let lines = buf.iter().filter(|b| **b == b'\n').count().max(1);
        self.lost.fetch_add(lines as u64, Ordering::Relaxed);
        self.last_errno
            .store(e.raw_os_error().unwrap_or(0), Ordering::Relaxed);
    }

    fn note(&self, lines: u64) -> String {
        let why = match self.last_errno.load(Ordering::Relaxed) {
            0 => String::new(),
            errno => format!(" ({})", io::Error::from_raw_os_error(errno)),
        };
        let s = if lines == 1 { "" } else { "s" };
        format!(
            "regiment: {lines} log line{s} lost: writing to {} failed{why}\n",
            self.name
        )
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::fd::AsFd;

    use super::*;

    /// A pipe whose reader stalls (a paused `logger`, a journald stream that stopped reading)
    /// fills, and a non-blocking writer gets EAGAIN: the lines are lost and counted, and once the
    /// reader drains the pipe, the next line comes after one note of what was lost.
    #[test]
    fn lines_lost_while_the_output_fails_are_counted_then_told_once() {
        let tally = Tally::new("the pipe");
        let (mut reader, mut writer) = io::pipe().unwrap();
        for end in [reader.as_fd(), writer.as_fd()] {
            let nonblocking = nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK);
            nix::fcntl::fcntl(end, nonblocking).unwrap();
        }
        // Fill the pipe, then lose three lines (one event of two lines, one of one).
        while writer.write(&[b'x'; 4096]).is_ok() {}
        tally.put(&mut writer, b"first line\nsecond line\n");
        tally.put(&mut writer, b"third line\n");
        assert_eq!(tally.lost.load(Ordering::Relaxed), 3);

        // The reader drains the pipe: the output works again.
        let mut chunk = [0u8; 4096];
        while reader.read(&mut chunk).is_ok_and(|n| n > 0) {}
        tally.put(&mut writer, b"back\n");
        tally.put(&mut writer, b"and on\n");
        drop(writer); // the reader then sees what was written, and EOF
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(
            text,
            "regiment: 3 log lines lost: writing to the pipe failed \
             (Resource temporarily unavailable (os error 11))\nback\nand on\n"
        );
        assert_eq!(tally.lost.load(Ordering::Relaxed), 3, "nothing more lost");
    }
}
