//! The service manager's end of sd_notify: a datagram socket bound where `NOTIFY_SOCKET` points,
//! as systemd binds one, collecting every message a master sends for a test to wait on.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cluster::CEILING;

/// A bound notify socket and the messages received on it so far, one per datagram.
#[derive(Debug)]
pub struct NotifySocket {
    path: PathBuf,
    received: Arc<Mutex<Vec<String>>>,
}

impl NotifySocket {
    /// Binds a datagram socket at `path` and collects what arrives until it is dropped (or for
    /// two minutes at most).
    pub fn bind(path: &Path) -> NotifySocket {
        let socket = UnixDatagram::bind(path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let received: Arc<Mutex<Vec<String>>> = Arc::default();
        let r = received.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut buf = [0u8; 4096];
            while Instant::now() < deadline && Arc::strong_count(&r) > 1 {
                if let Ok(n) = socket.recv(&mut buf) {
                    // One message per datagram, newline-separated assignments.
                    r.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..n]).trim_end().to_owned());
                }
            }
        });
        NotifySocket {
            path: path.to_owned(),
            received,
        }
    }

    /// Where the socket is bound: the value for `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A copy of every message received so far.
    pub fn messages(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `pred` holds over the messages, or panics after the ceiling with what
    /// arrived (watchdog pings left out).
    pub fn wait_for(&self, what: &str, pred: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + CEILING;
        loop {
            if pred(&self.received.lock().unwrap()) {
                return;
            }
            if Instant::now() > deadline {
                let seen: Vec<String> = self
                    .messages()
                    .into_iter()
                    .filter(|m| m != "WATCHDOG=1")
                    .collect();
                panic!(
                    "timed out waiting for {what}; received (watchdog pings left out): {seen:?}"
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// How many of `msgs` carry the assignment `line` (`READY=1`).
pub fn count(msgs: &[String], line: &str) -> usize {
    msgs.iter().filter(|m| carries(m, line)).count()
}

/// Whether the message `msg` carries the assignment `line`.
pub fn carries(msg: &str, line: &str) -> bool {
    msg.lines().any(|l| l == line)
}

/// The value of `name` in the message `msg` (`MONOTONIC_USEC`), if it carries one.
pub fn value<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
}
