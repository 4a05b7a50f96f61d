//! Faults the master must live through, on real processes: a worker SIGKILLed under HTTP load,
//! every worker asking for its replacement at once, the master out of file descriptors, a
//! worker flooding its IPC channel, and the master stopped (SIGSTOP) in the middle of a rollout.
//!
//! Each test waits on the master's events with generous ceilings and kills what it started by
//! pid (see `tests::cluster`).

mod http_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, atomic::AtomicBool};
use std::time::{Duration, Instant};

use http_common::{pid_via_http, runtime, start_hello, wait_until};
use nix::sys::signal::Signal;
use serde_json::Value;
use tests::cluster::{CEILING, Cluster, alive, pid_of, serving, signal_pid, wait_gone, whoami};
use tests::load::{ClientSpec, LoadConfig, Mode, Report};
use tests::procfs;
use tests::scratch::ScratchDir;

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");
const IPC_FLOOD: &str = env!("CARGO_BIN_EXE_ipc_flood_under_test");
const REGIMENT: &str = env!("CARGO_BIN_EXE_regiment_under_test");

fn is(e: &Value, event: &str) -> bool {
    e["event"] == event
}

/// Load clients each run on their own, so that each one's failures are known.
struct Clients {
    stops: Vec<Arc<AtomicBool>>,
    completed: Vec<Arc<AtomicU64>>,
    runs: Vec<tokio::task::JoinHandle<Report>>,
}

impl Clients {
    fn start(
        rt: &tokio::runtime::Runtime,
        addr: std::net::SocketAddr,
        specs: &[ClientSpec],
    ) -> Self {
        let mut clients = Clients {
            stops: Vec::new(),
            completed: Vec::new(),
            runs: Vec::new(),
        };
        for spec in specs {
            let config = LoadConfig::new(addr)
                .client(spec.clone().max_requests(1_000_000))
                .max_duration(Duration::from_secs(120));
            clients.stops.push(config.stop());
            clients.completed.push(config.completed());
            clients.runs.push(rt.spawn(tests::load::run(config)));
        }
        clients
    }

