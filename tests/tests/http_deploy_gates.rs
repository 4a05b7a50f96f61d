//! Deploys gated on health, end to end. Canary rollouts: `hello` with 3 workers and a canary of 1,
//! under load. A build that answers every request with a 500, or whose handler panics so that no
//! request gets an answer, is refused at the end of its window (the reason names both ratios),
//! its canary is taken out of service at once and its slot filled by the good program, and no
//! request sent after the canary is gone fails. A good build passes its canary and rolls out; a
//! crash afterwards respawns the new program. A build that fails its own health check never gets ready:
//! the rollout is aborted and the old workers serve on.

mod http_common;

use std::io::BufReader;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_common::{connect, read_response, send_get};
use nix::sys::signal::Signal;
use serde_json::Value;
use tests::cluster::{Cluster, pid_of, signal_pid, wait_gone};
use tests::deploy::Deploy;

const HELLO: &str = env!("CARGO_BIN_EXE_hello_under_test");
const HELLO_500: &str = env!("CARGO_BIN_EXE_hello_500_under_test");
const HELLO_PANIC: &str = env!("CARGO_BIN_EXE_hello_panic_under_test");
const HELLO_UNHEALTHY: &str = env!("CARGO_BIN_EXE_hello_unhealthy_under_test");
const HELLO_CRASHY: &str = env!("CARGO_BIN_EXE_hello_crashy_under_test");

fn is(e: &Value, event: &str) -> bool {
    e["event"] == event
}

/// Answers by phase of the test: (200s, 500s, anything else).
type Tally = [[u64; 3]; 4];

/// How many answers each load client has had so far.
type Progress = Arc<[AtomicU64; CLIENTS]>;

const CLIENTS: usize = 3;

/// Clients sending `GET /` on a new connection each time (so every request goes through the
/// shared accept queue), tagged with the test's phase when sent. Bounded in time and count.
fn load(
    addr: SocketAddr,
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
) -> (Vec<std::thread::JoinHandle<Tally>>, Progress) {
    let progress: Progress = Arc::new(std::array::from_fn(|_| AtomicU64::new(0)));
    let clients = (0..CLIENTS)
        .map(|i| {
            let (phase, stop, progress) = (phase.clone(), stop.clone(), progress.clone());
            std::thread::spawn(move || {
                let mut tally: Tally = [[0; 3]; 4];
                let deadline = Instant::now() + Duration::from_secs(120);
                for _ in 0..200_000 {
                    if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                        break;
                    }
                    let p = phase.load(Ordering::Relaxed) as usize;
                    let mut s = connect(addr);
                    send_get(&mut s, "/");
                    let class = match read_response(&mut BufReader::new(s)) {
                        Ok(r) if r.status == 200 => 0,
                        Ok(r) if r.status == 500 => 1,
                        _ => 2,
                    };
                    tally[p][class] += 1;
                    progress[i].fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
                tally
            })
        })
        .collect();
    (clients, progress)
}

/// Waits for the load clients to end; their answers, added up.
fn join(clients: Vec<std::thread::JoinHandle<Tally>>) -> Tally {
    let mut tally: Tally = [[0; 3]; 4];
    for client in clients {
        let t = client.join().expect("a load client");
        for (sum, answers) in tally.iter_mut().flatten().zip(t.iter().flatten()) {
            *sum += answers;
        }
    }
    tally
}

