//! End-to-end tests of what only real processes show: exec and fd inheritance, `LISTEN_PID`,
//! process groups, signals, socket activation, the master's death, the SIGKILL at the drain
//! deadline, the hook and the environment. Real master and worker processes, real signals, a
//! real shared listener on 127.0.0.1. Each test waits on the master's events with generous
//! ceilings and kills what it started by pid (see `tests::cluster`).
//!
//! The lifecycle rules themselves (new before old, the surge, backoff, aborted rollouts,
//! stops, scaling, heartbeats) are unit tests of the policy on simulated time:
//! `regiment-core/src/master/policy/tests/rules/`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use tests::cluster::{
    CEILING, Cluster, ONE_TURN, alive, ask, pid_of, signal_pid, wait_gone, whoami,
};
use tests::deploy::{Deploy, SymlinkDeploy};

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");
const FIXTURE_V2: &str = env!("CARGO_BIN_EXE_fixture_v2");
const FIXTURE_NEVER_READY: &str = env!("CARGO_BIN_EXE_fixture_never_ready");
const FIXTURE_EXIT_EARLY: &str = env!("CARGO_BIN_EXE_fixture_exit_early");
const LAST_WORDS: &str = env!("CARGO_BIN_EXE_last_words_under_test");

fn is(e: &Value, event: &str) -> bool {
    e["event"] == event
}

fn count(evs: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    evs.iter().filter(|e| pred(e)).count()
}

/// A directory of this test's own, holding a copy of a fixture as `app`: the program path that
/// a deploy replaces.
fn start(program: impl AsRef<Path>, env: &[(&str, &str)]) -> Cluster {
    Cluster::start(program.as_ref(), env)
}

#[test]
fn workers_come_up_in_their_slots_and_share_the_listener() {
    let c = start(FIXTURE, &[("REGIMENT_WORKERS", "3")]);
    let by_slot = c.wait_serving(3);
    assert_eq!(by_slot.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
    let addr = c.addr();

    // Every worker accepts on the one shared listener.
    let mut answered: BTreeMap<u32, u64> = BTreeMap::new();
    let deadline = Instant::now() + CEILING;
    for _ in 0..5000 {
        if answered.len() == 3 || Instant::now() > deadline {
            break;
        }
        // A few connections at once, so that a busy worker leaves the next to another.
        let batch: Vec<_> = (0..6)
            .map(|_| std::thread::spawn(move || whoami(addr)))
            .collect();
        for h in batch {
            let (variant, slot, pid, generation) = h.join().unwrap();
            assert_eq!((variant.as_str(), generation), ("v1", 1));
            answered.insert(pid, slot);
        }
    }
    assert_eq!(answered.len(), 3, "not every worker accepted: {answered:?}");
    for (pid, slot) in &answered {
        assert_eq!(
            by_slot[slot], *pid,
            "slot reported by the worker matches the master's books"
        );
    }

    for (slot, pid) in &by_slot {
        // Visible in ps by name, slot and generation.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let argv0 = cmdline.split(|b| *b == 0).next().unwrap();
        assert_eq!(
            String::from_utf8_lossy(argv0),
            format!("fixture worker {slot} gen 1")
        );
        // The systemd convention, addressed to the worker itself.
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let vars: BTreeSet<String> = environ
            .split(|b| *b == 0)
            .map(|kv| String::from_utf8_lossy(kv).into_owned())
            .collect();
        assert!(vars.contains(&format!("LISTEN_PID={pid}")), "{vars:?}");
        assert!(vars.contains("LISTEN_FDS=1"));
        assert!(vars.contains(&format!("REGIMENT_WORKER_ID={slot}")));
        // Its own process group: a terminal's Ctrl+C reaches the master alone.
        let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(*pid as i32))).unwrap();
        assert_eq!(pgid.as_raw() as u32, *pid);
    }
}