    fn completed(&self) -> u64 {
        self.completed
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Waits until the clients together finished `n` more requests.
    fn wait_progress(&self, n: u64) {
        let from = self.completed();
        wait_until(&format!("{n} more requests"), CEILING, || {
            self.completed() >= from + n
        });
    }

    fn stop(self, rt: &tokio::runtime::Runtime) -> Vec<Report> {
        for s in &self.stops {
            s.store(true, Ordering::Relaxed);
        }
        self.runs
            .into_iter()
            .map(|r| rt.block_on(r).expect("a load run"))
            .collect()
    }
}

/// Keep-alive clients and clients that open a connection per request, on quick and slow paths
/// (a slow request is in flight most of the time).
fn mixed_clients(keep_alive: usize, new_connection: usize) -> Vec<ClientSpec> {
    let mut specs = vec![ClientSpec::new(Mode::KeepAlive, &["/", "/slow?ms=20"]); keep_alive];
    specs.extend(vec![
        ClientSpec::new(
            Mode::NewConnection,
            &["/slow?ms=20", "/"]
        );
        new_connection
    ]);
    specs
}

#[test]
fn a_worker_sigkilled_under_load_fails_only_its_own_requests_and_its_slot_is_respawned() {
    let c = start_hello(2, &[]);
    let first = c.wait_serving(2);
    let addr = c.addr();
    let rt = runtime();
    let specs = mixed_clients(6, 4);
    let clients = Clients::start(&rt, addr, &specs);
    clients.wait_progress(200);

    let (victim, survivor) = (first[&0], first[&1]);
    let n = c.events().len();
    signal_pid(victim, Signal::SIGKILL);
    let (_, crashed) = c.wait_event("the crash", n, |e| is(e, "crashed") && pid_of(e) == victim);
    assert_eq!(crashed["status"], "killed by SIGKILL from outside");
    let (_, respawned) = c.wait_event("the respawn ready", n, |e| is(e, "ready"));
    assert_eq!(
        respawned["slot"], 0,
        "respawned in the slot of the killed worker"
    );
    let respawned = pid_of(&respawned);
    // Load flows on the respawned worker too before the clients stop.
    clients.wait_progress(200);
    let mut answered_by_respawned = false;
    for _ in 0..200 {
        if pid_via_http(addr) == respawned {
            answered_by_respawned = true;
            break;
        }
    }
    assert!(
        answered_by_respawned,
        "the respawned worker {respawned} serves"
    );
    clients.wait_progress(100);
    let reports = clients.stop(&rt);

    // Each client has one request at a time, on one connection: it can have lost only the one
    // it had on the killed worker. Everything else, before and after, succeeded.
    let mut failures = 0;
    for (i, r) in reports.iter().enumerate() {
        eprintln!("client {i} ({:?}): {r}", specs[i]);
        assert!(
            r.failures() <= 1,
            "client {i} lost more than its request on the victim: {r}"
        );
        assert_eq!(
            r.resets,
            r.failures(),
            "only resets (the dead worker's connections): {r}"
        );
        assert!(r.ok > 0, "client {i} was served: {r}");
        failures += r.failures();
    }
    assert!(failures <= specs.len() as u64);
    eprintln!("requests lost with the killed worker: {failures}");
    // The survivor was left alone, and the slot is whole again.
    let evs = c.events();
    assert!(
        !evs.iter().any(|e| pid_of_opt(e) == Some(survivor)
            && matches!(
                e["event"].as_str(),
                Some("draining" | "exited" | "crashed" | "killed")
            )),
        "the other worker was left alone"
    );
    let now = serving(&evs);
    assert_eq!(now, BTreeMap::from([(0, respawned), (1, survivor)]));
}

fn pid_of_opt(e: &Value) -> Option<u32> {
    e["pid"].as_u64().map(|p| p as u32)
}

/// Over the events from `from` on (when every worker was ready), in order: the most workers
/// started and not yet told to drain (the surge bound counts those), the most still starting,
/// and the fewest ready.
struct Census {
    most_active: usize,
    most_starting: usize,
    fewest_serving: usize,
}

fn census(evs: &[Value], from: usize) -> Census {
    let mut active = BTreeSet::new();
    let mut starting = BTreeSet::new();
    let mut census = Census {
        most_active: 0,
        most_starting: 0,
        fewest_serving: usize::MAX,
    };
    for (i, e) in evs.iter().enumerate() {
        match e["event"].as_str() {
            Some("spawned") => {
                active.insert(pid_of(e));
                starting.insert(pid_of(e));
            }
            Some("ready") => {
                starting.remove(&pid_of(e));
            }
            Some("draining" | "exited" | "crashed" | "killed" | "start-failed") => {
                if let Some(pid) = pid_of_opt(e) {
                    active.remove(&pid);
                    starting.remove(&pid);
                }
            }
            _ => continue,
        }
        if i >= from {
            census.most_active = census.most_active.max(active.len());
            census.most_starting = census.most_starting.max(starting.len());
            census.fewest_serving = census.fewest_serving.min(serving(&evs[..=i]).len());
        }
    }
    census
}

#[test]
fn every_worker_asking_for_its_replacement_at_once_stays_within_the_surge_and_never_below_n() {
    const WORKERS: usize = 4;
    const SURGE: usize = 2;
    let c = Cluster::start(
        Path::new(FIXTURE),
        &[("REGIMENT_WORKERS", "4"), ("REGIMENT_MAX_SURGE", "2")],
    );
    let first = c.wait_serving(WORKERS);
    let n = c.events().len();
    // Each worker sends replace-me twice (see `tests::fixture`), all of them at once.
    for pid in first.values() {
        signal_pid(*pid, Signal::SIGUSR1);
    }
    for pid in first.values() {
        c.wait_event("the old worker's exit", n, |e| {
            is(e, "exited") && pid_of(e) == *pid
        });
    }
    let now = c.wait_serving(WORKERS);
    let evs = c.events();
    let old: BTreeSet<u32> = first.values().copied().collect();
    assert!(
        now.values().all(|p| !old.contains(p)),
        "{first:?} -> {now:?}"
    );
    // One replacement per worker, however many times it asked.
    let requested: Vec<u32> = evs[n..]
        .iter()
        .filter(|e| is(e, "replace-requested"))
        .map(pid_of)
        .collect();
    assert_eq!(requested.len(), WORKERS, "{requested:?}");
    let spawned = evs[n..].iter().filter(|e| is(e, "spawned")).count();
    assert_eq!(spawned, WORKERS, "one replacement each");
    assert!(!evs.iter().any(|e| is(e, "killed") || is(e, "crashed")));

    let census = census(&evs, n);
    assert!(
        census.most_starting <= SURGE,
        "{} replacements starting at once, over the surge of {SURGE}",
        census.most_starting
    );
    assert!(
        census.most_active <= WORKERS + SURGE,
        "{} workers up and not draining, over {WORKERS} + {SURGE}",
        census.most_active
    );
    assert_eq!(
        census.fewest_serving, WORKERS,
        "ready workers dropped below {WORKERS}"
    );
    // The master's own view agrees, now that it is over.
    let status = c.status_where("four ready workers", |s| {
        s["workers"]
            .as_array()
            .is_some_and(|w| w.len() == WORKERS && w.iter().all(|w| w["state"] == "ready"))
    });
    assert_eq!(status["workers_wanted"], WORKERS);
}

/// A child process killed by pid when dropped, if it is still running.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn a_master_out_of_descriptors_logs_keeps_supervising_and_recovers_when_they_free_up() {
    let dir = ScratchDir::new("faults-nofile");
    let socket = dir.join("control.sock");
    let socket_str = socket.to_str().expect("a UTF-8 path");
    let mut c = Cluster::start(
        Path::new(FIXTURE),
        &[
            ("REGIMENT_WORKERS", "2"),
            ("REGIMENT_CONTROL_SOCKET", socket_str),
        ],
    );
    let first = c.wait_serving(2);
    let addr = c.addr();
    let master = c.pid();

