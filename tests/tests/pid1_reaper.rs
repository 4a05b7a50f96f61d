//! A master that is a child subreaper (as PID 1 in a container without an init is) reaps the
//! processes re-parented to it, and never mistakes one for a worker. The master is the fixture
//! executed by `subreaper`, which sets PR_SET_CHILD_SUBREAPER first; its workers double-fork
//! orphans that exit at once, so each becomes a zombie child of the master.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use tests::cluster::{CEILING, Cluster, ask, pid_of, whoami};

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");
const SUBREAPER: &str = env!("CARGO_BIN_EXE_subreaper");

fn is(e: &Value, event: &str) -> bool {
    e["event"] == event
}

/// Asks a worker for an orphan; returns its pid, after checking it was re-parented to `master`
/// (else init would reap it, and this test would prove nothing).
fn orphan(c: &Cluster) -> u32 {
    let answer = ask(c.addr(), "orphan").expect("orphan answered");
    let fields: Vec<&str> = answer.split_whitespace().collect();
    assert!(
        matches!(fields.as_slice(), ["orphan", _, _]),
        "unexpected answer {answer:?}"
    );
    let parent: u32 = fields[2].parse().unwrap();
    assert_eq!(parent, c.pid(), "the orphan was re-parented to the master");
    fields[1].parse().unwrap()
}

/// State and parent of `pid`, from /proc (`None`: no such process).
fn state_and_parent(pid: u32) -> Option<(String, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.to_owned();
    Some((state, fields.next()?.parse().ok()?))
}

/// The zombie children of `parent`.
fn zombie_children(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| state_and_parent(*pid) == Some(("Z".into(), parent)))
        .collect()
}

/// Waits until every orphan is gone (no longer a process whose parent is the master: neither
/// running nor a zombie) and the master has no zombie child left.
fn wait_reaped(c: &Cluster, orphans: &BTreeSet<u32>) {
    let deadline = Instant::now() + CEILING;
    loop {
        let left: Vec<u32> = orphans
            .iter()
            .copied()
            .filter(|pid| state_and_parent(*pid).is_some_and(|(_, parent)| parent == c.pid()))
            .collect();
        let zombies = zombie_children(c.pid());
        if left.is_empty() && zombies.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "orphans not reaped: {left:?}; zombies of the master: {zombies:?}\n{}",
            c.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn zombies_of_re_parented_processes_are_reaped_and_no_worker_is_mistaken_for_one() {
    let mut cmd = Command::new(SUBREAPER);
    cmd.arg(FIXTURE);
    let mut c = Cluster::start_command(cmd, &[("REGIMENT_WORKERS", "2")]);
    let serving = c.wait_serving(2);
    c.wait_log("the master is a child subreaper");

    let orphans: BTreeSet<u32> = (0..6).map(|_| orphan(&c)).collect();
    wait_reaped(&c, &orphans);
    // The workers serve on, and the master saw no worker exit.
    for _ in 0..10 {
        let (_, slot, pid, generation) = whoami(c.addr());
        assert_eq!((pid, generation), (serving[&slot], 1));
    }
    let status = c.status_where("both workers ready", |s| {
        s["workers"]
            .as_array()
            .is_some_and(|w| w.len() == 2 && w.iter().all(|w| w["state"] == "ready"))
    });
    for slot in 0..2 {
        assert_eq!(status["workers"][slot]["pid"], serving[&(slot as u64)]);
        assert_eq!(status["slots"][slot]["restarts"], 0);
    }
    let evs = c.events();
    assert_eq!(evs.iter().filter(|e| is(e, "spawned")).count(), 2);
    assert!(
        !evs.iter()
            .any(|e| ["exited", "crashed", "killed", "spawn-failed"]
                .contains(&e["event"].as_str().unwrap_or(""))),
        "a worker was seen to end: {evs:?}"
    );

    // Orphans that end while workers drain and exit: each worker's own exit status is reported
    // (the orphans' reaper never takes it), and every zombie is reaped.
    let n = c.events().len();
    let mut orphans: BTreeSet<u32> = (0..3).map(|_| orphan(&c)).collect();
    c.signal(Signal::SIGHUP);
    orphans.extend((0..3).map(|_| orphan(&c)));
    c.wait_event("rollout 2 done", n, |e| {
        is(e, "rollout-done") && e["generation"] == 2
    });
    for pid in serving.values() {
        let (_, exited) = c.wait_event("old worker exit", n, |e| {
            is(e, "exited") && pid_of(e) == *pid
        });
        assert_eq!(exited["status"], "exit 0", "a drained worker's own status");
    }
    wait_reaped(&c, &orphans);
    assert!(!c.stderr().contains("waitpid failed"), "{}", c.stderr());

    c.signal(Signal::SIGTERM);
    assert!(c.wait_exit(CEILING).success());
}

/// The children of `parent`, from /proc: (pid, state).
fn children(parent: u32) -> Vec<(u32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (state, p) = state_and_parent(pid)?;
            (p == parent).then_some((pid, state))
        })
        .collect()
}

/// PID 1 of a PID namespace, as in a container without an init, where this machine allows one
/// (root, util-linux `unshare`): orphans come to the master because it is PID 1.
#[test]
fn a_master_that_is_pid_1_of_its_namespace_reaps_orphans_too() {
    const UNSHARE: [&str; 4] = ["--pid", "--fork", "--kill-child", "--mount-proc"];
    let probe = Command::new("unshare").args(UNSHARE).arg("true").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: no PID namespace here (it takes root and util-linux unshare)");
        return;
    }
    let mut cmd = Command::new("unshare");
    cmd.args(UNSHARE).arg(FIXTURE);
    // `unshare` forks the master and stays its parent; killed (the cluster's drop), it takes
    // the master (--kill-child) and with it the whole namespace.
    let c = Cluster::start_command(cmd, &[("REGIMENT_WORKERS", "2")]);
    c.wait_serving(2);
    c.wait_log("the master is PID 1");
    let [(master, _)] = children(c.pid())[..] else {
        panic!("unshare has one child, the master: {:?}", children(c.pid()))
    };
    for _ in 0..6 {
        let answer = ask(c.addr(), "orphan").expect("orphan answered");
        let fields: Vec<&str> = answer.split_whitespace().collect();
        assert!(
            matches!(fields.as_slice(), ["orphan", _, "1"]),
            "re-parented to PID 1: {answer:?}"
        );
    }
    // Pids in the namespace differ from ours: the master's children, as seen from here, must
    // come down to its two workers, none a zombie.
    let deadline = Instant::now() + CEILING;
    loop {
        let kids = children(master);
        if kids.len() == 2 && kids.iter().all(|(_, state)| state != "Z") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the master's children: {kids:?}\n{}",
            c.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !c.events()
            .iter()
            .any(|e| is(e, "exited") || is(e, "crashed")),
        "a worker was seen to end: {:?}",
        c.events()
    );
}