/// A worker is executed through a descriptor, which the kernel names it after: the descriptor's
/// number (before Linux 6.14) or the file behind a symlink. It names itself after the program's
/// path instead, as the master was named when started by that path: `ps -e`, `top` and `pgrep`
/// show one name for the master and its workers, cut to the kernel's 15 bytes.
#[test]
fn a_worker_is_named_in_ps_after_the_program_path_as_its_master() {
    let dir = std::env::temp_dir().join(format!("regiment-comm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Longer than 15 bytes, and not the name of the file it leads to.
    let program = dir.join("regiment-named-worker");
    std::os::unix::fs::symlink(FIXTURE, &program).unwrap();
    let c = start(&program, &[("REGIMENT_WORKERS", "1")]);
    let worker = c.wait_serving(1)[&0];
    let comm = |pid: u32| {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        comm.trim_end_matches('\n').to_owned()
    };
    assert_eq!(
        comm(c.pid()),
        "regiment-named-",
        "the master, started by path"
    );
    assert_eq!(comm(worker), "regiment-named-", "the worker, as its master");
    drop(c);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn each_sighup_rolls_every_worker() {
    let c = start(FIXTURE, &[("REGIMENT_WORKERS", "2")]);
    let first = c.wait_serving(2);
    let n0 = c.events().len();

    c.signal(Signal::SIGHUP);
    c.wait_event("rollout 2 done", n0, |e| {
        is(e, "rollout-done") && e["generation"] == 2
    });
    let second = c.wait_serving(2);
    c.signal(Signal::SIGHUP);
    c.wait_event("rollout 3 done", n0, |e| {
        is(e, "rollout-done") && e["generation"] == 3
    });
    let third = c.wait_serving(2);
    for (before, after) in [(&first, &second), (&second, &third)] {
        for slot in 0..2 {
            assert_ne!(before[&slot], after[&slot], "slot {slot} was not replaced");
        }
    }
    for pid in first.values().chain(second.values()) {
        c.wait_event("old worker exit", n0, |e| {
            is(e, "exited") && pid_of(e) == *pid
        });
        wait_gone(*pid, CEILING);
    }
    // Only generation-3 processes are left to answer.
    for _ in 0..10 {
        let (_, slot, pid, generation) = whoami(c.addr());
        assert_eq!((pid, generation), (third[&slot], 3));
    }
}

#[test]
fn a_rolling_restart_runs_the_binary_now_at_the_program_path() {
    let deploy = Deploy::new("swap", FIXTURE);
    let c = start(deploy.app(), &[("REGIMENT_WORKERS", "2")]);
    let old = c.wait_serving(2);
    let addr = c.addr();
    assert_eq!(whoami(addr).0, "v1");

    deploy.install(FIXTURE_V2);
    let n0 = c.events().len();
    c.signal(Signal::SIGHUP);
    c.wait_event("rollout done", n0, |e| {
        is(e, "rollout-done") && e["generation"] == 2
    });
    for pid in old.values() {
        c.wait_event("old worker exit", n0, |e| {
            is(e, "exited") && pid_of(e) == *pid
        });
    }
    for _ in 0..10 {
        let (variant, _, _, generation) = whoami(addr);
        assert_eq!((variant.as_str(), generation), ("v2", 2));
    }
}

/// A deploy that fails leaves the bad binary at the program path; a crash of an old worker then
/// respawns its slot from the last good program, kept open by the master, not from the path.
fn crash_after_a_failed_deploy_respawns_the_good_program(
    app: &Path,
    install_bad: &dyn Fn(),
    install_good: &dyn Fn(),
) {
    let c = start(
        app,
        &[
            ("REGIMENT_WORKERS", "2"),
            ("REGIMENT_START_TIMEOUT", "2s"),
            ("FIXTURE_ROLLOUT_FAILURES", "1"),
        ],
    );
    let old = c.wait_serving(2);
    let addr = c.addr();
    install_bad();
    let n0 = c.events().len();
    c.signal(Signal::SIGHUP);
    c.wait_event("rollout 2 aborted", n0, |e| {
        is(e, "rollout-aborted") && e["generation"] == 2
    });

    // A crash of slot 1's old worker: its respawn runs generation 1's file, and serves.
    let n1 = c.events().len();
    signal_pid(old[&1], Signal::SIGKILL);
    let (_, ready) = c.wait_event("slot 1 ready again", n1, |e| {
        is(e, "ready") && e["slot"] == 1
    });
    assert_eq!(ready["generation"], 1, "{ready}");
    let respawn = pid_of(&ready);
    let evs = c.events();
    assert_eq!(
        count(&evs[n1..], |e| is(e, "start-failed")),
        0,
        "no crash loop"
    );
    let status = c.status_where("two ready workers", |s| {
        s["workers"]
            .as_array()
            .is_some_and(|w| w.len() == 2 && w.iter().all(|w| w["state"] == "ready"))
    });
    assert_eq!(status["good_generation"], 1, "{status}");
    assert_eq!(status["last_rollout"]["generation"], 2, "{status}");
    assert_eq!(status["last_rollout"]["outcome"], "aborted", "{status}");
    let programs: BTreeSet<String> = status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["program"]["inode"].to_string())
        .collect();
    assert_eq!(programs.len(), 1, "both slots run one file: {status}");
    // Every answer comes from a generation-1 worker of the first binary.
    for _ in 0..10 {
        let (variant, _, pid, generation) = whoami(addr);
        assert_eq!((variant.as_str(), generation), ("v1", 1));
        assert!(pid == respawn || pid == old[&0]);
    }

    // A good deploy still rolls out, and becomes the good program.
    install_good();
    let n2 = c.events().len();
    c.signal(Signal::SIGHUP);
    c.wait_event("rollout 3 done", n2, |e| {
        is(e, "rollout-done") && e["generation"] == 3
    });
    let status = c.status_where("good generation 3", |s| s["good_generation"] == 3);
    assert_eq!(status["last_rollout"]["outcome"], "done", "{status}");
    assert_eq!(status["last_rollout"]["replaced"], 2, "{status}");
}

/// The master keeps each generation's program open, but no worker inherits that descriptor.
#[test]
fn no_worker_inherits_the_descriptor_of_its_program() {
    let deploy = Deploy::new("programfd", FIXTURE);
    let c = start(deploy.app(), &[("REGIMENT_WORKERS", "1")]);
    c.wait_serving(1);
    let fds = ask(c.addr(), "fds").expect("an answer");
    let app = deploy.app().display().to_string();
    assert!(
        !fds.contains(&app),
        "the program is open in the worker: {fds}"
    );
    assert!(
        fds.contains("socket:"),
        "the listener and the IPC channel are: {fds}"
    );
}

#[test]
fn after_a_failed_deploy_renamed_over_the_path_a_crash_respawns_the_good_program() {
    let deploy = Deploy::new("goodprogram-rename", FIXTURE);
    crash_after_a_failed_deploy_respawns_the_good_program(
        &deploy.app(),
        &|| deploy.install(FIXTURE_EXIT_EARLY),
        &|| deploy.install(FIXTURE_V2),
    );
}

#[test]
fn after_a_failed_deploy_by_symlink_switch_a_crash_respawns_the_good_program() {
    let deploy = SymlinkDeploy::new("goodprogram-symlink", FIXTURE);
    crash_after_a_failed_deploy_respawns_the_good_program(
        &deploy.app(),
        &|| deploy.install(FIXTURE_EXIT_EARLY),
        &|| deploy.install(FIXTURE_V2),
    );
}

/// How many failures abort a rollout, the retries' backoff and which workers drain are the
/// policy's, unit tested (`regiment-core/src/master/policy/tests/rules/`). Here: real
/// processes that exit before ready or never get ready (SIGKILLed at the start timeout), and
/// the program path read again by each rollout.
#[test]
fn failing_deploys_are_aborted_the_old_worker_serves_and_a_later_rollout_works() {
    let deploy = Deploy::new("baddeploy", FIXTURE);
    let c = start(
        deploy.app(),
        &[
            ("REGIMENT_WORKERS", "1"),
            ("REGIMENT_START_TIMEOUT", "1s"),
            ("FIXTURE_ROLLOUT_FAILURES", "1"),
        ],
    );
    let old = c.wait_serving(1)[&0];
    let addr = c.addr();

    // A deploy whose workers exit before they are ready.
    deploy.install(FIXTURE_EXIT_EARLY);
    let n0 = c.events().len();
    c.signal(Signal::SIGHUP);
    let (i_abort, _) = c.wait_event("rollout 2 aborted", n0, |e| {
        is(e, "rollout-aborted") && e["generation"] == 2
    });
    let evs = c.events();
    let failed: Vec<&Value> = evs[n0..i_abort]
        .iter()
        .filter(|e| is(e, "start-failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["why"], "exited before ready: exit 3");
    wait_gone(pid_of(failed[0]), CEILING);
    let (variant, _, pid, generation) = whoami(addr);
    assert_eq!(
        (variant.as_str(), pid, generation),
        ("v1", old, 1),
        "the old worker keeps serving"
    );

    // A deploy whose workers never become ready: killed at the start timeout.
    deploy.install(FIXTURE_NEVER_READY);
    let n1 = c.events().len();
    c.signal(Signal::SIGHUP);
    let (i_abort, _) = c.wait_event("rollout 3 aborted", n1, |e| {
        is(e, "rollout-aborted") && e["generation"] == 3
    });
    let evs = c.events();
    let killed: Vec<&Value> = evs[n1..i_abort]
        .iter()
        .filter(|e| is(e, "killed"))
        .collect();
    assert_eq!(killed.len(), 1, "{killed:?}");
    assert_eq!(killed[0]["why"], "start timeout");
    wait_gone(pid_of(killed[0]), CEILING);
    let failed: Vec<&Value> = evs[n1..i_abort]
        .iter()
        .filter(|e| is(e, "start-failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["why"], "start timeout: signal 9 (SIGKILL)");
    assert_eq!(pid_of(failed[0]), pid_of(killed[0]));
    assert_eq!(whoami(addr).2, old, "the old worker still serves");
    assert!(alive(old));

    // A good deploy after two failed ones rolls out.
    deploy.install(FIXTURE_V2);
    let n2 = c.events().len();
    c.signal(Signal::SIGHUP);
    c.wait_event("rollout 4 done", n2, |e| {
        is(e, "rollout-done") && e["generation"] == 4
    });
    c.wait_event("old worker exit", n2, |e| {
        is(e, "exited") && pid_of(e) == old
    });
    let (variant, _, _, generation) = whoami(addr);
    assert_eq!((variant.as_str(), generation), ("v2", 4));
}

#[test]
fn a_worker_that_ignores_its_drain_is_sigkilled_at_the_deadline() {
    let c = start(
        FIXTURE,
        &[
            ("REGIMENT_WORKERS", "1"),
            ("FIXTURE_IGNORE_DRAIN", "1"),
            ("REGIMENT_DRAIN_TIMEOUT", "1s"),
        ],
    );
    let old = c.wait_serving(1)[&0];
    signal_pid(old, Signal::SIGUSR1);
    let (_, drain) = c.wait_event("drain", 0, |e| is(e, "draining") && pid_of(e) == old);
    let (_, killed) = c.wait_event("kill", 0, |e| is(e, "killed") && pid_of(e) == old);
    assert_eq!(killed["why"], "drain deadline");
    assert_eq!(drain["deadline_ms"], 1000);
    // Timed by the master's own log lines: see `Cluster::logged_between`.
    let waited = c.logged_between(("worker draining", old), ("worker killed", old));
    assert!(
        waited + ONE_TURN >= Duration::from_secs(1),
        "killed {waited:?} after the drain, before its 1s deadline"
    );
    let (_, exited) = c.wait_event("exit", 0, |e| is(e, "exited") && pid_of(e) == old);
    assert_eq!(exited["status"], "signal 9 (SIGKILL)");
    wait_gone(old, CEILING);
}

/// A worker's last messages and its exit reach the master by two ways that race (its IPC
/// channel, SIGCHLD): the exit is booked once the channel is read to its end. A worker that
/// writes a megabyte of heartbeats, then says it gave up its drain, and exits at once is reaped
/// while most of that is still unread; its `exited` event still says what it left.
#[test]
fn a_worker_s_last_words_are_read_before_its_exit_is_booked() {
    let c = start(LAST_WORDS, &[("REGIMENT_WORKERS", "1")]);
    let old = c.wait_serving(1)[&0];
    let n = c.events().len();
    c.signal(Signal::SIGHUP);
    let (_, e) = c.wait_event("the old worker's exit", n, |e| {
        matches!(e["event"].as_str(), Some("exited" | "crashed" | "killed")) && pid_of(e) == old
    });
    assert_eq!(
        (&e["event"], &e["status"]),
        (&"exited".into(), &"exit 0".into()),
        "{e}"
    );
    assert_eq!(
        e["abandoned_drain"],
        serde_json::json!({"in_flight": 1, "connections": 1}),
        "its last words were read after its exit was booked: {e}"
    );
}

/// The respawn delays (growing, starting over after a healthy period) are unit tested; here a
/// real worker dies of a real signal that the master did not send (an operator's `kill -9`; the
/// OOM killer's is tests/oom_kills.rs'): booked as a kill from outside, not as a crash of the
/// program, in the event, the slot's status and the log, and respawned as a crash is.
#[test]
fn a_worker_killed_from_outside_is_reported_so_and_respawned_in_its_slot() {
    let c = start(FIXTURE, &[("REGIMENT_WORKERS", "2")]);
    let first = c.wait_serving(2);
    let victim = first[&1];
    let n = c.events().len();
    signal_pid(victim, Signal::SIGKILL);
    let (_, crashed) = c.wait_event("crash", n, |e| is(e, "crashed") && pid_of(e) == victim);
    assert_eq!(crashed["slot"], 1);
    assert_eq!(crashed["status"], "killed by SIGKILL from outside");
    assert_eq!(crashed["killed_from_outside"], "SIGKILL");
    c.wait_log("worker killed by SIGKILL from outside");
    assert!(
        !c.stderr().contains("worker crashed"),
        "logged as a crash:\n{}",
        c.stderr()
    );
    c.status_where("the kill as slot 1's last restart", |s| {
        s["slots"][1]["last_restart_reason"] == "killed by SIGKILL from outside"
    });
    let delay = crashed["respawn_in_ms"].as_u64().unwrap();
    assert_eq!(delay, 100, "the first respawn delay");
    let (_, spawned) = c.wait_event("respawn", n, |e| is(e, "spawned"));
    assert_eq!(spawned["slot"], 1, "respawned in the slot that crashed");
    let respawned = pid_of(&spawned);
    let waited = c.logged_between(
        ("worker killed by SIGKILL from outside", pid_of(&crashed)),
        ("worker spawned", respawned),
    );
    assert!(
        waited + ONE_TURN >= Duration::from_millis(delay),
        "respawned {waited:?} after the crash, before its {delay} ms delay"
    );
    let now = c.wait_serving(2);
    assert_eq!(now[&1], respawned);
    assert_eq!(now[&0], first[&0], "the other slot's worker was left alone");
    let environ = std::fs::read(format!("/proc/{respawned}/environ")).unwrap();
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|kv| kv == b"REGIMENT_WORKER_ID=1"),
        "the respawned worker has its slot's id"
    );
}

#[test]
fn sigterm_drains_in_flight_work_and_leaves_no_process() {
    let mut c = start(FIXTURE, &[("REGIMENT_WORKERS", "2")]);
    c.wait_serving(2);
    let addr = c.addr();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"sleep 1500\n").unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("started"), "{line:?}");

    c.signal(Signal::SIGTERM);
    line.clear();
    r.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("done"),
        "the in-flight request completes: {line:?}"
    );
    let status = c.wait_exit(CEILING);
    assert!(status.success(), "master exit: {status:?}");
    c.wait_all_gone(CEILING);
    let evs = c.events();
    assert!(is(evs.last().unwrap(), "stopped"));
    assert_eq!(
        count(&evs, |e| is(e, "crashed")),
        0,
        "no exit was taken for a crash"
    );
}

#[test]
fn a_second_sigterm_stops_at_once() {
    let mut c = start(
        FIXTURE,
        &[
            ("REGIMENT_WORKERS", "2"),
            ("FIXTURE_IGNORE_DRAIN", "1"),
            ("REGIMENT_DRAIN_TIMEOUT", "600s"),
        ],
    );
    c.wait_serving(2);
    c.signal(Signal::SIGTERM);
    c.wait_event("graceful stop", 0, |e| {
        is(e, "stopping") && e["forced"] == false
    });
    c.signal(Signal::SIGTERM);
    c.wait_event("forced stop", 0, |e| {
        is(e, "stopping") && e["forced"] == true
    });
    // Far sooner than the 600 s drain deadline.
    let status = c.wait_exit(CEILING);
    assert!(status.success(), "{status:?}");
    c.wait_all_gone(CEILING);
    assert_eq!(
        count(&c.events(), |e| is(e, "killed")
            && e["why"] == "forced stop"),
        2
    );
}

#[test]
fn sigint_stops_gracefully_too_and_a_second_one_at_once() {
    // Ctrl+C in a terminal: the workers are in their own process group, so only the master
    // gets it, and it drains them in order.
    let mut c = start(
        FIXTURE,
        &[
            ("REGIMENT_WORKERS", "2"),
            ("FIXTURE_IGNORE_DRAIN", "1"),
            ("REGIMENT_DRAIN_TIMEOUT", "600s"),
        ],
    );
    let workers = c.wait_serving(2);
    c.signal(Signal::SIGINT);
    c.wait_event("graceful stop", 0, |e| {
        is(e, "stopping") && e["forced"] == false
    });
    for pid in workers.values() {
        c.wait_event("a worker told to drain", 0, |e| {
            is(e, "draining") && pid_of(e) == *pid && e["why"] == "stopping"
        });
    }
    c.signal(Signal::SIGINT);
    c.wait_event("forced stop", 0, |e| {
        is(e, "stopping") && e["forced"] == true
    });
    let status = c.wait_exit(CEILING);
    assert!(status.success(), "{status:?}");
    c.wait_all_gone(CEILING);
}

#[test]
fn workers_exit_on_their_own_when_the_master_is_sigkilled() {
    let mut c = start(FIXTURE, &[("REGIMENT_WORKERS", "2")]);
    let workers = c.wait_serving(2);
    c.signal(Signal::SIGKILL);
    c.wait_exit(CEILING);
    for pid in workers.values() {
        wait_gone(*pid, Duration::from_secs(20));
    }
}

#[test]
fn garbage_on_the_ipc_channel_is_logged_and_survived() {
    let mut c = start(
        FIXTURE,
        &[("REGIMENT_WORKERS", "1"), ("FIXTURE_NO_HEARTBEAT", "1")],
    );
    let old = c.wait_serving(1)[&0];
    // Non-JSON, an unknown type, a future version, a 1 MB frame; then a valid replace-me.
    signal_pid(old, Signal::SIGUSR2);
    let (_, new) = c.wait_event("replacement ready", 0, |e| {
        is(e, "ready") && pid_of(e) != old
    });
    c.wait_event("old exit", 0, |e| is(e, "exited") && pid_of(e) == old);
    let evs = c.events();
    let invalid: Vec<&str> = evs
        .iter()
        .filter(|e| is(e, "invalid-message") && pid_of(e) == old)
        .map(|e| e["why"].as_str().unwrap())
        .collect();
    assert_eq!(invalid.len(), 4, "{invalid:?}");
    assert!(invalid[0].contains("not a protocol message"));
    assert!(invalid[1].contains("unknown or malformed"));
    assert!(invalid[2].contains("version 99"));
    assert!(invalid[3].contains("exceeds the limit"));
    let requested = evs.iter().find(|e| is(e, "replace-requested")).unwrap();
    assert_eq!(requested["reason"], "after garbage");
    assert!(c.stderr().contains("invalid message from worker ignored"));
    // The master still supervises: it answers and serves through the new worker.
    assert_eq!(whoami(c.addr()).2, pid_of(&new));
    assert!(c.is_running(), "the master is still up");
}

#[test]
fn bad_options_and_busy_addresses_fail_before_any_worker_starts() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let mut c = start(
        FIXTURE,
        &[("REGIMENT_BIND", &addr), ("REGIMENT_WORKERS", "2")],
    );
    let status = c.wait_exit(CEILING);
    assert!(!status.success());
    let err = c.stderr();
    assert!(
        err.contains("`REGIMENT_BIND`") && err.contains(&addr) && err.contains("in use"),
        "{err}"
    );
    assert!(
        c.events().is_empty(),
        "nothing was started: {:?}",
        c.events()
    );
    assert!(c.live_processes().is_empty());

    let mut c = start(FIXTURE, &[("REGIMENT_WORKERS", "0")]);
    assert!(!c.wait_exit(CEILING).success());
    let err = c.stderr();
    assert!(
        err.contains("`REGIMENT_WORKERS`") && err.contains("from 1 to 1024"),
        "{err}"
    );

    let mut c = start(FIXTURE, &[("REGIMENT_DRAIN_TIMEOUT", "soon")]);
    assert!(!c.wait_exit(CEILING).success());
    let err = c.stderr();
    assert!(
        err.contains("`REGIMENT_DRAIN_TIMEOUT`") && err.contains("30s"),
        "{err}"
    );
}

