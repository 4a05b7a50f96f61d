//! A worker the kernel's OOM killer kills is named so: a master and its workers run in a memory
//! cgroup of the test's own with a small limit (see `tests::memory_cgroup`), one worker
//! allocates past it, and the kernel kills it. Its crash event, `regiment status` and the
//! metrics say "killed by the OOM killer"; the other worker serves on, and the master lives.
//!
//! It takes a memory cgroup the test can make (root, with a writable cgroup v1 memory hierarchy
//! or cgroup v2 with the memory controller delegated); without one it says why it did not run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use tests::cluster::{CEILING, Cluster, alive, pid_of, serving, whoami};
use tests::command::regiment_bounded;
use tests::memory_cgroup::LimitedCgroup;
use tests::scratch::ScratchDir;

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");
const REGIMENT: &str = env!("CARGO_BIN_EXE_regiment_under_test");

/// All the memory the master and its workers may use: a few MiB is what they take.
const LIMIT_MIB: u64 = 64;

fn regiment(socket: &Path, args: &[&str]) -> Output {
    let out = regiment_bounded(REGIMENT, socket, args)
        .unwrap_or_else(|| panic!("regiment {args:?} still ran after {CEILING:?}"));
    assert!(
        out.status.success(),
        "regiment {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Asks a worker to allocate `mib` MiB: the pid of the worker that took it, once it started.
fn allocate(addr: SocketAddr, mib: u64) -> u32 {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
    stream
        .set_read_timeout(Some(CEILING))
        .expect("a read timeout");
    stream
        .write_all(format!("alloc {mib}\n").as_bytes())
        .expect("ask");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("allocating PID");
    let pid = line
        .strip_prefix("allocating ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("not `allocating PID`: {line:?}"));
    // The kernel kills it before it answers more: the connection ends (EOF or reset).
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    assert!(!rest.contains("allocated"), "it survived: {rest:?}");
    pid
}

#[test]
fn a_worker_the_oom_killer_killed_is_named_so_in_its_event_the_status_and_the_metrics() {
    let cgroup = match LimitedCgroup::create("oom", LIMIT_MIB << 20) {
        Ok(cgroup) => cgroup,
        Err(why) => {
            eprintln!("NOT RUN: this test needs a memory cgroup of its own: {why}");
            return;
        }
    };
    eprintln!("cgroup {}", cgroup.dir().display());
    let dir = ScratchDir::new("oom-kills");
    let socket = dir.join("control.sock");
    let mut master = Command::new(FIXTURE);
    cgroup.enter_on_exec(&mut master);
    // Dropped before the cgroup: the cluster's processes are killed first, then it is removed.
    let mut c = Cluster::start_command(
        master,
        &[
            ("REGIMENT_WORKERS", "2"),
            ("REGIMENT_CONTROL_SOCKET", socket.to_str().expect("UTF-8")),
        ],
    );
    let before = c.wait_serving(2);
    let addr = c.addr();
    for pid in std::iter::once(c.pid()).chain(before.values().copied()) {
        assert!(cgroup.holds(pid), "pid {pid} is not in the test's cgroup");
    }
    assert_eq!(cgroup.oom_kills(), Some(0));

    let n = c.events().len();
    let victim = allocate(addr, 2 * LIMIT_MIB);
    let (_, crashed) = c.wait_event("the OOM kill's crash event", n, |e| {
        e["event"] == "crashed" && pid_of(e) == victim
    });
    assert_eq!(crashed["status"], "killed by the OOM killer", "{crashed}");
    assert_eq!(crashed["oom_killed"], true, "{crashed}");
    assert_eq!(crashed["killed_from_outside"], "SIGKILL", "{crashed}");
    assert_eq!(cgroup.oom_kills(), Some(1), "the kernel counted one kill");
    let slot = crashed["slot"].as_u64().expect("a slot");
    let other = before[&(1 - slot)];

    // Respawned in its slot; the other worker served throughout, untouched.
    c.wait_event("the respawn ready", n, |e| {
        e["event"] == "ready" && e["slot"] == slot
    });
    let now = serving(&c.events());
    assert_eq!(now[&(1 - slot)], other, "{now:?}");
    assert!(alive(other));
    let gone: Vec<Value> = (c.events().into_iter().skip(n))
        .filter(|e| pid_of_or_zero(e) == other)
        .collect();
    assert_eq!(gone, Vec::<Value>::new(), "nothing happened to pid {other}");
    let answered: Vec<u32> = (0..10).map(|_| whoami(addr).2).collect();
    assert!(
        answered.iter().all(|pid| now.values().any(|p| p == pid)),
        "{answered:?} from {now:?}"
    );

    // `regiment status`: the slot's last restart says why.
    let status: Value =
        serde_json::from_slice(&regiment(&socket, &["status", "--json"]).stdout).expect("JSON");
    assert_eq!(status["master_pid"], c.pid());
    let restarted = &status["slots"][slot as usize];
    assert_eq!(restarted["restarts"], 1, "{status}");
    assert_eq!(
        restarted["last_restart_reason"], "killed by the OOM killer",
        "{status}"
    );
    let table = String::from_utf8_lossy(&regiment(&socket, &["status"]).stdout).into_owned();
    assert!(table.contains("killed by the OOM killer"), "{table}");

    // The metrics count it among the kills, as the OOM killer's.
    let metrics = String::from_utf8_lossy(&regiment(&socket, &["metrics"]).stdout).into_owned();
    let lines: Vec<&str> = metrics.lines().collect();
    for expected in [
        "regiment_kills_total{reason=\"oom\"} 1",
        "regiment_crashes_total 1",
        "regiment_kills_total{reason=\"drain_deadline\"} 0",
    ] {
        assert!(lines.contains(&expected), "no {expected:?} in:\n{metrics}");
    }

    // The master's log names it too, and the master lives on.
    c.wait_log("worker killed by the OOM killer");
    assert!(c.is_running(), "the master survived");
    assert!(cgroup.holds(c.pid()));
    assert_eq!(cgroup.oom_kills(), Some(1), "one kill, no other");
}

/// The pid an event names, 0 for one that names none.
fn pid_of_or_zero(e: &Value) -> u32 {
    e["pid"].as_u64().map_or(0, |p| p as u32)
}
