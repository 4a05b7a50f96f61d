//! The new master's side: each descriptor the handover names is checked for what it is said
//! to be (open; a listening stream socket of the family and address recorded; a Unix stream
//! for a worker's channel; an `O_PATH` descriptor of the very file recorded for a program), and
//! only once every one passed are they taken, close-on-exec again. A handover with one wrong
//! descriptor is refused whole, naming it, and takes none: the descriptors stay open for
//! whoever can still use them (the way back to the old program).

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use socket2::{Domain, SockRef, Type};

use super::HandoverError;
use super::envelope::{
    Envelope, ListenerEntry, ListenerKind, MasterEntry, ProgramEntry, SocketFileEntry, WorkerEntry,
};
use crate::listen::Listener;

/// What the new master takes over: every descriptor the handover named, owned now.
#[derive(Debug)]
pub(crate) struct Adopted {
    /// In the order of the table: the order workers get them.
    pub(crate) listeners: Vec<Listener>,
    /// The control socket and the file it is reachable at.
    pub(crate) control_socket: Option<(UnixListener, SocketFileEntry)>,
    pub(crate) admin: Option<Listener>,
    pub(crate) workers: Vec<(WorkerEntry, UnixStream)>,
    /// Each program, and its descriptor unless spawns execute its path.
    pub(crate) programs: Vec<(ProgramEntry, Option<OwnedFd>)>,
    /// The driver's own state.
    pub(crate) master: MasterEntry,
}

/// Checks every descriptor of `envelope`, then takes them all.
pub(crate) fn adopt(envelope: Envelope) -> Result<Adopted, HandoverError> {
    let Envelope {
        descriptors: table,
        master,
        // Restored before anything is taken (see `upgrade::takeover`).
        policy: _,
    } = envelope;
    let named = table.distinct()?;
    let mut what = named.into_iter().map(|(_, what)| what);
    let mut next = || what.next().expect("one name per descriptor");
    for l in &table.listeners {
        check_listener(l, &next())?;
    }
    if let Some(c) = &table.control_socket {
        let entry = ListenerEntry {
            fd: c.fd,
            kind: ListenerKind::Unix,
            addr: String::new(),
        };
        check_listening(&entry, &next())?;
    }
    if let Some(a) = &table.admin {
        check_listener(a, &next())?;
    }
    for w in &table.workers {
        check_channel(w, &next())?;
    }
    for p in table.programs.iter().filter(|p| p.fd.is_some()) {
        check_program(p, &next())?;
    }

    // Every descriptor is what the table says: take them, close-on-exec again.
    let adopted = Adopted {
        listeners: table.listeners.iter().map(take_listener).collect(),
        control_socket: table
            .control_socket
            .as_ref()
            .map(|c| (UnixListener::from(take(c.fd)), c.file.clone())),
        admin: table.admin.as_ref().map(take_listener),
        workers: table
            .workers
            .iter()
            .map(|w| (w.clone(), UnixStream::from(take(w.fd))))
            .collect(),
        programs: table
            .programs
            .iter()
            .map(|p| (p.clone(), p.fd.map(take)))
            .collect(),
        master,
    };
    Ok(adopted)
}

