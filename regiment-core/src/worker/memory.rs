//! Reading this process's resident memory cheaply.
//!
//! `/proc/self/statm` is opened once and re-read with `pread` at offset 0: one syscall and a few
//! dozen bytes to parse, about a microsecond, where a fresh `open` + `read` + `close` costs
//! three syscalls and a path walk.
//!
//! ```
//! # #[cfg(target_os = "linux")] {
//! let mut statm = regiment_core::worker::memory::Statm::open()?;
//! assert!(statm.resident_bytes()? > 0);
//! # }
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// A kept-open `/proc/self/statm`.
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// let mut statm = regiment_core::worker::memory::Statm::open()?;
/// // Opened once and kept: each read is one `pread`, cheap enough for every request.
/// for _ in 0..3 {
///     assert!(statm.resident_bytes()? > 0);
/// }
/// # }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Statm {
    file: File,
    page_size: u64,
    buf: [u8; 128],
}

impl Statm {
    /// Opens `/proc/self/statm` (Linux only; an error elsewhere).
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// // Open at start-up, so a missing /proc shows at once, not on the first request.
    /// let statm = regiment_core::worker::memory::Statm::open()?;
    /// # drop(statm);
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
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

    /// The resident set size in bytes, read now.
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// let mut statm = regiment_core::worker::memory::Statm::open()?;
    /// // Whole pages: a multiple of the page size.
    /// let rss = statm.resident_bytes()?;
    /// assert!(rss > 0 && rss % 4096 == 0);
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