#[test]
fn a_shutdown_during_a_rollout_stops_everything() {
    let mut c = start(
        FIXTURE,
        &[("REGIMENT_WORKERS", "2"), ("FIXTURE_READY_DELAY_MS", "500")],
    );
    c.wait_serving(2);
    c.signal(Signal::SIGHUP);
    c.wait_event("a generation-2 spawn", 0, |e| {
        is(e, "spawned") && e["generation"] == 2
    });
    c.signal(Signal::SIGTERM);
    assert!(c.wait_exit(CEILING).success());
    c.wait_all_gone(CEILING);
    assert_eq!(count(&c.events(), |e| is(e, "rollout-done")), 0);
}

/// What the snapshot says of states, generations, reasons and restarts is unit tested; here it
/// is published by a real master, with real pids and listeners.
#[test]
fn the_status_snapshot_shows_the_master_its_listeners_and_its_workers() {
    let c = start(FIXTURE, &[("REGIMENT_WORKERS", "2")]);
    let serving = c.wait_serving(2);
    let status = c.status_where("both workers ready", |s| {
        s["workers"]
            .as_array()
            .is_some_and(|w| w.len() == 2 && w.iter().all(|w| w["state"] == "ready"))
    });
    assert_eq!(status["master_pid"], c.pid());
    assert_eq!(status["generation"], 1);
    assert_eq!(status["workers_wanted"], 2);
    assert_eq!(status["listeners"][0], c.addr().to_string());
    let workers = status["workers"].as_array().unwrap();
    for (slot, w) in workers.iter().enumerate() {
        assert_eq!(w["slot"], slot);
        assert_eq!(w["pid"], serving[&(slot as u64)]);
        assert_eq!(w["generation"], 1);
    }
    for slot in 0..2 {
        assert_eq!(status["slots"][slot]["restarts"], 0);
    }
}