/// Waits until every client has had two more answers: the requests they sent before now are
/// all answered (or failed).
fn wait_in_flight_done(progress: &Progress) {
    let from: Vec<u64> = progress.iter().map(|p| p.load(Ordering::Relaxed)).collect();
    let deadline = Instant::now() + tests::cluster::CEILING;
    while progress
        .iter()
        .zip(&from)
        .any(|(p, f)| p.load(Ordering::Relaxed) < f + 2)
    {
        assert!(Instant::now() < deadline, "the load clients stalled");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts `hello` deployed at `deploy`'s path with `workers` workers (printing its events, on
/// top of `env`) and waits until they serve.
fn start_deployed(deploy: &Deploy, workers: &str, env: &[(&str, &str)]) -> Cluster {
    let mut all = vec![
        ("HELLO_WORKERS", workers),
        ("HELLO_PRINT_EVENTS", "true"),
        ("RUST_LOG", "warn"),
    ];
    all.extend_from_slice(env);
    let c = Cluster::start(&deploy.app(), &all);
    let n: usize = workers.parse().expect("a number of workers");
    c.wait_for("the workers ready", tests::cluster::CEILING, |evs| {
        (evs.iter().filter(|e| is(e, "ready")).count() >= n).then_some(())
    });
    c
}

fn start(app: &std::path::Path) -> Cluster {
    Cluster::start(
        app,
        &[
            ("HELLO_WORKERS", "3"),
            ("HELLO_PRINT_EVENTS", "true"),
            ("HELLO_MAX_REQUESTS", "100000000"),
            ("RUST_LOG", "warn"),
            ("REGIMENT_CANARY_WORKERS", "1"),
            ("REGIMENT_CANARY_WINDOW", "3s"),
            ("REGIMENT_CANARY_MIN_REQUESTS", "20"),
            ("REGIMENT_CANARY_MAX_ERROR_RATIO", "0.01"),
        ],
    )
}

/// What the rollout record says the canary's workers answered over the window:
/// (requests, 5xx answers, requests with no answer).
fn canary_counted(status: &Value) -> (u64, u64, u64) {
    let canary = &status["last_rollout"]["canary"]["canary"];
    let n = |field: &str| canary[field].as_u64().expect("the canary's figures");
    (n("requests"), n("responses_5xx"), n("failures"))
}

#[test]
fn a_canary_answering_500_is_refused_and_a_good_build_rolls_out() {
    let deploy = Deploy::new("canary", HELLO);
    let c = start(&deploy.app());
    let addr = c.addr();
    c.wait_for("3 workers ready", tests::cluster::CEILING, |evs| {
        (evs.iter().filter(|e| is(e, "ready")).count() >= 3).then_some(())
    });

    let phase = Arc::new(AtomicU8::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (clients, _) = load(addr, phase.clone(), stop.clone());

    // Phase 1: the broken build's canary serves beside the good workers.
    deploy.install(HELLO_500);
    let n0 = c.events().len();
    phase.store(1, Ordering::Relaxed);
    c.signal(Signal::SIGHUP);
    let (_, canary) = c.wait_event("the canary spawned", n0, |e| {
        is(e, "spawned") && e["generation"] == 2
    });
    let (_, aborted) = c.wait_event("rollout 2 refused", n0, |e| {
        is(e, "rollout-aborted") && e["generation"] == 2
    });
    let why = aborted["why"].as_str().unwrap();
    assert!(
        why.starts_with("the canary of generation 2 failed 100.00% of ")
            && why.contains("generation 1 0.00% of "),
        "{why}"
    );
    // Taken out of service at once, its slot filled by the good program; then gone.
    wait_gone(pid_of(&canary), tests::cluster::CEILING);
    // Phase 2: every request sent from now on is served by generation 1.
    phase.store(2, Ordering::Relaxed);
    let status = c.status_where("the canary's slot back on generation 1", |s| {
        s["workers"].as_array().is_some_and(|w| {
            w.len() == 3
                && w.iter()
                    .all(|w| w["generation"] == 1 && w["state"] == "ready")
        })
    });
    assert_eq!(status["last_rollout"]["outcome"], "aborted", "{status}");
    assert_eq!(status["good_generation"], 1);
    std::thread::sleep(Duration::from_millis(500));

    // Phase 3: a good build passes its canary (the load gives it requests to be judged on)
    // and rolls out.
    phase.store(3, Ordering::Relaxed);
    deploy.install(HELLO);
    let n1 = c.events().len();
    c.signal(Signal::SIGHUP);
    c.wait_event("canary 3 passed", n1, |e| {
        is(e, "canary-passed") && e["generation"] == 3
    });
    c.wait_event("rollout 3 done", n1, |e| {
        is(e, "rollout-done") && e["generation"] == 3
    });
    stop.store(true, Ordering::Relaxed);
    let tally = join(clients);
    eprintln!("answers by phase [200, 500, other]: {tally:?}");
    assert_eq!(tally[0][1] + tally[0][2], 0, "before the deploy: all 200");
    assert!(tally[1][1] > 0, "the canary served during its window");
    // One accept queue feeds every worker, so the canary's share of the requests is whatever
    // the kernel's wake-ups make it; what must hold is that the 500s the refusal counted were
    // seen by the clients, none lost or invented.
    let (requests, errors, failures) = canary_counted(&status);
    assert!(
        requests >= 20 && errors == requests && failures == 0 && tally[1][1] >= errors,
        "the refusal counted {errors} 500s in {requests} requests of the canary; the clients \
         saw {} 500s",
        tally[1][1]
    );
    assert_eq!(tally[1][2], 0, "no request failed otherwise");
    assert!(tally[2][0] > 0);
    assert_eq!(
        tally[2][1] + tally[2][2],
        0,
        "after the canary: no 500, no failure"
    );
    assert!(tally[3][0] > 0);
    assert_eq!(
        tally[3][1] + tally[3][2],
        0,
        "the good build: no 500, no failure"
    );

    // A crash now respawns the new program.
    let status = c.status_where("good generation 3", |s| s["good_generation"] == 3);
    let victim = status["workers"][0]["pid"].as_u64().unwrap() as u32;
    let n2 = c.events().len();
    signal_pid(victim, Signal::SIGKILL);
    let (_, ready) = c.wait_event("the respawn ready", n2, |e| is(e, "ready"));
    assert_eq!(ready["generation"], 3, "{ready}");
}

#[test]
fn a_canary_whose_handlers_panic_is_refused_in_its_window_and_nothing_fails_after_it() {
    let deploy = Deploy::new("canary-panics", HELLO);
    let c = start_deployed(
        &deploy,
        "3",
        &[
            ("HELLO_MAX_REQUESTS", "100000000"),
            ("REGIMENT_CANARY_WORKERS", "1"),
            ("REGIMENT_CANARY_WINDOW", "5s"),
            ("REGIMENT_CANARY_MIN_REQUESTS", "100"),
            // One line a panic: thousands of backtraces would slow the test, not change it.
            ("RUST_BACKTRACE", "0"),
        ],
    );
    let phase = Arc::new(AtomicU8::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (clients, _) = load(c.addr(), phase.clone(), stop.clone());

    deploy.install(HELLO_PANIC);
    let n0 = c.events().len();
    phase.store(1, Ordering::Relaxed);
    c.signal(Signal::SIGHUP);
    let (_, canary) = c.wait_event("the canary spawned", n0, |e| {
        is(e, "spawned") && e["generation"] == 2
    });
    let (i_abort, aborted) = c.wait_event("rollout 2 refused", n0, |e| {
        is(e, "rollout-aborted") && e["generation"] == 2
    });
    let why = aborted["why"].as_str().unwrap();
    assert!(
        why.starts_with("the canary of generation 2 failed 100.00% of ")
            && why.contains(" answered 5xx, ")
            && why.contains(" got no answer), generation 1 0.00% of "),
        "{why}"
    );
    // Refused by its canary, at the end of its window: no other worker ran the build.
    let evs = c.events();
    let spawned_2: Vec<&Value> = evs[n0..i_abort]
        .iter()
        .filter(|e| is(e, "spawned") && e["generation"] == 2)
        .collect();
    assert_eq!(spawned_2.len(), 1, "only the canary: {spawned_2:?}");
    wait_gone(pid_of(&canary), tests::cluster::CEILING);
    // From now on every request is answered by generation 1.
    phase.store(2, Ordering::Relaxed);
    let status = c.status_where("three ready workers of generation 1", |s| {
        s["workers"].as_array().is_some_and(|w| {
            w.len() == 3
                && w.iter()
                    .all(|w| w["generation"] == 1 && w["state"] == "ready")
        })
    });
    assert_eq!(status["last_rollout"]["outcome"], "aborted", "{status}");
    assert_eq!(
        status["last_rollout"]["canary"]["passed"], false,
        "{status}"
    );
    assert_eq!(status["good_generation"], 1);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let tally = join(clients);
    eprintln!("answers by phase [200, 500, other]: {tally:?}");
    assert_eq!(tally[0][1] + tally[0][2], 0, "before the deploy: all 200");
    // Every request the canary counted as failed got no answer at the client, and at least the
    // window's minimum of them was counted: the refusal is about what clients saw. (A heartbeat
    // may fall between a request's arrival and its panic: one a client at most.)
    let (requests, errors, failures) = canary_counted(&status);
    let in_flight = requests - failures.min(requests);
    assert!(
        requests >= 100 && errors == 0 && in_flight <= CLIENTS as u64 && tally[1][2] >= failures,
        "the refusal counted {failures} failures in {requests} requests of the canary; the \
         clients saw {} requests without an answer",
        tally[1][2]
    );
    assert_eq!(tally[1][1], 0, "a panic answers no 500");
    assert!(tally[2][0] > 0);
    assert_eq!(
        tally[2][1] + tally[2][2],
        0,
        "after the canary: every request answered"
    );
}

#[test]
fn a_build_failing_its_health_check_never_gets_ready_and_its_rollout_is_aborted() {
    let deploy = Deploy::new("unhealthy", HELLO);
    let c = start_deployed(&deploy, "2", &[]);
    let addr = c.addr();
    deploy.install(HELLO_UNHEALTHY);
    let n0 = c.events().len();
    c.signal(Signal::SIGHUP);
    let (i, _) = c.wait_event("rollout 2 aborted", n0, |e| {
        is(e, "rollout-aborted") && e["generation"] == 2
    });
    let evs = c.events();
    let failed: Vec<&Value> = evs[n0..i]
        .iter()
        .filter(|e| is(e, "start-failed"))
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    for f in &failed {
        assert_eq!(f["why"], "exited before ready: exit 1", "{f}");
    }
    assert_eq!(
        evs[n0..].iter().filter(|e| is(e, "ready")).count(),
        0,
        "no worker of the unhealthy build got ready"
    );
    for _ in 0..20 {
        let mut s = connect(addr);
        send_get(&mut s, "/");
        let r = read_response(&mut BufReader::new(s)).expect("an answer");
        assert_eq!(r.status, 200);
        assert!(r.body.contains("generation 1"), "{}", r.body);
    }
}

/// A build that crashes a second after it is ready: the rollout is aborted, and afterwards the
/// replacements RequestCount asks for run the good program, losing no request.
#[test]
fn after_a_build_that_crashes_soon_after_ready_recycling_runs_the_good_program() {
    let deploy = Deploy::new("crashy", HELLO);
    let c = start_deployed(
        &deploy,
        "2",
        &[
            ("HELLO_MAX_REQUESTS", "300"),
            ("HELLO_MAX_REQUESTS_JITTER", "0"),
            // The default: the build crashes a second after it is ready, within it.
            ("REGIMENT_ROLLOUT_SETTLE", "5s"),
        ],
    );
    let addr = c.addr();
    deploy.install(HELLO_CRASHY);
    let n0 = c.events().len();
    c.signal(Signal::SIGHUP);
    let (i_abort, aborted) = c.wait_event("rollout 2 aborted", n0, |e| {
        is(e, "rollout-aborted") && e["generation"] == 2
    });
    assert!(
        aborted["why"]
            .as_str()
            .unwrap()
            .contains("crashed soon after they were ready"),
        "{aborted}"
    );
    // Every worker of the doomed build is gone, and both slots serve generation 1.
    for e in &c.events()[n0..] {
        if is(e, "spawned") && e["generation"] == 2 {
            wait_gone(pid_of(e), tests::cluster::CEILING);
        }
    }
    c.status_where("two generation-1 workers", |s| {
        s["workers"].as_array().is_some_and(|w| {
            w.len() == 2
                && w.iter()
                    .all(|w| w["generation"] == 1 && w["state"] == "ready")
        })
    });

    // Afterwards: load, and the replacements RequestCount asks for (every 300 requests).
    let n1 = c.events().len();
    let phase = Arc::new(AtomicU8::new(2));
    let stop = Arc::new(AtomicBool::new(false));
    let (clients, _) = load(addr, phase, stop.clone());
    c.wait_for(
        "4 replacements after the abort",
        tests::cluster::CEILING,
        |evs| {
            (evs[n1..]
                .iter()
                .filter(|e| is(e, "ready") && !e["slot"].is_null())
                .count()
                >= 4)
                .then_some(())
        },
    );
    stop.store(true, Ordering::Relaxed);
    let tally = join(clients)[2];
    eprintln!("answers after the abort [200, 500, other]: {tally:?}");
    assert!(tally[0] >= 600, "{tally:?}");
    assert_eq!(tally[1] + tally[2], 0, "no request failed: {tally:?}");
    let evs = c.events();
    let respawns: Vec<&Value> = evs[n1..].iter().filter(|e| is(e, "spawned")).collect();
    assert!(respawns.len() >= 4, "{respawns:?}");
    for e in &respawns {
        assert_eq!(e["generation"], 1, "the good program: {e}");
    }
    assert!(i_abort > n0);
}

/// A deploy of a binary that exits at once, then a crash of an old worker: the slot comes back
/// with the last good program, the cluster is back to its size, and the only requests lost are
/// those in flight on the killed worker (at most one per client).
#[test]
fn after_a_failed_deploy_a_crashed_worker_comes_back_with_the_good_program_under_load() {
    const EXITS_AT_ONCE: &str = env!("CARGO_BIN_EXE_fixture_exit_early");
    let deploy = Deploy::new("exits-at-once", HELLO);
    let c = start_deployed(&deploy, "2", &[("HELLO_MAX_REQUESTS", "100000000")]);
    let addr = c.addr();
    let phase = Arc::new(AtomicU8::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (clients, progress) = load(addr, phase.clone(), stop.clone());

    deploy.install(EXITS_AT_ONCE);
    let n0 = c.events().len();
    c.signal(Signal::SIGHUP);
    c.wait_event("rollout 2 aborted", n0, |e| {
        is(e, "rollout-aborted") && e["generation"] == 2
    });
    let status = c.status_where("two workers", |s| {
        s["workers"].as_array().is_some_and(|w| w.len() == 2)
    });
    let victim = status["workers"][1]["pid"].as_u64().unwrap() as u32;

    // The crash: requests in flight on it may fail (phase 1), none other.
    phase.store(1, Ordering::Relaxed);
    wait_in_flight_done(&progress);
    let n1 = c.events().len();
    signal_pid(victim, Signal::SIGKILL);
    let (_, back) = c.wait_event("the slot back", n1, |e| is(e, "ready"));
    assert_eq!(back["generation"], 1, "the good program: {back}");
    phase.store(2, Ordering::Relaxed);
    let status = c.status_where("two ready workers of generation 1", |s| {
        s["workers"].as_array().is_some_and(|w| {
            w.len() == 2
                && w.iter()
                    .all(|w| w["generation"] == 1 && w["state"] == "ready")
        })
    });
    assert_eq!(status["last_rollout"]["outcome"], "aborted", "{status}");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let tally = join(clients);
    eprintln!("answers by phase [200, 500, other]: {tally:?}");
    assert_eq!(
        tally[0][1] + tally[0][2],
        0,
        "the failed deploy lost nothing"
    );
    assert!(
        tally[1][2] <= 3,
        "only what was in flight on the killed worker"
    );
    assert_eq!(tally[1][1], 0);
    assert!(tally[2][0] > 0);
    assert_eq!(
        tally[2][1] + tally[2][2],
        0,
        "after its return: nothing lost"
    );
    let evs = c.events();
    assert_eq!(
        evs[n1..].iter().filter(|e| is(e, "start-failed")).count(),
        0,
        "no crash loop"
    );
}
