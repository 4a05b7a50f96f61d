//! Reading this process's resident memory cheaply.
//!
//! `/proc/self/statm` is opened once and re-read with `pread` at offset 0: one syscall and a few
//! dozen bytes to parse, about a microsecond, where a fresh `open` + `read` + `close` costs
//! three syscalls and a path walk. The heartbeats use it, and so does regiment-tower's memory
//! sampler (through [`crate::plumbing`]), so that RSS is read one way.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// A kept-open `/proc/self/statm`: opened once, each read is one `pread`, cheap enough for
/// every request.
#[derive(Debug)]
pub struct Statm {
    file: File,
    page_size: u64,
    buf: [u8; 128],
}

impl Statm {
    /// Opens `/proc/self/statm` (Linux only; an error elsewhere). Open it at start-up, so that
    /// a missing `/proc` shows at once, not on the first request.
    pub fn open() -> io::Result<Self> {
        let page_size = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .unwrap_or(4096) as u64;
        Ok(Self {
            file: File::open("/proc/self/statm")?,
            page_size,
            buf: [0; 128],
        })
    }

    /// The resident set size in bytes, read now: whole pages.
    pub fn resident_bytes(&mut self) -> io::Result<u64> {
        let n = self.file.read_at(&mut self.buf, 0)?;
        // "size resident shared text lib data dt": the second field, in pages.
        let pages = self.buf[..n]
            .split(|b| *b == b' ')
            .nth(1)
            .and_then(|f| std::str::from_utf8(f).ok())
            .and_then(|f| f.trim().parse::<u64>().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected statm format"))?;
        Ok(pages * self.page_size)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reads_the_resident_size_in_whole_pages_again_and_again() {
        let mut statm = Statm::open().unwrap();
        // Kept open: every read is fresh, none fails.
        for _ in 0..3 {
            let rss = statm.resident_bytes().unwrap();
            assert!(rss > 0 && rss.is_multiple_of(statm.page_size), "{rss}");
        }
    }
}