#[test]
fn sigttin_adds_a_worker_and_sigttou_removes_one() {
    let c = start(FIXTURE, &[("REGIMENT_WORKERS", "2")]);
    c.wait_serving(2);
    c.signal(Signal::SIGTTIN);
    c.wait_event("scaled to 3", 0, |e| is(e, "scaled") && e["workers"] == 3);
    let three = c.wait_serving(3);
    c.signal(Signal::SIGTTOU);
    let (i, _) = c.wait_event("scaled to 2", 0, |e| is(e, "scaled") && e["workers"] == 2);
    let (_, drained) = c.wait_event("the last slot drained", i, |e| is(e, "draining"));
    assert_eq!(drained["slot"], 2);
    assert_eq!(pid_of(&drained), three[&2]);
    c.wait_event("its exit", i, |e| is(e, "exited") && pid_of(e) == three[&2]);
    assert_eq!(c.wait_serving(2).len(), 2);
}

#[test]
fn readiness_manual_waits_for_the_call_and_started_does_not_wait_for_listening() {
    let c = start(
        FIXTURE,
        &[
            ("REGIMENT_WORKERS", "1"),
            ("REGIMENT_READINESS", "manual"),
            ("FIXTURE_MANUAL_READY_MS", "500"),
        ],
    );
    let (_, spawned) = c.wait_event("spawn", 0, |e| is(e, "spawned"));
    let (_, ready) = c.wait_event("ready", 0, |e| is(e, "ready"));
    assert_eq!(pid_of(&ready), pid_of(&spawned));
    // The worker calls ready() 500 ms after it started (after its spawn's log line); the
    // master's lines time both (`Cluster::logged_between`).
    let waited = c.logged_between(
        ("worker spawned", pid_of(&spawned)),
        ("worker ready", pid_of(&ready)),
    );
    assert!(
        waited + ONE_TURN >= Duration::from_millis(500),
        "listening() did not count under readiness manual: ready {waited:?} after the spawn"
    );
    drop(c);

    // The worker would call listening() only after 10 minutes: `started` does not wait for it.
    let c = start(
        FIXTURE,
        &[
            ("REGIMENT_WORKERS", "1"),
            ("REGIMENT_READINESS", "started"),
            ("FIXTURE_READY_DELAY_MS", "600000"),
        ],
    );
    c.wait_serving(1);
}