    // Every descriptor number the master could get is taken: any new one fails with EMFILE.
    let limit = procfs::set_nofile_soft_limit(master, 3).expect("lower the master's limit");
    let restore = NofileRestore { pid: master, limit };
    let n = c.events().len();
    // A replacement: its spawn needs descriptors (the IPC socketpair, the exec pipe).
    signal_pid(first[&0], Signal::SIGUSR1);
    let (i_failed, failed) = c.wait_event("a failed spawn", n, |e| is(e, "start-failed"));
    assert_eq!(failed["slot"], 0, "{failed}");
    let why = failed["why"].as_str().unwrap_or_default();
    assert!(why.contains("Too many open files"), "{failed}");
    // A control connection waits in the socket's queue: the master cannot accept it yet.
    let status_cli = Reaped(
        Command::new(REGIMENT)
            .arg("--socket")
            .arg(&socket)
            .args(["status", "--json"])
            // It waits for as long as the master has no descriptors: longer than the 30 s a
            // command waits by default, on a loaded machine.
            .args(["--timeout", "10m"])
            .env_remove("REGIMENT_CONTROL_SOCKET")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run regiment status"),
    );
    c.wait_log("accepting on the control socket failed");
    // Meanwhile it supervises: the replacement is retried (and fails again, after its
    // backoff), and the old worker serves on.
    c.wait_event("a retried spawn failing", i_failed + 1, |e| {
        is(e, "start-failed")
    });
    let served: BTreeSet<u32> = (0..20).map(|_| whoami(addr).2).collect();
    assert!(
        served.is_subset(&first.values().copied().collect()),
        "{served:?}"
    );
    assert!(
        c.is_running(),
        "the master survived running out of descriptors"
    );
    assert!(alive(first[&0]) && alive(first[&1]));
    let serving_now = serving(&c.events());
    assert_eq!(
        serving_now, first,
        "no worker lost while the master had no descriptors"
    );

    // Descriptors again: the queued control request is answered, the replacement comes up.
    drop(restore);
    let (_, ready) = c.wait_event("the replacement ready", n, |e| is(e, "ready"));
    assert_eq!(ready["slot"], 0);
    c.wait_event("the old worker's exit", n, |e| {
        is(e, "exited") && pid_of(e) == first[&0]
    });
    let out = wait_output(status_cli);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(status["master_pid"], master);
    // And later rollouts work as ever.
    let m = c.events().len();
    c.signal(Signal::SIGHUP);
    c.wait_event("a rollout done", m, |e| is(e, "rollout-done"));
    assert_eq!(c.wait_serving(2).len(), 2);
}

/// Restores the master's soft limit on descriptors when dropped, also if the test fails first.
struct NofileRestore {
    pid: u32,
    limit: u64,
}

impl Drop for NofileRestore {
    fn drop(&mut self) {
        if let Err(e) = procfs::set_nofile_soft_limit(self.pid, self.limit) {
            eprintln!("could not restore the master's descriptor limit: {e}");
        }
    }
}

