//! Listening sockets: bound once by the master, inherited by every worker.
//!
//! Workers receive the listeners as file descriptors 3, 4, ... under the systemd
//! socket-activation convention (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`), so a worker
//! binary also runs directly under systemd or `systemfd`, and a master started by systemd socket
//! activation takes its listeners from there instead of binding.
//!
//! ```
//! // In a worker (or any process started with LISTEN_FDS): take the inherited listeners.
//! for listener in regiment_core::listen::take_inherited()? {
//!     println!("serving on {}", listener.describe());
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::{Domain, SockAddr, Socket, Type};

pub(crate) mod activation;

pub(crate) use activation::activation_env;

/// First fd of the systemd convention.
///
/// ```
/// use regiment_core::listen::SD_LISTEN_FDS_START;
/// // 0, 1 and 2 are stdin, stdout and stderr: listener `i` is fd 3 + i.
/// assert_eq!(SD_LISTEN_FDS_START, 3);
/// ```
pub const SD_LISTEN_FDS_START: RawFd = 3;
/// Backlog of the shared accept queue.
const BACKLOG: i32 = 1024;
/// The longest path a Unix socket address holds, in bytes: `sun_path` is 108 bytes, the last
/// of them the terminating NUL.
pub(crate) const MAX_UNIX_PATH: usize = 107;

/// Where to listen: a TCP address or a Unix-domain socket path.
///
/// ```
/// use regiment_core::listen::ListenAddr;
/// // The forms `Builder::bind` and `REGIMENT_BIND` accept.
/// assert_eq!("127.0.0.1:3000".parse(), Ok(ListenAddr::Tcp(([127, 0, 0, 1], 3000).into())));
/// assert_eq!("unix:/run/app.sock".parse(), Ok(ListenAddr::Unix("/run/app.sock".into())));
/// assert!("nowhere".parse::<ListenAddr>().unwrap_err().contains("HOST:PORT"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// A TCP address; port 0 picks a free port.
    Tcp(SocketAddr),
    /// A Unix-domain stream socket at this path.
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    /// `127.0.0.1:3000`, `[::1]:0`, `localhost:8080`, `unix:/run/app.sock` or `/run/app.sock`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        if s.starts_with('/') || s.starts_with("./") {
            return Ok(ListenAddr::Unix(PathBuf::from(s)));
        }
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(ListenAddr::Tcp(a));
        }
        match s.to_socket_addrs() {
            Ok(mut addrs) => addrs
                .next()
                .map(ListenAddr::Tcp)
                .ok_or_else(|| format!("`{s}` resolves to no address")),
            Err(_) => Err(format!(
                "`{s}` is neither HOST:PORT (127.0.0.1:3000, [::1]:0) nor a Unix socket path (unix:/run/app.sock)"
            )),
        }
    }
}

/// A listening socket, TCP or Unix-domain.
///
/// ```
/// use regiment_core::listen::{self, Listener};
/// let listener = listen::bind(&"127.0.0.1:0".parse().unwrap())?;
/// // Servers branch on the kind to build their acceptor.
/// assert!(matches!(listener, Listener::Tcp(_)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener.
    Tcp(std::net::TcpListener),
    /// A Unix-domain stream listener.
    Unix(UnixListener),
}

impl Listener {
    /// The bound address, for logs and events: `127.0.0.1:3000` or `unix:/run/app.sock`.
    ///
    /// ```
    /// let listener = regiment_core::listen::bind(&"127.0.0.1:0".parse().unwrap())?;
    /// // The port actually bound, not the 0 that was asked for.
    /// assert_eq!(listener.describe(), listener.tcp_addr().unwrap().to_string());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|e| format!("tcp:?({e})")),
            Listener::Unix(l) => match l.local_addr() {
                Ok(a) => match a.as_pathname() {
                    Some(p) => format!("unix:{}", p.display()),
                    None => "unix:(unnamed)".into(),
                },
                Err(e) => format!("unix:?({e})"),
            },
        }
    }

    /// The TCP address, if this is a TCP listener.
    ///
    /// ```
    /// let listener = regiment_core::listen::bind(&"127.0.0.1:0".parse().unwrap())?;
    /// // A test binds port 0 and learns here where to connect.
    /// let addr = listener.tcp_addr().unwrap();
    /// assert!(addr.ip().is_loopback() && addr.port() != 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(_) => None,
        }
    }

    /// Duplicates the socket (same accept queue), for handing to a child.
    pub(crate) fn try_clone_fd(&self) -> io::Result<OwnedFd> {
        self.as_fd().try_clone_to_owned()
    }

    fn from_socket(socket: Socket) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        socket.set_cloexec(true)?;
        let domain = socket.local_addr()?.domain();
        let fd = OwnedFd::from(socket);
        Ok(if domain == Domain::UNIX {
            Listener::Unix(UnixListener::from(fd))
        } else {
            Listener::Tcp(std::net::TcpListener::from(fd))
        })
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l) => l.as_fd(),
        }
    }
}

/// Binds `addr` for sharing between workers: SO_REUSEADDR (a restarted master rebinds at once),
/// never SO_REUSEPORT (one accept queue for all workers), non-blocking, close-on-exec.
///
/// ```
/// let listener = regiment_core::listen::bind(&"127.0.0.1:0".parse().unwrap())?;
/// // Listening from here: a connection is queued even before anyone accepts.
/// std::net::TcpStream::connect(listener.tcp_addr().unwrap())?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn bind(addr: &ListenAddr) -> io::Result<Listener> {
    let socket = match addr {
        ListenAddr::Tcp(a) => {
            let s = Socket::new(Domain::for_address(*a), Type::STREAM, None)?;
            s.set_reuse_address(true)?;
            if a.is_ipv6() {
                s.set_only_v6(true)?;
            }
            s.bind(&SockAddr::from(*a))?;
            s
        }
        ListenAddr::Unix(path) => {
            remove_stale_unix_socket(path)?;
            let s = Socket::new(Domain::UNIX, Type::STREAM, None)?;
            s.bind(&SockAddr::unix(path)?)?;
            s
        }
    };
    socket.listen(BACKLOG)?;
    Listener::from_socket(socket)
}

