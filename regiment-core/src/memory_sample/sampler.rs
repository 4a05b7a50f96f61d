//! Reading `/proc/PID/smaps_rollup`: open, one `pread` into a buffer kept across readings,
//! close.
//!
//! The file is opened anew for each reading rather than kept open: the kernel binds an open
//! `smaps_rollup` to the address space the process had at `open`, so a file opened before an
//! `exec` reads as if the process had exited ever after. The `open` and `close` cost a few
//! microseconds against the page-table walk of the read itself (BENCHMARKS.md, "Sampling
//! private memory").

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::rollup::{self, Malformed};
use super::{PrivateMemory, SampleError};

/// Bytes of the buffer: a rollup is about 700 bytes on Linux 6.18 (22 fields of about 30).
const BUFFER: usize = 4096;

/// Reads the private memory of processes, one at a time, into one buffer it keeps: no
/// allocation per reading (`open` builds the path on the stack).
#[derive(Debug)]
pub struct MemorySampler {
    buf: Box<[u8; BUFFER]>,
}

impl Default for MemorySampler {
    fn default() -> Self {
        Self::new()
    }
}

impl MemorySampler {
    /// A sampler, with its buffer.
    pub fn new() -> Self {
        Self {
            buf: Box::new([0; BUFFER]),
        }
    }

    /// Reads the memory of process `pid` now.
    ///
    /// `pid` must be a process the caller knows is the one it means: a child it has not yet
    /// waited for (its pid cannot be reused until then), or this process. The reading costs
    /// time in proportion to the process's resident memory (the kernel walks its page tables,
    /// about 20 ms per GiB of 4 KiB pages): call it off any async runtime's worker threads.
    pub fn read(&mut self, pid: u32) -> Result<PrivateMemory, SampleError> {
        let mut path = [0u8; 40];
        let file = File::open(rollup_path(pid, &mut path)).map_err(|e| open_error(pid, e))?;
        self.read_opened(pid, &file)
    }

    /// Reads `file`, the `smaps_rollup` of `pid` opened a moment ago.
    pub(super) fn read_opened(
        &mut self,
        pid: u32,
        file: &File,
    ) -> Result<PrivateMemory, SampleError> {
        let mut len = 0;
        loop {
            let n = match file.read_at(&mut self.buf[len..], len as u64) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(pid, e)),
            };
            len += n;
            match rollup::parse(&self.buf[..len]) {
                Ok(memory) => return Ok(memory),
                // The whole text comes in one read in practice; a short read may leave a
                // field for the next one.
                Err(Malformed::Missing(_)) if n > 0 && len < BUFFER => continue,
                Err(Malformed::Missing(field)) => {
                    return Err(SampleError::Malformed {
                        pid,
                        field,
                        problem: if len < BUFFER {
                            "is missing"
                        } else {
                            "is not within the first 4096 bytes"
                        },
                    });
                }
                Err(Malformed::NotKb(field)) => {
                    return Err(SampleError::Malformed {
                        pid,
                        field,
                        problem: "is not a number of kB",
                    });
                }
            }
        }
    }
}

/// `/proc/PID/smaps_rollup`, written into `buf`.
fn rollup_path(pid: u32, buf: &mut [u8; 40]) -> &Path {
    let mut rest = &mut buf[..];
    write!(rest, "/proc/{pid}/smaps_rollup").expect("a u32 pid fits in 40 bytes");
    let len = 40 - rest.len();
    Path::new(OsStr::from_bytes(&buf[..len]))
}

/// `open` fails with `ENOENT` both when the process is gone and when the kernel has no
/// `smaps_rollup` (before 4.14, or no `/proc`): this process's own file tells them apart. A
/// zombie (exited, not yet waited for) is `ESRCH` (Linux 6.18).
fn open_error(pid: u32, error: io::Error) -> SampleError {
    match error.raw_os_error() {
        Some(libc::ENOENT) if !Path::new("/proc/self/smaps_rollup").exists() => {
            SampleError::Unsupported
        }
        Some(libc::ENOENT | libc::ESRCH) => SampleError::Exited { pid },
        _ => SampleError::Unreadable { pid, error },
    }
}

/// A process that exits between the `open` and the read (its address space gone) reads as
/// `ESRCH`.
fn read_error(pid: u32, error: io::Error) -> SampleError {
    match error.raw_os_error() {
        Some(libc::ESRCH) => SampleError::Exited { pid },
        _ => SampleError::Unreadable { pid, error },
    }
}
