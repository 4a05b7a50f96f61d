//! The handover file: a memfd, written whole by the old master and sealed (no write, no
//! growth, no shrinking, no further seal) before the exec, so that what the new master reads is
//! what was written; found by the new master from [`super::HANDOVER_FD_VAR`] and checked to be such a
//! file before it is trusted, read, and closed.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, RawFd};
use std::os::unix::fs::FileExt;

use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};

use super::HandoverError;
use super::envelope::Envelope;

/// The memfd's name, as `/proc/PID/fd` shows it (`/memfd:regiment-handover`).
const NAME: &std::ffi::CStr = c"regiment-handover";

/// The largest handover file read: far more than the descriptors and a policy's state take.
pub(crate) const MAX_SIZE: u64 = 64 << 20;

/// Every seal the old master sets; a file without all of them is not a handover file.
fn seals() -> SealFlag {
    SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_SEAL
}

/// A handover file written and sealed, close-on-exec until [`super::inherit`] says otherwise.
#[derive(Debug)]
pub(crate) struct HandoverFile {
    file: File,
}

impl HandoverFile {
    /// Creates the memfd (close-on-exec), writes `envelope` and seals it.
    pub(crate) fn write(envelope: &Envelope) -> std::io::Result<Self> {
        let fd = memfd_create(NAME, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
        let mut file = File::from(fd);
        file.write_all(&envelope.encode())?;
        fcntl(&file, FcntlArg::F_ADD_SEALS(seals()))?;
        Ok(Self { file })
    }
}

impl HandoverFile {
    /// The handover file this master was handed (see [`open_named`]), for the way back: the
    /// same file, handed to the previous program.
    pub(crate) fn received(file: File) -> Self {
        Self { file }
    }

    /// The file, to read it again.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}

impl AsFd for HandoverFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Reads the handover file of descriptor `value` (the variable's text). A descriptor that is
/// not a sealed memfd is refused and left open: it is not ours to close. One that is, is read
/// and closed, whatever it holds.
#[cfg(test)]
pub(crate) fn read_named(value: &str) -> Result<Envelope, HandoverError> {
    let file = open_named(value)?;
    read(&file)
}

/// The handover file of descriptor `value`, checked to be a sealed memfd (refused and left
/// open otherwise), owned from now on: a new master keeps it open until it took over, for the
/// way back.
pub(crate) fn open_named(value: &str) -> Result<File, HandoverError> {
    let refused = |why: String| HandoverError::NoFile {
        value: value.to_owned(),
        why,
    };
    let fd: RawFd = value
        .trim()
        .parse()
        .ok()
        .filter(|fd| *fd > 2)
        .ok_or_else(|| refused("is not a descriptor number above 2".into()))?;
    // SAFETY: fstat and fcntl on a number that may not be open only fail with EBADF; the
    // borrow ends with this block, and nothing is closed.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let stat = nix::sys::stat::fstat(borrowed)
        .map_err(|e| refused(format!("names no open file ({e})")))?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(refused("names no regular file".into()));
    }
    let found = fcntl(borrowed, FcntlArg::F_GET_SEALS)
        .map_err(|e| refused(format!("names a file that is no memfd ({e})")))?;
    if !SealFlag::from_bits_truncate(found).contains(seals()) {
        return Err(refused(
            "names a memfd that is not sealed as a handover file is".into(),
        ));
    }
    // SAFETY: a sealed memfd named by the variable meant for this process: the handover file,
    // which nothing else in this process owns (it is taken once).
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Reads what the handover `file` holds.
pub(crate) fn read(file: &File) -> Result<Envelope, HandoverError> {
    let size = file
        .metadata()
        .map_err(|e| HandoverError::Read(e.to_string()))?
        .len();
    if size > MAX_SIZE {
        return Err(HandoverError::TooLarge {
            size,
            max: MAX_SIZE,
        });
    }
    let mut bytes = vec![0; size as usize];
    // At offset 0 whatever the shared offset is: the old master's writes moved it.
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| HandoverError::Read(e.to_string()))?;
    Envelope::decode(&bytes)
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, IntoRawFd};

