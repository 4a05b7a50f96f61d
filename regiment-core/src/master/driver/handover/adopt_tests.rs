//! The handover read back by a new master: real sockets, a real program held open and a real
//! memfd, each descriptor a copy, as an exec leaves it.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};

use super::super::envelope::{
    ControlEntry, DescriptorTable, Envelope, ListenerEntry, ListenerKind, MasterEntry,
    ProgramEntry, SocketFileEntry, WorkerEntry,
};
use super::super::file::{HandoverFile, read_named};
use super::*;
use crate::listen::{self, ListenAddr};
use crate::master::driver::program::Program;
use crate::test_support::scratch_dir;

/// What a master holds: a TCP and a Unix listener, a control socket, an admin listener, one
/// worker's channel and a program.
struct Master {
    tcp: Listener,
    unix: Listener,
    control: UnixListener,
    admin: Listener,
    master_end: UnixStream,
    worker_end: UnixStream,
    program: Program,
    dir: PathBuf,
}

impl Master {
    fn new(name: &str) -> Self {
        let dir = scratch_dir(name);
        let (master_end, worker_end) = UnixStream::pair().unwrap();
        Self {
            tcp: listen::bind(&"127.0.0.1:0".parse().unwrap()).unwrap(),
            unix: listen::bind(&ListenAddr::Unix(dir.join("app.sock"))).unwrap(),
            control: UnixListener::bind(dir.join("control.sock")).unwrap(),
            admin: listen::bind(&"127.0.0.1:0".parse().unwrap()).unwrap(),
            master_end,
            worker_end,
            program: Program::open(Path::new("/bin/true")).unwrap(),
            dir,
        }
    }

    /// The table of copies of its descriptors, as the new master finds them after the exec.
    fn handed(&self) -> DescriptorTable {
        let id = self.program.id();
        DescriptorTable {
            listeners: vec![
                ListenerEntry {
                    fd: copy(&self.tcp),
                    kind: ListenerKind::Tcp,
                    addr: self.tcp.describe(),
                },
                ListenerEntry {
                    fd: copy(&self.unix),
                    kind: ListenerKind::Unix,
                    addr: self.unix.describe(),
                },
            ],
            control_socket: Some(ControlEntry {
                fd: copy(&self.control),
                file: SocketFileEntry {
                    path: self.dir.join("control.sock"),
                    device: 1,
                    inode: 2,
                },
            }),
            admin: Some(ListenerEntry {
                fd: copy(&self.admin),
                kind: ListenerKind::Tcp,
                addr: self.admin.describe(),
            }),
            workers: vec![WorkerEntry {
                id: 5,
                pid: 4242,
                fd: copy(&self.master_end),
                pending: Vec::new(),
            }],
            programs: vec![ProgramEntry {
                generation: 3,
                path: self.program.path().to_owned(),
                fd: Some(copy(self.program.fd().unwrap())),
                device: id.device,
                inode: id.inode,
            }],
        }
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A copy of `fd`, close-on-exec, that the table names and the reader may take.
fn copy(fd: impl AsFd) -> RawFd {
    fd.as_fd().try_clone_to_owned().unwrap().into_raw_fd()
}

fn identity(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: fstat on a number only reads, or fails with EBADF.
    let stat = nix::sys::stat::fstat(unsafe { BorrowedFd::borrow_raw(fd) }).ok()?;
    Some((stat.st_dev, stat.st_ino))
}

fn cloexec(fd: impl AsFd) -> bool {
    let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFD).unwrap();
    FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC)
}

/// The table's copies are closed by the test (refused, nothing took them).
fn close(fd: RawFd) {
    // SAFETY: a copy this test made and nothing took: closed once, here.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
}

fn envelope(table: DescriptorTable) -> Envelope {
    Envelope {
        descriptors: table,
        master: MasterEntry::default(),
        policy: serde_json::json!({"good_generation": 3}),
    }
}