#[test]
fn workers_get_the_configured_environment_and_the_before_spawn_hook_runs_per_spawn() {
    let c = start(FIXTURE, &[("REGIMENT_WORKERS", "1")]);
    c.wait_serving(1);
    let addr = c.addr();
    assert_eq!(
        tests::cluster::ask(addr, "env FIXTURE_FROM_BUILDER").unwrap(),
        "builder"
    );
    assert_eq!(
        tests::cluster::ask(addr, "env FIXTURE_FROM_HOOK").unwrap(),
        "slot0-gen1"
    );
    c.signal(Signal::SIGHUP);
    c.wait_event("rollout", 0, |e| is(e, "rollout-done"));
    c.wait_event("old exit", 0, |e| is(e, "exited"));
    assert_eq!(
        tests::cluster::ask(addr, "env FIXTURE_FROM_HOOK").unwrap(),
        "slot0-gen2"
    );
}

#[test]
fn workers_get_the_masters_arguments_or_the_configured_ones() {
    let mut cmd = std::process::Command::new(FIXTURE);
    cmd.args(["--from-master", "x"]);
    let c = Cluster::start_command(cmd, &[("REGIMENT_WORKERS", "1")]);
    c.wait_serving(1);
    assert_eq!(
        tests::cluster::ask(c.addr(), "args").unwrap(),
        "--from-master x"
    );
    drop(c);

    let mut cmd = std::process::Command::new(FIXTURE);
    cmd.args(["--from-master", "x"]);
    let c = Cluster::start_command(
        cmd,
        &[
            ("REGIMENT_WORKERS", "1"),
            ("FIXTURE_WORKER_ARGS", "--role worker"),
        ],
    );
    c.wait_serving(1);
    assert_eq!(
        tests::cluster::ask(c.addr(), "args").unwrap(),
        "--role worker"
    );
}

