//! The open descriptors of a process the tests started, read from `/proc`: what each points
//! to and its flags, and a snapshot taken once no client's session is open in it, so that two
//! snapshots compare what the process holds of its own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::cluster::CEILING;

/// Each open descriptor: what it points to, and its `flags` from fdinfo (octal there).
pub type Fds = BTreeMap<i32, (String, u32)>;

/// Each open descriptor of `pid`: what it points to and its `flags` from fdinfo.
pub fn open_fds(pid: u32) -> Fds {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the master's /proc/PID/fd");
    dir.filter_map(|e| {
        let fd: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        // A descriptor closed between the listing and these reads is not open any more.
        let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
            .expect("a flags line in fdinfo");
        Some((fd, (target.display().to_string(), flags)))
    })
    .collect()
}

/// The inodes of the sockets a master keeps of its own: TCP listeners (no remote port), Unix
/// listeners, and unnamed connected Unix sockets (its workers' channels). Any other socket it
/// holds is a client's session: a TCP connection, an accepted Unix connection (named after its
/// listener), or a connection already closed by both ends, which no table lists any more.
fn own_socket_inodes() -> Vec<String> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if fields.len() > 9 && fields[2].ends_with(":0000") {
                inodes.push(fields[9].to_owned());
            }
        }
    }
    let text = std::fs::read_to_string("/proc/net/unix").expect("/proc/net/unix");
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Num RefCount Protocol Flags Type St Inode [Path]; a listener's Flags: 00010000.
        if fields.len() == 7 || (fields.len() > 7 && fields[3] == "00010000") {
            inodes.push(fields[6].to_owned());
        }
    }
    inodes
}

/// `pid`'s descriptors once no client's session is open in it (a socket other than its
/// listeners and its unnamed channels): the master closes a session a moment after its client
/// has read the answer, so a snapshot taken at once may still hold it. A session never closed
/// fails the test.
pub fn settled_fds(pid: u32) -> Fds {
    let deadline = Instant::now() + CEILING;
    loop {
        let fds = open_fds(pid);
        let own = own_socket_inodes();
        let sessions: Vec<&i32> = fds
            .iter()
            .filter(|(_, (target, _))| {
                target
                    .strip_prefix("socket:[")
                    .and_then(|t| t.strip_suffix(']'))
                    .is_some_and(|inode| !own.iter().any(|i| i == inode))
            })
            .map(|(fd, _)| fd)
            .collect();
        if sessions.is_empty() {
            return fds;
        }
        assert!(
            Instant::now() < deadline,
            "sessions never closed: descriptors {sessions:?}\n{}",
            listing(&fds)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What `fds` holds, one per line, for a failure's message.
pub fn listing(fds: &Fds) -> String {
    fds.iter()
        .map(|(fd, (target, flags))| format!("  {fd} -> {target} (flags {flags:o})\n"))
        .collect()
}