#[test]
fn a_handover_written_and_read_back_gives_every_descriptor_working() {
    let master = Master::new("adopt-round-trip");
    let table = master.handed();
    let file = HandoverFile::write(&envelope(table.clone())).unwrap();
    let read = read_named(&copy(&file).to_string()).unwrap();
    assert_eq!(read, envelope(table.clone()));
    let adopted = adopt(read).unwrap();

    let addrs: Vec<String> = adopted.listeners.iter().map(Listener::describe).collect();
    assert_eq!(addrs, [master.tcp.describe(), master.unix.describe()]);
    // The same accept queue: a connection to the old listener is accepted by the adopted one.
    let _client = std::net::TcpStream::connect(master.tcp.tcp_addr().unwrap()).unwrap();
    let Listener::Tcp(tcp) = &adopted.listeners[0] else {
        panic!("a TCP listener")
    };
    tcp.accept()
        .expect("the queued connection (non-blocking, already there)");

    let (control, file) = adopted.control_socket.as_ref().unwrap();
    assert_eq!(file.path, master.dir.join("control.sock"));
    assert_eq!(
        adopted.admin.as_ref().unwrap().describe(),
        master.admin.describe()
    );

    let (entry, channel) = &adopted.workers[0];
    assert_eq!((entry.id, entry.pid), (5, 4242));
    (&*channel).write_all(b"hello").unwrap();
    let mut heard = [0; 5];
    (&master.worker_end).read_exact(&mut heard).unwrap();
    assert_eq!(&heard, b"hello");

    let (program, fd) = &adopted.programs[0];
    assert_eq!(program.generation, 3);
    let fd = fd.as_ref().unwrap();
    assert_eq!(
        identity(fd.as_raw_fd()),
        identity(master.program.fd().unwrap().as_raw_fd())
    );

    // Inheritable for the exec, close-on-exec again once taken.
    let mut taken: Vec<BorrowedFd<'_>> = adopted.listeners.iter().map(AsFd::as_fd).collect();
    taken.extend([control.as_fd(), channel.as_fd(), fd.as_fd()]);
    taken.push(adopted.admin.as_ref().unwrap().as_fd());
    assert!(taken.iter().all(cloexec));
}

/// Refuses `table` with an error containing each of `expected`; takes none of its descriptors.
fn assert_refused(table: DescriptorTable, expected: &[&str]) {
    let named = table.named();
    let before: Vec<_> = named.iter().map(|(fd, _)| identity(*fd)).collect();
    let err = adopt(envelope(table)).unwrap_err().to_string();
    for text in expected {
        assert!(err.contains(text), "{err:?} does not say {text:?}");
    }
    for ((fd, what), before) in named.iter().zip(before) {
        assert_eq!(
            identity(*fd),
            before,
            "{what} (fd {fd}) was taken or closed"
        );
        if before.is_some() {
            close(*fd);
        }
    }
}

#[test]
fn a_named_descriptor_that_is_closed_is_refused_by_name_and_nothing_is_taken() {
    let master = Master::new("adopt-closed");
    let mut table = master.handed();
    close(table.workers[0].fd);
    // Never open: above any limit on descriptors (a number just closed could be reused by a
    // test running beside this one).
    table.workers[0].fd = 1 << 30;
    assert_refused(
        table,
        &[
            "the IPC channel of worker #5 (pid 4242)",
            "fd 1073741824",
            "is not open",
        ],
    );
}

#[test]
fn a_named_descriptor_of_the_wrong_kind_is_refused_by_name_and_nothing_is_taken() {
    let master = Master::new("adopt-wrong-kind");
    let regular = std::fs::File::open("/bin/true").unwrap();
    type Edit = fn(&mut DescriptorTable, RawFd);
    let cases: [(Edit, &[&str]); 7] = [
        (
            |t, _| {
                close(t.listeners[0].fd);
                t.listeners[0].fd = copy(unsafe { BorrowedFd::borrow_raw(t.workers[0].fd) });
            },
            &["listener 0", "is not a listening stream socket"],
        ),
        (
            |t, _| {
                close(t.workers[0].fd);
                t.workers[0].fd = copy(unsafe { BorrowedFd::borrow_raw(t.listeners[0].fd) });
            },
            &["worker #5", "is not a connected Unix stream socket"],
        ),
        (
            |t, regular| {
                close(t.programs[0].fd.unwrap());
                t.programs[0].fd = Some(copy(unsafe { BorrowedFd::borrow_raw(regular) }));
            },
            &[
                "the program of generation 3 (/bin/true)",
                "is not an O_PATH descriptor",
            ],
        ),
        (
            |t, _| t.programs[0].inode += 1,
            &["the program of generation 3", "not the program's"],
        ),
        (
            |t, _| t.listeners[0].addr = "127.0.0.1:1".into(),
            &["listener 0 (127.0.0.1:1)", "listens on 127.0.0.1:"],
        ),
        (
            |t, _| t.listeners[1].kind = ListenerKind::Tcp,
            &["listener 1", "is a Unix listener, not a Tcp one"],
        ),
        (
            |t, _| {
                let c = t.control_socket.as_mut().unwrap();
                close(c.fd);
                c.fd = copy(unsafe { BorrowedFd::borrow_raw(t.admin.as_ref().unwrap().fd) });
            },
            &["the control socket", "is a Tcp listener, not a Unix one"],
        ),
    ];
    for (edit, expected) in cases {
        let mut table = master.handed();
        edit(&mut table, regular.as_raw_fd());
        assert_refused(table, expected);
    }
}