#[test]
fn contract_variables_in_the_masters_environment_are_reset_for_workers() {
    // As if the master had itself been started by a worker, or by systemd for another pid.
    let c = start(
        FIXTURE,
        &[
            ("REGIMENT_WORKERS", "1"),
            ("REGIMENT_GENERATION", "77"),
            ("REGIMENT_WORKER_ID", "9"),
            ("LISTEN_FDNAMES", "stale"),
            ("LISTEN_PID", "1"),
        ],
    );
    c.wait_serving(1);
    let addr = c.addr();
    let ask = |name| tests::cluster::ask(addr, &format!("env {name}")).unwrap();
    assert_eq!(ask("REGIMENT_GENERATION"), "1");
    assert_eq!(ask("REGIMENT_WORKER_ID"), "0");
    assert_eq!(ask("LISTEN_FDNAMES"), "regiment0");
    assert_eq!(ask("LISTEN_PID"), whoami(addr).2.to_string());
}

#[test]
fn a_regiment_variable_the_master_does_not_know_is_reported_naming_the_closest_one() {
    // A typo of REGIMENT_WORKERS: the master starts (with one worker), and says so.
    let c = start(
        FIXTURE,
        &[("REGIMENT_WORKERS", "1"), ("REGIMENT_WORKER", "4")],
    );
    c.wait_log(
        "REGIMENT_WORKER is not a variable regiment reads, and is ignored: did you mean \
         REGIMENT_WORKERS?",
    );
    c.wait_serving(1);
    assert!(c.stderr().contains("WARN"), "{}", c.stderr());
}