    use super::super::HANDOVER_FD_VAR;
    use super::super::envelope::DescriptorTable;
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            descriptors: DescriptorTable::default(),
            master: Default::default(),
            policy: serde_json::json!({"slots": [1, 2, 3]}),
        }
    }

    /// A copy of `fd` that the reader may take and close, as the new master's copy would be.
    fn handed(fd: BorrowedFd<'_>) -> String {
        fd.try_clone_to_owned().unwrap().into_raw_fd().to_string()
    }

    /// The device and inode of what `fd` is open on, if it is open.
    fn identity(fd: RawFd) -> Option<(u64, u64)> {
        // SAFETY: fstat on a number only reads, or fails with EBADF.
        let stat = nix::sys::stat::fstat(unsafe { BorrowedFd::borrow_raw(fd) }).ok()?;
        Some((stat.st_dev, stat.st_ino))
    }

    /// Whether `fd` is still open on the file it was open on when `before` was taken (by
    /// identity: tests running in parallel may reuse a number this process closed).
    fn still_open(fd: RawFd, before: Option<(u64, u64)>) -> bool {
        before.is_some() && identity(fd) == before
    }

    #[test]
    fn a_written_file_is_a_sealed_close_on_exec_memfd_that_reads_back() {
        let file = HandoverFile::write(&envelope()).unwrap();
        let flags = fcntl(&file, FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0, "close-on-exec until the exec");
        let target = std::fs::read_link(format!("/proc/self/fd/{}", file.as_fd().as_raw_fd()));
        assert!(
            target
                .unwrap()
                .to_string_lossy()
                .starts_with("/memfd:regiment-handover"),
            "a memfd of this name"
        );
        // Sealed: nothing can change what the new master reads.
        assert!(file.file.write_at(b"x", 0).is_err());
        assert!(file.file.set_len(1).is_err());

        let value = handed(file.as_fd());
        let fd: RawFd = value.parse().unwrap();
        let before = identity(fd);
        assert_eq!(read_named(&value).unwrap(), envelope());
        assert!(!still_open(fd, before), "the reader closed its copy");
    }

    #[test]
    fn what_is_no_handover_file_is_refused_by_name_and_left_open() {
        let (r, _w) = std::io::pipe().unwrap();
        let disk = std::fs::File::open("/proc/self/exe").unwrap();
        let unsealed =
            memfd_create(NAME, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING).unwrap();
        for (fd, why) in [
            (r.as_raw_fd(), "no regular file"),
            (disk.as_raw_fd(), "no memfd"),
            (unsealed.as_raw_fd(), "not sealed"),
        ] {
            let before = identity(fd);
            let err = read_named(&fd.to_string()).unwrap_err();
            assert!(err.to_string().contains(why), "{err}");
            assert!(still_open(fd, before), "fd {fd} ({why}) was closed");
        }

        for value in ["", "x", "-1", "1", "2147483647"] {
            let err = read_named(value).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("{HANDOVER_FD_VAR}={value} ")),
                "{text}"
            );
        }
    }

    #[test]
    fn a_sealed_memfd_of_garbage_is_refused_and_closed() {
        let fd = memfd_create(NAME, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING).unwrap();
        let mut file = File::from(fd);
        file.write_all(b"\0\0garbage\n{").unwrap();
        fcntl(&file, FcntlArg::F_ADD_SEALS(seals())).unwrap();
        let value = handed(file.as_fd());
        let fd: RawFd = value.parse().unwrap();
        let before = identity(fd);
        let err = read_named(&value).unwrap_err();
        assert!(matches!(err, HandoverError::NotAHandover { .. }), "{err}");
        assert!(!still_open(fd, before), "the reader closed it");
    }
}
