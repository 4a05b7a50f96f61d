//! The survivors of the exec: every descriptor is close-on-exec (std, tokio and regiment open
//! them so), and only those the handover names, with the handover file itself, are made
//! inheritable, at the last moment before the exec. If the exec fails, the old master serves
//! on: dropping [`ExecInheritance`] makes them close-on-exec again, so that no later spawn
//! hands them to a worker.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};

use super::envelope::DescriptorTable;
use super::file::HandoverFile;
use super::{HANDOVER_FD_VAR, HandoverError};

/// The descriptors made inheritable for the exec, close-on-exec again when dropped (the exec
/// failed: this process is still the old master).
#[derive(Debug)]
pub(crate) struct ExecInheritance {
    survivors: Vec<RawFd>,
    handover_fd: RawFd,
}

impl ExecInheritance {
    /// Clears close-on-exec on every descriptor `table` names and on `file`, after checking
    /// that each is open and named once; on an error, none is left inheritable.
    pub(crate) fn prepare(
        file: &HandoverFile,
        table: &DescriptorTable,
    ) -> Result<Self, HandoverError> {
        Self::prepare_with(file, table, &[])
    }

    /// [`ExecInheritance::prepare`], and `previous` too: the program the new master executes
    /// again if it cannot take over.
    pub(crate) fn prepare_with(
        file: &HandoverFile,
        table: &DescriptorTable,
        previous: &[BorrowedFd<'_>],
    ) -> Result<Self, HandoverError> {
        let mut named = table.distinct()?;
        let handover_fd = file.as_fd().as_raw_fd();
        named.push((handover_fd, String::from("the handover file")));
        for fd in previous {
            named.push((fd.as_raw_fd(), String::from("the previous program")));
        }
        for (fd, what) in &named {
            super::check_open(*fd, what)?;
        }
        let mut prepared = Self {
            survivors: Vec::with_capacity(named.len()),
            handover_fd,
        };
        for (fd, what) in named {
            // Dropped on an error, `prepared` restores those done so far.
            set_cloexec(fd, FdFlag::empty()).map_err(|e| HandoverError::Descriptor {
                what,
                fd,
                why: format!("cannot be made inheritable ({e})"),
            })?;
            prepared.survivors.push(fd);
        }
        Ok(prepared)
    }

    /// The descriptors the new program inherits: those the table names, then the file.
    #[cfg(test)]
    pub(crate) fn survivors(&self) -> &[RawFd] {
        &self.survivors
    }

    /// The variable that tells the new master where the handover file is, and its value.
    pub(crate) fn env(&self) -> (&'static str, String) {
        (HANDOVER_FD_VAR, self.handover_fd.to_string())
    }
}

impl Drop for ExecInheritance {
    fn drop(&mut self) {
        for fd in &self.survivors {
            if let Err(e) = set_cloexec(*fd, FdFlag::FD_CLOEXEC) {
                tracing::error!(fd, error = %e, "cannot make a descriptor close-on-exec again");
            }
        }
    }
}

fn borrow<'a>(fd: RawFd) -> BorrowedFd<'a> {
    // SAFETY: only used for fcntl's F_GETFD and F_SETFD, which fail with EBADF on a number that
    // is not open, and close nothing.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn set_cloexec(fd: RawFd, flag: FdFlag) -> nix::Result<()> {
    fcntl(borrow(fd), FcntlArg::F_SETFD(flag)).map(drop)
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::{UnixListener, UnixStream};

    use super::super::envelope::{Envelope, ListenerEntry, ListenerKind, WorkerEntry};
    use super::*;

    fn cloexec(fd: RawFd) -> bool {
        let flags = fcntl(borrow(fd), FcntlArg::F_GETFD).unwrap();
        FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC)
    }

    #[test]
    fn the_survivors_are_inheritable_until_dropped_and_nothing_else() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (master_end, _worker_end) = UnixStream::pair().unwrap();
        let bystander =
            UnixListener::bind(crate::test_support::scratch_dir("inherit").join("other.sock"))
                .unwrap();
        let table = DescriptorTable {
            listeners: vec![ListenerEntry {
                fd: listener.as_raw_fd(),
                kind: ListenerKind::Tcp,
                addr: listener.local_addr().unwrap().to_string(),
            }],
            workers: vec![WorkerEntry {
                id: 1,
                pid: 10,
                fd: master_end.as_raw_fd(),
                pending: Vec::new(),
            }],
            ..DescriptorTable::default()
        };
        let file = HandoverFile::write(&Envelope {
            descriptors: table.clone(),
            master: Default::default(),
            policy: serde_json::Value::Null,
        })
        .unwrap();
        let expected = [
            listener.as_raw_fd(),
            master_end.as_raw_fd(),
            file.as_fd().as_raw_fd(),
        ];
        assert!(expected.iter().all(|fd| cloexec(*fd)));

        let prepared = ExecInheritance::prepare(&file, &table).unwrap();
        assert_eq!(prepared.survivors(), expected);
        assert_eq!(
            prepared.env(),
            (HANDOVER_FD_VAR, file.as_fd().as_raw_fd().to_string())
        );
        assert!(expected.iter().all(|fd| !cloexec(*fd)));
        assert!(cloexec(bystander.as_raw_fd()), "only the survivors");
        drop(prepared);
        assert!(
            expected.iter().all(|fd| cloexec(*fd)),
            "the exec failed: back as they were"
        );
    }

    #[test]
    fn a_closed_descriptor_in_the_table_is_named_and_nothing_is_made_inheritable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let table = DescriptorTable {
            listeners: vec![ListenerEntry {
                fd: listener.as_raw_fd(),
                kind: ListenerKind::Tcp,
                addr: listener.local_addr().unwrap().to_string(),
            }],
            workers: vec![WorkerEntry {
                id: 7,
                pid: 70,
                // Never open: above any limit on descriptors.
                fd: i32::MAX,
                pending: Vec::new(),
            }],
            ..DescriptorTable::default()
        };
        let file = HandoverFile::write(&Envelope {
            descriptors: table.clone(),
            master: Default::default(),
            policy: serde_json::Value::Null,
        })
        .unwrap();
        let err = ExecInheritance::prepare(&file, &table)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("worker #7 (pid 70)") && err.contains("not open"),
            "{err}"
        );
        assert!(cloexec(listener.as_raw_fd()));
        assert!(cloexec(file.as_fd().as_raw_fd()));
    }
}