/// Waits for `child` to exit, within the ceiling, and returns what it printed.
fn wait_output(child: Reaped) -> std::process::Output {
    let mut child = child;
    wait_until("regiment status to answer", CEILING, || {
        child.0.try_wait().expect("wait for regiment").is_some()
    });
    let mut out = std::process::Output {
        status: child.0.wait().expect("its status"),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    use std::io::Read;
    if let Some(mut s) = child.0.stdout.take() {
        s.read_to_end(&mut out.stdout).expect("read its stdout");
    }
    if let Some(mut s) = child.0.stderr.take() {
        s.read_to_end(&mut out.stderr).expect("read its stderr");
    }
    out
}

#[test]
fn a_worker_flooding_its_ipc_channel_leaves_the_master_bounded_and_the_others_served() {
    const FLOOD_MB: u64 = 160;
    const GROWTH_LIMIT_KB: u64 = 64 * 1024;
    let mut c = Cluster::start(
        Path::new(IPC_FLOOD),
        &[
            ("REGIMENT_WORKERS", "3"),
            ("FLOOD_SLOT", "1"),
            ("FLOOD_MB", &FLOOD_MB.to_string()),
        ],
    );
    let addr = c.addr();
    let master = c.pid();
    // The flooder says ready first, then floods: measure from before it is up.
    let before = procfs::rss_kb(master).expect("the master's VmRSS");
    let first = c.wait_serving(3);
    let flooder = first[&1];
    c.wait_log("flood: 16 MB written");
    // The master still supervises: a replacement asked for meanwhile goes through.
    let n = c.events().len();
    signal_pid(first[&0], Signal::SIGUSR1);
    let (_, ready) = c.wait_event("slot 0's replacement ready", n, |e| is(e, "ready"));
    assert_eq!(ready["slot"], 0);
    c.wait_event("the replaced worker's exit", n, |e| {
        is(e, "exited") && pid_of(e) == first[&0]
    });
    // The others serve throughout (the flooder serves nothing).
    let others = BTreeSet::from([pid_of(&ready), first[&2]]);
    for _ in 0..20 {
        let pid = whoami(addr).2;
        assert!(
            others.contains(&pid),
            "answered by {pid}, not one of {others:?}"
        );
    }
    c.wait_log(&format!("flood: {FLOOD_MB} MB written, done"));
    let after = procfs::rss_kb(master).expect("the master's VmRSS");
    eprintln!("master RSS: {before} kB before the flood, {after} kB after {FLOOD_MB} MB of it");
    assert!(
        after <= before + GROWTH_LIMIT_KB,
        "the master grew by {} kB while a worker flooded it with {FLOOD_MB} MB",
        after.saturating_sub(before)
    );
    // It read the flood (what it read is all but a socket buffer of what was written), and
    // said so, sparingly.
    let invalid: Vec<String> = c
        .events()
        .iter()
        .filter(|e| is(e, "invalid-message") && pid_of(e) == flooder)
        .map(|e| e["why"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        invalid
            .iter()
            .any(|w| w.contains("invalid message #100000")),
        "the master counted the flood's garbage: {:?}",
        invalid.last()
    );
    assert!(
        invalid.len() < 1000,
        "{} invalid-message events",
        invalid.len()
    );
    assert!(c.stderr().contains("invalid message from worker ignored"));
    assert!(c.is_running(), "the master survived the flood");
    assert!(
        alive(flooder),
        "the flooder is left alone: flooding is no crime"
    );
    let evs = c.events();
    assert!(
        !evs.iter().any(|e| is(e, "killed") || is(e, "crashed")),
        "no worker killed"
    );
    assert_eq!(serving(&evs).get(&2), Some(&first[&2]), "slot 2 untouched");
}

#[test]
fn a_master_stopped_and_continued_during_a_rollout_completes_it_without_loss_or_leftovers() {
    // The start timeout falls due while the master is stopped.
    const START_TIMEOUT: Duration = Duration::from_secs(4);
    let mut c = start_hello(2, &[("REGIMENT_START_TIMEOUT", "4s")]);
    let first = c.wait_serving(2);
    let addr = c.addr();
    let master = c.pid();
    let rt = runtime();
    let clients = Clients::start(&rt, addr, &mixed_clients(4, 2));
    clients.wait_progress(100);

    let n = c.events().len();
    c.signal(Signal::SIGHUP);
    let (_, spawned) = c.wait_event("the first replacement", n, |e| is(e, "spawned"));
    let spawned_at = Instant::now();
    c.signal(Signal::SIGSTOP);
    let resume = ContinueOnDrop(master);
    wait_until("the master stopped", CEILING, || {
        procfs::state(master) == Some('T')
    });
    // While it is stopped the replacement comes up and serves; its `ready` waits unread, and
    // the master's start timeout for it passes.
    let replacement = pid_of(&spawned);
    // Most often its `ready` is still unread; if the master was quicker than the SIGSTOP, the
    // stop falls later in the rollout (the old worker's drain, the next replacement).
    let ready_before_stop = c
        .events()
        .iter()
        .any(|e| is(e, "ready") && pid_of(e) == replacement);
    eprintln!("the replacement's ready read before the stop: {ready_before_stop}");
    let mut served_by_replacement = false;
    for _ in 0..2000 {
        if pid_via_http(addr) == replacement {
            served_by_replacement = true;
            break;
        }
    }
    assert!(
        served_by_replacement,
        "the replacement serves while the master is stopped"
    );
    let due = spawned_at + START_TIMEOUT + Duration::from_millis(500);
    std::thread::sleep(due.saturating_duration_since(Instant::now()));
    assert_eq!(procfs::state(master), Some('T'), "still stopped");
    drop(resume);

    let (i, _) = c.wait_event("the rollout's end", n, |e| {
        matches!(
            e["event"].as_str(),
            Some("rollout-done" | "rollout-aborted")
        )
    });
    let evs = c.events();
    assert!(
        is(&evs[i], "rollout-done"),
        "the rollout completed: {}",
        evs[i]
    );
    for e in &evs[n..] {
        assert!(
            !matches!(
                e["event"].as_str(),
                Some("killed" | "crashed" | "start-failed")
            ),
            "no worker killed or failed over the stop: {e}"
        );
    }
    clients.wait_progress(100);
    let reports = clients.stop(&rt);
    for r in &reports {
        eprintln!("client: {r}");
        http_common::assert_no_failure(r);
    }
    // Every slot has a new worker; the old ones are gone, and the master has no other child,
    // live or zombie.
    let now = c.wait_serving(2);
    assert!(
        now.values().all(|p| !first.values().any(|o| o == p)),
        "{first:?} -> {now:?}"
    );
    for pid in first.values() {
        wait_gone(*pid, CEILING);
    }
    let expected: BTreeSet<u32> = now.values().copied().collect();
    wait_until(
        "the master's children to be its two workers",
        CEILING,
        || {
            let children = procfs::children(master);
            children.iter().all(|&p| procfs::state(p) != Some('Z'))
                && children.into_iter().collect::<BTreeSet<_>>() == expected
        },
    );
    let status = c.status_where("two ready workers of generation 2", |s| {
        s["workers"].as_array().is_some_and(|w| {
            w.len() == 2
                && w.iter()
                    .all(|w| w["state"] == "ready" && w["generation"] == 2)
        })
    });
    assert_eq!(status["last_rollout"]["outcome"], "done", "{status}");
    assert!(c.is_running());
    assert!(
        c.stderr().contains("the master did not run for a while"),
        "the master noticed its stop:\n{}",
        c.stderr()
    );
}

/// Sends SIGCONT to the master when dropped, also if the test fails while it is stopped.
struct ContinueOnDrop(u32);

impl Drop for ContinueOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0 as i32), Signal::SIGCONT);
    }
}