#[test]
fn tcp_and_unix_listeners_are_served_by_every_worker_and_ready_counts_once() {
    let dir = std::env::temp_dir().join(format!("regiment-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("app.sock");
    let bind = format!("127.0.0.1:0,unix:{}", sock.display());
    let mut c = start(
        FIXTURE,
        &[
            ("REGIMENT_WORKERS", "2"),
            ("REGIMENT_BIND", &bind),
            ("FIXTURE_READY_TWICE", "1"),
        ],
    );
    let workers = c.wait_serving(2);
    let (_, listening) = c.wait_event("listening", 0, |e| is(e, "listening"));
    assert_eq!(listening["addrs"][1], format!("unix:{}", sock.display()));
    let addr: std::net::SocketAddr = listening["addrs"][0].as_str().unwrap().parse().unwrap();
    assert_eq!(whoami(addr).0, "v1");
    let over_unix = tests::cluster::ask_unix(&sock, "whoami").unwrap();
    assert!(over_unix.starts_with("v1 "), "{over_unix}");
    for pid in workers.values() {
        let environ =
            String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).unwrap())
                .into_owned();
        assert!(environ.split('\0').any(|kv| kv == "LISTEN_FDS=2"));
        assert!(
            environ
                .split('\0')
                .any(|kv| kv == "LISTEN_FDNAMES=regiment0:regiment1")
        );
    }
    // Each worker sent `ready` three times (listening() and two raw frames); the master counts
    // one. Asked for a status after the frames were sent, so that they have been read.
    c.status_where("both workers ready", |s| {
        s["workers"]
            .as_array()
            .is_some_and(|w| w.len() == 2 && w.iter().all(|w| w["state"] == "ready"))
    });
    let evs = c.events();
    for pid in workers.values() {
        assert_eq!(count(&evs, |e| is(e, "ready") && pid_of(e) == *pid), 1);
    }
    assert!(count(&evs, |e| is(e, "invalid-message")) == 0);
    // The master created the socket file: it removes it when it stops.
    assert!(sock.exists());
    c.signal(Signal::SIGTERM);
    assert!(c.wait_exit(CEILING).success());
    assert!(!sock.exists(), "the socket file is removed at exit");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_master_started_by_socket_activation_uses_the_socket_it_was_given() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = listener.as_raw_fd();
    // As systemd does: the socket at fd 3, LISTEN_PID naming the master itself (`exec` keeps
    // the shell's pid).
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        "LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web exec \"$0\"",
        FIXTURE,
    ]);
    // SAFETY: dup2 is async-signal-safe; nothing else runs between fork and exec.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself would keep close-on-exec: clear the flag instead.
            let ok = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if ok < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let c = Cluster::start_command(cmd, &[("REGIMENT_WORKERS", "2")]);
    c.wait_serving(2);
    assert_eq!(
        c.addr(),
        addr,
        "the activated socket, not REGIMENT_BIND's ephemeral port"
    );
    drop(listener);
    assert_eq!(whoami(addr).0, "v1");
    assert_eq!(
        ask(addr, "env LISTEN_FDNAMES").unwrap().trim(),
        "web",
        "workers see the socket as systemd named it"
    );
}

