//! Descriptor hygiene of a running master (issue 23's first half of "the descriptor count after
//! 10 upgrades equals the count before"): through rolling restarts its open descriptors come
//! back to what they were at its first ready, and every one of them but stdio is close-on-exec,
//! so that an exec of the master (an upgrade in place) inherits only what it is handed on
//! purpose; and through ten upgrades in place (ten execs of the master, same pid) it holds as
//! many. pg_doorman leaked about 9,954 descriptors across binary upgrades (PR#264).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tests::cluster::{CEILING, Cluster, pid_of, serving};
use tests::command::regiment_bounded;
use tests::deploy::Deploy;
use tests::descriptors::{Fds, listing, open_fds, settled_fds};
use tests::scratch::ScratchDir;

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");
const REGIMENT: &str = env!("CARGO_BIN_EXE_regiment_under_test");

/// `O_CLOEXEC` as `/proc/PID/fdinfo` shows it in `flags` (octal).
const O_CLOEXEC: u32 = 0o2_000_000;

/// The descriptors inherited by design: stdin, stdout and stderr, which workers share with
/// their master (the spawn gives each worker its listeners and channel explicitly).
const INHERITED_BY_DESIGN: [i32; 3] = [0, 1, 2];

/// The descriptors this test process holds without close-on-exec (beyond stdio): whoever ran
/// the tests left them open (a shell's, a CI runner's), and every child gets them, the master
/// included, from its start. They are not the master's to close, and they are the same ones
/// after any number of execs.
fn from_the_environment() -> Vec<i32> {
    open_fds(std::process::id())
        .into_iter()
        .filter(|(fd, (_, flags))| flags & O_CLOEXEC == 0 && !INHERITED_BY_DESIGN.contains(fd))
        .map(|(fd, _)| fd)
        .collect()
}

/// The descriptors of `fds` that an exec would keep and that the master opened itself.
fn inheritable(fds: &Fds, environment: &[i32]) -> Vec<i32> {
    fds.iter()
        .filter(|(fd, (_, flags))| {
            flags & O_CLOEXEC == 0 && !INHERITED_BY_DESIGN.contains(fd) && !environment.contains(fd)
        })
        .map(|(fd, _)| *fd)
        .collect()
}

/// Asks the admin listener for its status, as a scraper would (a connection opened and closed).
fn admin_status(addr: &str) {
    let mut s = TcpStream::connect(addr).expect("the admin listener");
    s.set_read_timeout(Some(CEILING)).unwrap();
    s.write_all(b"GET /status HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
}

/// How the master is taken through ten generations.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Through {
    /// Rolling restarts: the workers replaced, the master the same program.
    Rollouts,
    /// Upgrades in place: the master executes a new build of itself (same pid) each time, then
    /// replaces its workers.
    Upgrades,
}

#[test]
fn a_master_holds_as_many_descriptors_after_ten_rollouts_and_all_but_stdio_are_close_on_exec() {
    holds_as_many_descriptors_through(Through::Rollouts);
}

#[test]
fn a_master_holds_as_many_descriptors_after_ten_upgrades_and_all_but_stdio_are_close_on_exec() {
    holds_as_many_descriptors_through(Through::Upgrades);
}

fn holds_as_many_descriptors_through(through: Through) {
    let environment = from_the_environment();
    let name = match through {
        Through::Rollouts => "descriptors-rollouts",
        Through::Upgrades => "descriptors-upgrades",
    };
    let dir = ScratchDir::new(name);
    let deploy = Deploy::new(name, FIXTURE);
    let control = dir.join("control.sock");
    let bind = format!("127.0.0.1:0,unix:{}", dir.join("app.sock").display());
    let c = Cluster::start(
        &deploy.app(),
        &[
            ("REGIMENT_WORKERS", "2"),
            ("REGIMENT_BIND", &bind),
            ("REGIMENT_CONTROL_SOCKET", control.to_str().unwrap()),
            ("REGIMENT_ADMIN_BIND", "127.0.0.1:0"),
            // The program watched (inotify, and the watcher's own poll): descriptors too.
            ("REGIMENT_WATCH", "true"),
        ],
    );
    c.wait_serving(2);
    let pid = c.pid();
    let admin = c.status_where("the admin listener", |s| s["admin"].is_string())["admin"]
        .as_str()
        .unwrap()
        .to_owned();
    admin_status(&admin);
    let first = settled_fds(pid);

    let leaked = inheritable(&first, &environment);
    assert!(
        leaked.is_empty(),
        "descriptors an exec would leak: {leaked:?} (the environment's: {environment:?})\n{}",
        listing(&first)
    );

    for generation in 2..=11u64 {
        let from = c.events().len();
        let old = serving(&c.events());
        // Half through the control socket (a session opened and closed), half by signal.
        let by_socket = generation % 2 == 0;
        match through {
            Through::Rollouts if by_socket => {
                let out = regiment_bounded(REGIMENT, &control, &["reload", "--wait"])
                    .expect("reload --wait ends");
                assert!(out.status.success(), "rollout {generation}");
            }
            Through::Rollouts => c.signal(Signal::SIGHUP),
            // To the same file: a new one at the path would set the watcher off first.
            Through::Upgrades => {
                if by_socket {
                    let out = regiment_bounded(REGIMENT, &control, &["upgrade", "--wait"])
                        .expect("upgrade --wait ends");
                    assert!(out.status.success(), "upgrade to generation {generation}");
                } else {
                    c.signal(Signal::SIGUSR2);
                }
            }
        }
        c.wait_event(&format!("rollout {generation} done"), from, |e| {
            e["event"] == "rollout-done" && e["generation"] == generation
        });
        for pid in old.values() {
            c.wait_event("an old worker's exit", from, |e| {
                e["event"] == "exited" && pid_of(e) == *pid
            });
        }
        admin_status(&admin);
    }
    assert_eq!(c.pid(), pid);

    // An exited worker's channel closes once its last words are read: soon, not at once.
    let deadline = Instant::now() + CEILING;
    let mut now = settled_fds(pid);
    while now.len() != first.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        now = settled_fds(pid);
    }
    assert_eq!(
        now.len(),
        first.len(),
        "after 10 generations:\n{}at the first ready:\n{}",
        listing(&now),
        listing(&first)
    );
    let leaked = inheritable(&now, &environment);
    assert!(leaked.is_empty(), "{leaked:?}\n{}", listing(&now));
}