/// Takes `fd`, checked to be the handover's and named once, and makes it close-on-exec.
fn take(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` is open (checked) and named once by the handover written for this process
    // by its previous program, which handed it over: nothing else here owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    if let Err(e) = fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)) {
        tracing::warn!(fd, error = %e, "could not make a handed-over descriptor close-on-exec");
    }
    owned
}

/// Takes a listener checked to be of `entry.kind`, non-blocking as the master's are.
fn take_listener(entry: &ListenerEntry) -> Listener {
    let fd = take(entry.fd);
    if let Err(e) = SockRef::from(&fd).set_nonblocking(true) {
        tracing::warn!(fd = entry.fd, error = %e, "could not make a handed-over listener non-blocking");
    }
    match entry.kind {
        ListenerKind::Tcp => Listener::Tcp(std::net::TcpListener::from(fd)),
        ListenerKind::Unix => Listener::Unix(UnixListener::from(fd)),
    }
}

fn refused(entry_what: &str, fd: RawFd, why: impl Into<String>) -> HandoverError {
    HandoverError::Descriptor {
        what: entry_what.to_owned(),
        fd,
        why: why.into(),
    }
}

/// Borrows `fd` once it is known to be open.
fn open(fd: RawFd, what: &str) -> Result<BorrowedFd<'static>, HandoverError> {
    super::check_open(fd, what)?;
    // SAFETY: `fd` is open (checked); the borrow is used for fstat, fcntl and getsockopt only
    // until the descriptor is taken or refused.
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}

fn check_listener(entry: &ListenerEntry, what: &str) -> Result<(), HandoverError> {
    let sock = check_listening(entry, what)?;
    let found = address(&SockRef::from(&sock));
    if found != entry.addr {
        return Err(refused(
            what,
            entry.fd,
            format!("listens on {found}, not {}", entry.addr),
        ));
    }
    Ok(())
}

/// Checks that `entry.fd` is a listening stream socket of its kind.
fn check_listening(
    entry: &ListenerEntry,
    what: &str,
) -> Result<BorrowedFd<'static>, HandoverError> {
    let fd = open(entry.fd, what)?;
    let sock = SockRef::from(&fd);
    let not = |e: std::io::Error| refused(what, entry.fd, format!("is not a socket ({e})"));
    let ty = sock.r#type().map_err(not)?;
    let listening = sock.is_listener().map_err(not)?;
    let domain = sock.local_addr().map_err(not)?.domain();
    if ty != Type::STREAM || !listening {
        return Err(refused(what, entry.fd, "is not a listening stream socket"));
    }
    let kind = match domain {
        Domain::UNIX => ListenerKind::Unix,
        Domain::IPV4 | Domain::IPV6 => ListenerKind::Tcp,
        other => {
            return Err(refused(
                what,
                entry.fd,
                format!("is a socket of family {other:?}"),
            ));
        }
    };
    if kind != entry.kind {
        return Err(refused(
            what,
            entry.fd,
            format!("is a {kind:?} listener, not a {:?} one", entry.kind),
        ));
    }
    Ok(fd)
}

fn check_channel(entry: &WorkerEntry, what: &str) -> Result<(), HandoverError> {
    let fd = open(entry.fd, what)?;
    let sock = SockRef::from(&fd);
    let is_channel = sock.r#type().is_ok_and(|t| t == Type::STREAM)
        && sock.is_listener().is_ok_and(|l| !l)
        && sock.local_addr().is_ok_and(|a| a.domain() == Domain::UNIX);
    if !is_channel {
        return Err(refused(
            what,
            entry.fd,
            "is not a connected Unix stream socket",
        ));
    }
    Ok(())
}

fn check_program(entry: &ProgramEntry, what: &str) -> Result<(), HandoverError> {
    let raw = entry.fd.expect("only programs held open are checked");
    let fd = open(raw, what)?;
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(|e| refused(what, raw, e.to_string()))?;
    if !OFlag::from_bits_retain(flags).contains(OFlag::O_PATH) {
        return Err(refused(what, raw, "is not an O_PATH descriptor"));
    }
    let stat = nix::sys::stat::fstat(fd).map_err(|e| refused(what, raw, e.to_string()))?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(refused(what, raw, "is not a regular file"));
    }
    if (stat.st_dev, stat.st_ino) != (entry.device, entry.inode) {
        return Err(refused(
            what,
            raw,
            format!(
                "is the file of device {} inode {}, not the program's (device {} inode {})",
                stat.st_dev, stat.st_ino, entry.device, entry.inode
            ),
        ));
    }
    Ok(())
}

/// A socket's local address as [`Listener::describe`] writes it.
fn address(sock: &SockRef<'_>) -> String {
    match sock.local_addr() {
        Ok(a) => match (a.as_socket(), a.as_pathname()) {
            (Some(inet), _) => inet.to_string(),
            (None, Some(path)) => format!("unix:{}", path.display()),
            (None, None) => String::from("unix:(unnamed)"),
        },
        Err(e) => format!("?({e})"),
    }
}

#[cfg(test)]
#[path = "adopt_tests.rs"]
mod tests;