#[test]
fn a_master_stopped_longer_than_the_heartbeat_timeout_does_not_take_its_workers_for_unresponsive() {
    let c = Cluster::start(
        Path::new(FIXTURE),
        &[
            ("REGIMENT_WORKERS", "2"),
            // Heartbeats every 100 ms, and a worker silent for 1 s is replaced.
            ("FIXTURE_HEARTBEAT_TIMEOUT_MS", "1000"),
        ],
    );
    let first = c.wait_serving(2);
    let master = c.pid();
    let before = c.status_where("two ready workers", |s| {
        s["workers"].as_array().is_some_and(|w| w.len() == 2)
    });
    let age_before = before["workers"][0]["age_ms"].as_u64().expect("an age");
    let n = c.events().len();
    c.signal(Signal::SIGSTOP);
    let resume = ContinueOnDrop(master);
    wait_until("the master stopped", CEILING, || {
        procfs::state(master) == Some('T')
    });
    // The fault: stopped for three heartbeat timeouts, while the workers beat on into their
    // channels.
    std::thread::sleep(Duration::from_secs(3));
    drop(resume);
    // Once the master has run on for more than a heartbeat timeout (ages leave the stop out),
    // or as soon as it replaced a worker.
    let taken_for_unresponsive = |evs: &[Value]| {
        evs.iter()
            .find(|e| {
                matches!(
                    e["event"].as_str(),
                    Some("replace-requested" | "draining" | "killed" | "spawned")
                )
            })
            .cloned()
    };
    c.status_where("the workers aged 2 s more, or one replaced", |s| {
        taken_for_unresponsive(&c.events()[n..]).is_some()
            || s["workers"][0]["age_ms"]
                .as_u64()
                .is_some_and(|age| age >= age_before + 2000)
    });
    let evs = c.events();
    if let Some(e) = taken_for_unresponsive(&evs[n..]) {
        panic!("a worker was taken for unresponsive: {e}\n{}", c.stderr());
    }
    assert_eq!(serving(&evs), first);
    assert!(
        c.stderr().contains("the master did not run for a while"),
        "the master noticed its stop:\n{}",
        c.stderr()
    );
}