#[test]
fn a_worker_whose_runtime_is_blocked_is_replaced() {
    let c = start(
        FIXTURE,
        &[
            ("REGIMENT_WORKERS", "1"),
            ("FIXTURE_HEARTBEAT_TIMEOUT_MS", "1500"),
            // The drain timeout is not what the blocked worker gets: its grace is.
            ("REGIMENT_DRAIN_TIMEOUT", "30s"),
            ("REGIMENT_UNRESPONSIVE_GRACE", "500ms"),
        ],
    );
    let old = c.wait_serving(1)[&0];
    let addr = c.addr();
    // Only a worker that has sent heartbeats is judged by their absence: block it only once
    // the master has heard one (otherwise the block can win the race with the first beat).
    c.status_where("a heartbeat from the worker", |s| {
        s["workers"][0]["rss"].as_u64().is_some_and(|rss| rss > 0)
    });
    assert_eq!(tests::cluster::ask(addr, "block").unwrap(), "blocking");
    let (_, silent) = c.wait_event("unresponsive", 0, |e| {
        is(e, "unresponsive") && pid_of(e) == old
    });
    assert!(silent["silent_ms"].as_u64().unwrap() > 1500);
    let (i_ready, new) = c.wait_event("replacement ready", 0, |e| {
        is(e, "ready") && pid_of(e) != old
    });
    let (i_drain, draining) =
        c.wait_event("old draining", 0, |e| is(e, "draining") && pid_of(e) == old);
    assert!(i_ready < i_drain);
    // Blocked, it cannot finish its drain: killed once its grace (not the drain timeout) passed.
    assert_eq!(draining["deadline_ms"], 500);
    let (_, killed) = c.wait_event("old killed", 0, |e| is(e, "killed") && pid_of(e) == old);
    assert_eq!(killed["why"], "unresponsive");
    assert_eq!(whoami(addr).2, pid_of(&new));
}

/// A signal that arrives after `build()` and before `run()` (while `main` sets up the rest)
/// neither kills the master with its default action nor is lost: a SIGHUP rolls the workers
/// once `run` starts.
#[test]
fn a_sighup_between_build_and_run_rolls_the_workers_once_run_starts() {
    let c = start(
        FIXTURE,
        &[
            ("REGIMENT_WORKERS", "1"),
            ("FIXTURE_SIGNALS_BEFORE_RUN", "SIGHUP"),
        ],
    );
    c.wait_event("rollout to generation 2 done", 0, |e| {
        is(e, "rollout-done") && e["generation"] == 2
    });
    assert_eq!(c.wait_serving(1).len(), 1);
}

/// ... and a SIGTERM stops it gracefully once `run` starts: exit 0, its workers gone.
#[test]
fn a_sigterm_between_build_and_run_stops_the_master_gracefully_once_run_starts() {
    let mut c = start(
        FIXTURE,
        &[
            ("REGIMENT_WORKERS", "1"),
            ("FIXTURE_SIGNALS_BEFORE_RUN", "SIGTERM"),
        ],
    );
    let status = c.wait_exit(CEILING);
    assert!(status.success(), "{status}\n{}", c.stderr());
    assert!(
        c.events().iter().any(|e| is(e, "stopped")),
        "{:?}",
        c.events()
    );
    c.wait_all_gone(CEILING);
}

#[test]
fn the_restart_signal_can_be_chosen() {
    let c = start(
        FIXTURE,
        &[
            ("REGIMENT_WORKERS", "1"),
            // Not among the defaults (SIGHUP): it rolls only if chosen.
            ("REGIMENT_RESTART_SIGNAL", "SIGUSR1"),
        ],
    );
    let old = c.wait_serving(1)[&0];
    c.signal(Signal::SIGUSR1);
    c.wait_event("rollout done", 0, |e| {
        is(e, "rollout-done") && e["generation"] == 2
    });
    c.wait_event("old exit", 0, |e| is(e, "exited") && pid_of(e) == old);
}