/// A socket file left by a dead process (a connection is refused) is removed; one that someone
/// still listens on is `AddrInUse`, as for TCP; one we cannot tell about (no permission to
/// connect) is left alone, with the error.
pub(crate) fn remove_stale_unix_socket(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "a process is already listening on this socket",
                )),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path)
                }
                Err(e) => Err(e),
            }
        }
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Checks, without taking ownership, that `fd` is an open listening stream socket: an fd that
/// is something else (announced by mistake, or reused by this process for its own purposes)
/// must give an error and stay open, never be closed under its real owner.
fn check_listening_socket(fd: RawFd) -> io::Result<()> {
    if nix::fcntl::fcntl(
        unsafe { BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_GETFD,
    )
    .is_err()
    {
        return Err(io::Error::other(format!(
            "LISTEN_FDS announces fd {fd}, which is not open"
        )));
    }
    // SAFETY: fd is open (checked above); the SockRef only borrows it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let sock = socket2::SockRef::from(&borrowed);
    match (sock.r#type(), sock.is_listener()) {
        (Ok(Type::STREAM), Ok(true)) => Ok(()),
        (Err(e), _) | (_, Err(e)) => Err(io::Error::new(
            e.kind(),
            format!("inherited fd {fd} is not a listening socket: {e}"),
        )),
        _ => Err(io::Error::other(format!(
            "inherited fd {fd} is not a listening stream socket"
        ))),
    }
}

static TAKEN: AtomicBool = AtomicBool::new(false);

/// Takes the listeners this process inherited under the systemd convention (from a regiment
/// master, systemd or systemfd): non-blocking and close-on-exec, in fd order. Returns an empty
/// list when there are none, or when they were taken already (an fd can have only one owner).
/// In a regiment worker it also attaches the worker to its master (see [`crate::worker`]), so
/// that a worker that only takes its sockets still drains when its master is gone.
///
/// ```
/// // Not started with LISTEN_FDS (by a master, systemd or systemfd): nothing to take.
/// let listeners = regiment_core::listen::take_inherited()?;
/// assert!(listeners.is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn take_inherited() -> io::Result<Vec<Listener>> {
    let Some(env) = activation_env() else {
        return Ok(Vec::new());
    };
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(Vec::new());
    }
    // A worker that only takes its sockets must still learn of its master's death (EOF on
    // its channel): attaching starts the thread that watches it. (Outside a cluster: nothing.)
    crate::worker::attach();
    let mut out = Vec::with_capacity(env.count);
    for i in 0..env.count {
        let fd = SD_LISTEN_FDS_START + i as RawFd;
        check_listening_socket(fd)?;
        // SAFETY: fd is an open listening socket, LISTEN_PID says it was handed to this
        // process, and TAKEN ensures ownership is taken once.
        let socket = unsafe { Socket::from_raw_fd(fd) };
        out.push(Listener::from_socket(socket)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::scratch_dir;

    #[test]
    fn a_foreign_fd_is_refused_and_left_open() {
        use std::os::fd::AsRawFd;
        let (r, _w) = std::io::pipe().unwrap();
        let err = check_listening_socket(r.as_raw_fd()).unwrap_err();
        assert!(err.to_string().contains("not a listening socket"), "{err}");
        let connected = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(connected.local_addr().unwrap()).unwrap();
        assert!(check_listening_socket(stream.as_raw_fd()).is_err());
        // Still open: the check only borrowed them.
        assert!(nix::fcntl::fcntl(&r, nix::fcntl::FcntlArg::F_GETFD).is_ok());
        assert!(nix::fcntl::fcntl(&stream, nix::fcntl::FcntlArg::F_GETFD).is_ok());
        assert!(check_listening_socket(connected.as_raw_fd()).is_ok());
    }

    #[test]
    fn parses_addresses() {
        assert_eq!(
            "127.0.0.1:0".parse::<ListenAddr>().unwrap(),
            ListenAddr::Tcp("127.0.0.1:0".parse().unwrap())
        );
        assert_eq!(
            "unix:/tmp/a.sock".parse::<ListenAddr>().unwrap(),
            ListenAddr::Unix("/tmp/a.sock".into())
        );
        let err = "not an address".parse::<ListenAddr>().unwrap_err();
        assert!(err.contains("HOST:PORT"), "{err}");
    }

    #[test]
    fn binds_tcp_without_reuseport_and_reports_the_port() {
        let l = bind(&"127.0.0.1:0".parse().unwrap()).unwrap();
        let port = l.tcp_addr().unwrap().port();
        assert_ne!(port, 0);
        let sock = socket2::SockRef::from(&l);
        assert!(!sock.reuse_port().unwrap());
        let again = bind(&ListenAddr::Tcp(([127, 0, 0, 1], port).into()));
        assert_eq!(again.unwrap_err().kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn unix_sockets_replace_stale_files_but_not_live_ones() {
        let dir = scratch_dir("listen");
        let path = dir.join("a.sock");
        let addr = ListenAddr::Unix(path.clone());
        let live = bind(&addr).unwrap();
        assert_eq!(bind(&addr).unwrap_err().kind(), io::ErrorKind::AddrInUse);
        drop(live);
        let again = bind(&addr).unwrap();
        assert_eq!(again.describe(), format!("unix:{}", path.display()));
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
