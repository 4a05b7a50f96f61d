//! The read end of a child's output pipe, which the test can close while the child still
//! writes to it: as a log reader that exits (`app 2>&1 | head`), a `logger` restarted or a
//! broken journald stream closes it. The child's next write there fails with EPIPE.
//!
//! A thread blocked in `read` would keep the pipe open past a `close` of its descriptor, so
//! the reader waits in `poll` with a short timeout instead, and reads EOF once told to close:
//! the thread that owns it then returns and drops it, which closes the pipe.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// A pipe's read end that reads EOF once its [`Closer`] says so.
#[derive(Debug)]
pub struct ClosablePipe<R> {
    pipe: R,
    closing: Arc<AtomicBool>,
}

/// Tells a [`ClosablePipe`] to end: its reader sees EOF within 100 ms.
#[derive(Debug, Clone)]
pub struct Closer(Arc<AtomicBool>);

impl Closer {
    /// Its reader reads EOF from now on.
    pub fn close(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl<R: Read + AsFd> ClosablePipe<R> {
    /// Wraps `pipe`; the [`Closer`] ends it.
    pub fn new(pipe: R) -> (Self, Closer) {
        let closing = Arc::new(AtomicBool::new(false));
        let closer = Closer(closing.clone());
        (Self { pipe, closing }, closer)
    }
}

impl<R: Read + AsFd> Read for ClosablePipe<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.closing.load(Ordering::SeqCst) {
                return Ok(0);
            }
            let mut fds = [PollFd::new(self.pipe.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(0) | Err(Errno::EINTR) => continue,
                // Readable, or the writers are gone (POLLHUP): `read` tells which.
                Ok(_) => return self.pipe.read(buf),
                Err(e) => return Err(e.into()),
            }
        }
    }
}
