//! The `regiment` command against a running `hello` master, through its control socket: status
//! (table and JSON), `reload --wait` with its exit status for a good and for an aborted deploy,
//! `upgrade --wait` followed across the master's exec to its outcome (done, refused, rolled
//! back), scale, replace, metrics and stop; the errors an operator meets (no socket, a dead
//! master's file, another user, another protocol version); and a socket that survives garbage
//! and is never taken from a live master.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::cluster::{CEILING, Cluster};
use tests::deploy::Deploy;
use tests::scratch::ScratchDir;

const HELLO: &str = env!("CARGO_BIN_EXE_hello_under_test");
const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");
const REGIMENT: &str = env!("CARGO_BIN_EXE_regiment_under_test");

/// Runs `regiment --socket SOCKET ARGS...`, which must end within the ceiling (see
/// `tests::command`).
fn regiment(socket: &Path, args: &[&str]) -> Output {
    regiment_bounded(socket, args)
        .unwrap_or_else(|| panic!("regiment {args:?} still ran after {CEILING:?}"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn status_json(socket: &Path) -> Value {
    let out = regiment(socket, &["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

/// Asks `regiment status --json` until `pred` holds, within the ceiling.
fn wait_status(socket: &Path, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + CEILING;
    loop {
        let s = status_json(socket);
        if pred(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what} within {CEILING:?}: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ready_pids(s: &Value) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = s["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["state"] == "ready")
        .map(|w| (w["slot"].as_u64().unwrap(), w["pid"].as_u64().unwrap()))
        .collect();
    v.sort();
    v
}

fn start(program: &Path, socket: &Path, workers: &str) -> Cluster {
    let c = Cluster::start(
        program,
        &[
            ("HELLO_WORKERS", workers),
            ("HELLO_PRINT_EVENTS", "true"),
            ("RUST_LOG", "warn"),
            ("REGIMENT_CONTROL_SOCKET", socket.to_str().unwrap()),
        ],
    );
    let n: usize = workers.parse().unwrap();
    c.wait_for("the workers ready", CEILING, |evs| {
        (evs.iter().filter(|e| e["event"] == "ready").count() >= n).then_some(())
    });
    c
}

/// A program that fails at every start: a bad build.
fn bad_build(dir: &Path) -> PathBuf {
    let script = dir.join("bad-build");
    std::fs::write(&script, "#!/bin/sh\necho 'bad build' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn the_cli_shows_reloads_scales_replaces_measures_and_stops_a_running_hello() {
    let dir = ScratchDir::new("cli-lifecycle");
    let socket = dir.join("control.sock");
    let deploy = Deploy::new("cli-lifecycle", HELLO);
    let mut cluster = start(&deploy.app(), &socket, "2");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the control socket is private");

    // status: JSON for scripts, a table for people.
    let s = wait_status(&socket, "two ready workers", |s| ready_pids(s).len() == 2);
    assert_eq!(s["master_pid"], cluster.pid());
    assert_eq!(s["workers_wanted"], 2);
    let table = regiment(&socket, &["status"]);
    assert!(table.status.success());
    let text = stdout(&table);
    assert!(
        text.contains("2/2 workers ready") && text.contains("generation 1"),
        "{text}"
    );
    assert!(
        text.contains("SLOT") && text.contains("RSS") && text.contains("RESTARTS"),
        "{text}"
    );
    for (_, pid) in ready_pids(&s) {
        assert!(text.contains(&pid.to_string()), "{text}");
    }
    // The master's own program: the file it runs, for a person and (device, inode) for scripts.
    let app = deploy.app().canonicalize().unwrap();
    let master_line = format!("master program: {} (modified ", app.display());
    assert!(
        text.lines()
            .any(|l| l.starts_with(&master_line) && l.contains(" · started ")),
        "{text}"
    );
    let first_build = std::fs::metadata(&app).unwrap();
    assert_eq!(s["master_program"]["path"], app.display().to_string());
    assert_eq!(s["master_program"]["inode"], first_build.ino());
    assert_eq!(s["master_program"]["device"], first_build.dev());
    assert!(
        s["master_started_at_ms"].as_u64().is_some_and(|ms| ms > 0),
        "{s}"
    );

    // A good deploy: progress as workers are replaced, exit 0 once it completed.
    let out = regiment(&socket, &["reload", "--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("rolling restart to generation 2 started"),
        "{text}"
    );
    assert!(
        text.contains("ready") && text.contains("draining"),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.starts_with("generation 2 done: 2 workers replaced")),
        "{text}"
    );
    let s = status_json(&socket);
    assert_eq!(
        (s["generation"].as_u64(), s["good_generation"].as_u64()),
        (Some(2), Some(2))
    );

    // A bad deploy: exit 1 with the reason, and the good generation serves on.
    let good = ready_pids(&s);
    deploy.install(bad_build(dir.path()).to_str().unwrap());
    let out = regiment(&socket, &["reload", "--wait"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let why = stderr(&out);
    assert!(
        why.contains("generation 3 aborted") && why.contains("failed to start"),
        "{why}"
    );
    let s = status_json(&socket);
    assert_eq!(s["good_generation"], 2);
    assert_eq!(ready_pids(&s), good, "the workers that served still do");
    // The path holds another file now; the master still runs, and shows, the first.
    assert_ne!(std::fs::metadata(&app).unwrap().ino(), first_build.ino());
    assert_eq!(s["master_program"]["inode"], first_build.ino());

    // scale: to 3, refused at 0; replace: refused for a slot that does not exist.
    let out = regiment(&socket, &["scale", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "scaling from 2 to 3 workers");
    let s = wait_status(&socket, "three ready workers", |s| {
        ready_pids(s).len() == 3 && s["workers_wanted"] == 3
    });
    let out = regiment(&socket, &["scale", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("from 1 to 1024"), "{}", stderr(&out));
    let out = regiment(&socket, &["replace", "7"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no slot 7: the slots are 0 to 2"),
        "{}",
        stderr(&out)
    );
    let before = ready_pids(&s);
    let old = before.iter().find(|(slot, _)| *slot == 1).unwrap().1;
    let out = regiment(&socket, &["replace", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_status(&socket, "slot 1 replaced", |s| {
        let now = ready_pids(s);
        now.len() == 3 && now.iter().any(|(slot, pid)| *slot == 1 && *pid != old)
    });

    // metrics: the Prometheus exposition.
    let out = regiment(&socket, &["metrics"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines().any(|l| l == "regiment_workers_wanted 3")
            && text.lines().any(|l| l == "regiment_good_generation 2")
            && text.contains("regiment_rollouts_total{outcome=\"aborted\"} 1"),
        "{text}"
    );

    // stop --wait returns once the master has exited; its socket file is gone with it.
    let out = regiment(&socket, &["stop", "--wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "stopping\nstopped\n");
    assert!(cluster.wait_exit(CEILING).success());
    assert!(!socket.exists(), "the master removed its socket file");
    let out = regiment(&socket, &["status"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("no control socket at"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_cli_says_what_is_wrong_when_it_cannot_ask() {
    let dir = ScratchDir::new("cli-errors");
    // No socket given at all: a usage error naming both ways to give one.
    let out = Command::new(REGIMENT)
        .arg("status")
        .env_remove("REGIMENT_CONTROL_SOCKET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--socket PATH or set REGIMENT_CONTROL_SOCKET"),
        "{}",
        stderr(&out)
    );
    // The variable is read when the option is absent.
    let absent = dir.join("absent.sock");
    let out = Command::new(REGIMENT)
        .arg("status")
        .env("REGIMENT_CONTROL_SOCKET", &absent)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains(&format!("no control socket at {}", absent.display())),
        "{}",
        stderr(&out)
    );

    // The file of a master that died: nothing listens.
    let stale = dir.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let out = regiment(&stale, &["status"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("the master is gone"),
        "{}",
        stderr(&out)
    );

    // A master of another release.
    let other = dir.join("other.sock");
    let listener = UnixListener::bind(&other).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let answer = br#"{"version":99,"answer":{"kind":"something-new"}}"#;
        s.write_all(&(answer.len() as u32).to_be_bytes()).unwrap();
        s.write_all(answer).unwrap();
    });
    let out = regiment(&other, &["status"]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("protocol version mismatch")
            && stderr(&out).contains("the master speaks version 99, this command 1"),
        "{}",
        stderr(&out)
    );
}

/// Sends raw bytes to the control socket and reads the answer frame, if any.
fn exchange(socket: &Path, bytes: &[u8]) -> Option<Value> {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(CEILING)).unwrap();
    let _ = s.write_all(bytes);
    let mut len = [0; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(serde_json::from_slice(&body).unwrap())
}

fn frame(json: &str) -> Vec<u8> {
    let mut v = (json.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(json.as_bytes());
    v
}

#[test]
fn the_socket_answers_garbage_with_errors_and_a_live_one_is_never_taken() {
    let dir = ScratchDir::new("cli-garbage");
    let socket = dir.join("control.sock");
    let cluster = start(Path::new(HELLO), &socket, "1");

    let refused = |answer: Option<Value>, kind: &str, text: &str| {
        let a = answer.expect("an answer");
        assert_eq!(a["answer"]["kind"], "error", "{a}");
        assert_eq!(a["answer"]["error"], kind, "{a}");
        assert!(
            a["answer"]["message"].as_str().unwrap().contains(text),
            "{a}"
        );
    };
    refused(
        exchange(&socket, &frame("not json")),
        "bad-request",
        "not JSON",
    );
    refused(
        exchange(
            &socket,
            &frame(r#"{"version":1,"command":{"name":"format-disk"}}"#),
        ),
        "bad-request",
        "unknown command",
    );
    refused(
        exchange(
            &socket,
            &frame(r#"{"version":2,"command":{"name":"status"}}"#),
        ),
        "version",
        "version 2",
    );
    refused(
        exchange(&socket, &u32::MAX.to_be_bytes()),
        "bad-request",
        "exceeds the limit",
    );
    // A peer that connects and says nothing, or half a frame, is not waited for forever; a
    // peer that closes at once costs nothing.
    refused(exchange(&socket, &[0, 0]), "bad-request", "no request");
    drop(UnixStream::connect(&socket).unwrap());
    // After all that, the master answers as ever.
    let s = status_json(&socket);
    assert_eq!(s["master_pid"], cluster.pid());

    // A second master given the same socket refuses to start, naming the option and the path.
    let second = Command::new(HELLO)
        .env("REGIMENT_BIND", "127.0.0.1:0")
        .env("REGIMENT_CONTROL_SOCKET", &socket)
        .env("HELLO_WORKERS", "1")
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = stderr(&second);
    assert!(
        err.contains("REGIMENT_CONTROL_SOCKET") && err.contains(socket.to_str().unwrap()),
        "{err}"
    );
    assert_eq!(status_json(&socket)["master_pid"], cluster.pid());
}

/// A slot whose worker crashed has no worker until its backoff has passed: `regiment replace`
/// of it is refused (exit 1, and why), not answered OK while the master does nothing.
#[test]
fn replace_is_refused_for_a_slot_whose_worker_is_gone() {
    let dir = ScratchDir::new("cli-replace-gone");
    let socket = dir.join("hello.sock");
    let cluster = Cluster::start(
        Path::new(HELLO),
        &[
            ("HELLO_WORKERS", "2"),
            ("HELLO_PRINT_EVENTS", "true"),
            ("RUST_LOG", "warn"),
            ("REGIMENT_CONTROL_SOCKET", socket.to_str().unwrap()),
            // A crashed worker's slot stays empty for ten minutes: longer than this test.
            ("REGIMENT_BACKOFF_INITIAL", "10m"),
            ("REGIMENT_BACKOFF_MAX", "10m"),
        ],
    );
    let serving = cluster.wait_serving(2);
    let crashed = serving[&0];
    tests::cluster::signal_pid(crashed, nix::sys::signal::Signal::SIGKILL);
    cluster.wait_event("the crash", 0, |e| {
        e["event"] == "crashed" && tests::cluster::pid_of(e) == crashed
    });

    let out = regiment(&socket, &["replace", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("slot 0 has no worker to replace"),
        "{}",
        stderr(&out)
    );
    // The other slot's worker is replaced as asked.
    let out = regiment(&socket, &["replace", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "replacing the worker of slot 1");
    let old = serving[&1];
    wait_status(&socket, "slot 1 replaced", |s| {
        ready_pids(s)
            .iter()
            .any(|(slot, pid)| *slot == 1 && *pid != u64::from(old))
    });
}

#[test]
fn a_dead_masters_socket_file_is_replaced_by_the_next_master() {
    let dir = ScratchDir::new("cli-stale");
    let socket = dir.join("control.sock");
    let mut first = start(Path::new(HELLO), &socket, "1");
    first.signal(nix::sys::signal::Signal::SIGKILL);
    first.wait_exit(CEILING);
    assert!(socket.exists(), "a killed master leaves its file");
    let second = start(Path::new(HELLO), &socket, "1");
    assert_eq!(status_json(&socket)["master_pid"], second.pid());
}

#[test]
fn a_peer_of_another_user_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root, to run the client as another user");
        return;
    }
    let dir = ScratchDir::new("cli-peer");
    // `nobody` must reach the socket's directory to be refused by the socket itself.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.join("control.sock");
    let _cluster = start(Path::new(HELLO), &socket, "1");
    let as_nobody = |args: &[&str]| {
        use std::os::unix::process::CommandExt;
        Command::new(REGIMENT)
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap()
    };
    // The file's mode keeps others out.
    let out = as_nobody(&["status"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("permission denied on"),
        "{}",
        stderr(&out)
    );
    // Widened by hand, the master still refuses them by their credentials.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(&["stop"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("permission denied by the master")
            && stderr(&out).contains("uid 65534 is neither the master's user (uid 0) nor root"),
        "{}",
        stderr(&out)
    );
    assert_eq!(status_json(&socket)["stopping"], false, "nothing was done");
}

/// `regiment --socket SOCKET ARGS...`, bounded by the ceiling (see `tests::command`).
fn regiment_bounded(socket: &Path, args: &[&str]) -> Option<Output> {
    tests::command::regiment_bounded(REGIMENT, socket, args)
}

/// A master that is stopped, wedged or never answers does not hang the command: it waits
/// `--timeout`, says so and exits 5. A rollout or a stop that takes longer than `--timeout`
/// is waited for as long as the master says it may take.
#[test]
fn every_command_has_a_deadline_that_a_rollout_or_a_stop_extends() {
    let dir = ScratchDir::new("cli-deadline");
    // Something listens, and never accepts, let alone answers.
    let silent = dir.join("silent.sock");
    let _listener = UnixListener::bind(&silent).unwrap();
    let out = regiment_bounded(&silent, &["--timeout", "1s", "status"]).expect("ends");
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "no answer from the master at {} within 1s (--timeout)",
            silent.display()
        )),
        "{}",
        stderr(&out)
    );
    let out = regiment_bounded(&silent, &["status", "--timeout", "0s"]).expect("ends");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--timeout"), "{}", stderr(&out));

    // A rollout that settles for 8 s outlasts a timeout of 3 s (long enough for the master's
    // first answer on a loaded machine): the master said it may take its rollout_timeout, so
    // the command waits for it.
    let socket = dir.join("control.sock");
    let cluster = Cluster::start(
        Path::new(HELLO),
        &[
            ("HELLO_WORKERS", "2"),
            ("HELLO_PRINT_EVENTS", "true"),
            ("RUST_LOG", "warn"),
            ("REGIMENT_CONTROL_SOCKET", socket.to_str().unwrap()),
            ("REGIMENT_ROLLOUT_SETTLE", "8s"),
            ("REGIMENT_HEARTBEAT_INTERVAL", "100ms"),
        ],
    );
    cluster.wait_serving(2);
    let out = regiment_bounded(&socket, &["--timeout", "3s", "reload", "--wait"]).expect("ends");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("generation 2 done"),
        "{}",
        stdout(&out)
    );

    // A stop waits for a request in flight for 8 s: so does `stop --wait`, whatever --timeout.
    let app = cluster.addr();
    let slow = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(app)?;
        s.set_read_timeout(Some(CEILING))?;
        s.write_all(b"GET /slow?ms=8000 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).map(|_| answer)
    });
    wait_status(&socket, "a request in flight", |s| {
        s["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["in_flight"].as_u64() >= Some(1))
    });
    let out = regiment_bounded(&socket, &["--timeout", "3s", "stop", "--wait"]).expect("ends");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "stopping\nstopped\n");
    let answer = slow.join().unwrap().expect("the slow request answered");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A path that is no socket is told as such, not as a dead master's file; what a master
/// answers is printed with its control characters escaped.
#[test]
fn a_path_that_is_no_socket_is_named_so_and_a_masters_text_is_printed_escaped() {
    let dir = ScratchDir::new("cli-not-socket");
    let file = dir.join("notes.txt");
    std::fs::write(&file, "not a socket").unwrap();
    for (path, kind) in [
        (file.as_path(), "a regular file"),
        (dir.path(), "a directory"),
    ] {
        let out = regiment(path, &["status"]);
        assert_eq!(out.status.code(), Some(3));
        assert!(
            stderr(&out).contains(&format!("{} is not a socket but {kind}", path.display()))
                && !stderr(&out).contains("master is gone"),
            "{}",
            stderr(&out)
        );
    }

    // A master (here a fake one) whose refusal carries escape sequences, a bell and a forged
    // line.
    let socket = dir.join("fake.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut len = [0; 4];
        s.read_exact(&mut len).unwrap();
        let mut request = vec![0; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut request).unwrap();
        let answer = frame(
            r#"{"version":1,"answer":{"kind":"error","error":"refused","message":"no\u001b[2J\u0007 such slot\r\nregiment: forged"}}"#,
        );
        s.write_all(&answer).unwrap();
    });
    let out = regiment(&socket, &["replace", "0"]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        !err.chars().any(|c| c.is_control() && c != '\n') && err.lines().count() == 1,
        "{err:?}"
    );
    assert!(
        err.contains(r"no\u{1b}[2J\u{7} such slot\r\nregiment: forged"),
        "{err}"
    );
}

/// Past the 64 connections it serves at once, the master answers "busy", and the command
/// says so with its own exit status: a deploy script does not take a busy master for a dead
/// one.
#[test]
fn a_busy_master_is_told_from_a_dead_one() {
    let dir = ScratchDir::new("cli-busy");
    let socket = dir.join("control.sock");
    let _cluster = start(Path::new(HELLO), &socket, "1");
    // Each connection announces a request and never sends it: the master waits for it (5 s).
    // Retried, a bounded number of times, in case a loaded machine let those 5 s pass before
    // the command connected.
    let mut busy = None;
    for _ in 0..5 {
        let held: Vec<UnixStream> = (0..64)
            .map(|_| {
                let mut s = UnixStream::connect(&socket).unwrap();
                s.write_all(&100u32.to_be_bytes()).unwrap();
                s
            })
            .collect();
        let out = regiment(&socket, &["status"]);
        drop(held);
        if out.status.code() != Some(0) {
            busy = Some(out);
            break;
        }
    }
    let out = busy.expect("the master was busy once");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the master is busy")
            && stderr(&out).contains("nothing was done, try again"),
        "{}",
        stderr(&out)
    );
    // Once those connections are gone, it answers as ever: as soon as it has seen them close,
    // which on a loaded machine may take a moment (busy until then, never anything else).
    let deadline = Instant::now() + CEILING;
    let out = loop {
        let out = regiment(&socket, &["status", "--json"]);
        if out.status.code() != Some(4) || Instant::now() >= deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(out.status.success(), "{}", stderr(&out));
    let s: Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(s["workers_wanted"], 1);
}

/// Thousands of connections that close unanswered log a handful of warnings: the first ten,
/// then one in a thousand, with their number.
#[test]
fn refused_connections_are_logged_thinned() {
    let dir = ScratchDir::new("cli-thinned");
    let socket = dir.join("control.sock");
    let cluster = start(Path::new(HELLO), &socket, "1");
    for _ in 0..2100 {
        drop(UnixStream::connect(&socket).unwrap());
    }
    let warnings = |log: &str| {
        log.lines()
            .filter(|l| l.contains("WARN") && l.contains("control socket"))
            .count()
    };
    let deadline = Instant::now() + CEILING;
    loop {
        let log = cluster.stderr();
        assert!(warnings(&log) <= 12, "{log}");
        if log.contains("(#2000)") {
            assert_eq!(warnings(&log), 12, "{log}");
            assert!(log.contains("(#1000)") && log.contains("(#10)"), "{log}");
            break;
        }
        assert!(Instant::now() < deadline, "no 2000th refusal logged: {log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A master refused at start (its control socket is a live master's) removes the socket files
/// it had already bound: its listener's and its admin listener's.
#[test]
fn a_master_refused_at_start_leaves_no_socket_file() {
    let dir = ScratchDir::new("cli-refused-start");
    let socket = dir.join("control.sock");
    let _first = start(Path::new(HELLO), &socket, "1");
    let (app, admin) = (dir.join("app.sock"), dir.join("admin.sock"));
    let second = Command::new(HELLO)
        .env("REGIMENT_BIND", format!("unix:{}", app.display()))
        .env("REGIMENT_ADMIN_BIND", format!("unix:{}", admin.display()))
        .env("REGIMENT_CONTROL_SOCKET", &socket)
        .env("HELLO_WORKERS", "1")
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        stderr(&second).contains("REGIMENT_CONTROL_SOCKET"),
        "{}",
        stderr(&second)
    );
    assert!(!app.exists(), "the listener's socket file is left");
    assert!(!admin.exists(), "the admin listener's socket file is left");
    assert!(socket.exists(), "the live master's socket stays");
}

/// A new build for an upgrade, a script: its preflight waits until the file `go` exists (or its
/// master is gone), then is `hello`'s; executed by the master, it runs `then`. A test holds the
/// upgrade before the exec this way until the command under test waits on its connection.
fn gated_build(dir: &Path, name: &str, go: &Path, then: &str) -> PathBuf {
    let script = dir.join(name);
    let text = format!(
        "#!/bin/bash\n\
         if [ -n \"$REGIMENT_PREFLIGHT\" ]; then\n\
         \x20 for _ in $(seq 1200); do\n\
         \x20   [ -e '{go}' ] && break\n\
         \x20   kill -0 \"$PPID\" 2>/dev/null || exit 1\n\
         \x20   sleep 0.1\n\
         \x20 done\n\
         \x20 exec -a \"$0\" '{HELLO}' \"$@\"\n\
         fi\n\
         {then}\n",
        go = go.display()
    );
    std::fs::write(&script, text).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// `hello` behind [`gated_build`]'s gate.
fn gated_hello(dir: &Path, go: &Path) -> PathBuf {
    gated_build(
        dir,
        "gated-hello",
        go,
        &format!("exec -a \"$0\" '{HELLO}' \"$@\""),
    )
}

/// A master for the upgrade tests: `hello` at `program`, two workers, its log at info (the
/// tests wait for its control socket's requests there).
fn start_for_upgrade(program: &Path, socket: &Path) -> Cluster {
    let c = Cluster::start(
        program,
        &[
            ("HELLO_WORKERS", "2"),
            ("HELLO_PRINT_EVENTS", "true"),
            ("REGIMENT_CONTROL_SOCKET", socket.to_str().unwrap()),
        ],
    );
    c.wait_serving(2);
    c
}

/// Runs `regiment ARGS` (an `upgrade --wait`) on a thread of its own, and returns its output once
/// the master was asked for the outcome, `hold` passed, and `go` was created: the command waits
/// on a connection that the master's exec closes, and must ask the master that runs after it.
fn upgrade_wait_across_the_exec(
    cluster: &Cluster,
    socket: &Path,
    go: &Path,
    args: &'static [&'static str],
    hold: Duration,
) -> Output {
    let socket_path = socket.to_path_buf();
    let command = std::thread::spawn(move || regiment_bounded(&socket_path, args));
    cluster.wait_log("command=UpgradeOutcome");
    std::thread::sleep(hold);
    std::fs::write(go, "").unwrap();
    command
        .join()
        .unwrap()
        .unwrap_or_else(|| panic!("regiment {args:?} still ran after {CEILING:?}"))
}

/// `regiment upgrade --wait` follows the upgrade across the exec (the connection the master
/// closes, the same socket served by the new master) to its outcome: exit 0 when done, 1 with
/// the reason when the new program fails its preflight. `regiment upgrade` returns once it
/// began, and is refused while one is under way.
#[test]
fn upgrade_wait_follows_the_master_across_its_exec_to_the_outcome() {
    let dir = ScratchDir::new("cli-upgrade");
    let socket = dir.join("control.sock");
    let go = dir.join("go");
    let deploy = Deploy::new("cli-upgrade", HELLO);
    let cluster = start_for_upgrade(&deploy.app(), &socket);
    let before = ready_pids(&wait_status(&socket, "two ready workers", |s| {
        ready_pids(s).len() == 2
    }));

    // Done: asked again after the exec, answered by the new master. The preflight is held
    // past --timeout: the master said how long the upgrade may take, so the command waits.
    deploy.install(gated_hello(dir.path(), &go).to_str().unwrap());
    let args = &["--timeout", "3s", "upgrade", "--wait"];
    let out = upgrade_wait_across_the_exec(&cluster, &socket, &go, args, Duration::from_secs(4));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("upgrade 1 begun\n"), "{text}");
    assert!(
        text.contains(
            "the master closed the connection (it executes a new program, same pid): asking again"
        ),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.starts_with("upgrade 1 done in ")
                && l.ends_with(": the new master runs, and its workers run generation 2")),
        "{text}"
    );
    let s = status_json(&socket);
    assert_eq!(s["master_pid"], cluster.pid(), "the same pid");
    assert_eq!(
        (&s["last_upgrade"]["number"], &s["last_upgrade"]["outcome"]),
        (&Value::from(1), &Value::from("done"))
    );
    assert_eq!(s["good_generation"], 2);
    let after = ready_pids(&s);
    assert_eq!(after.len(), 2, "{s}");
    assert!(
        after.iter().all(|w| !before.contains(w)),
        "every worker runs the new build: {before:?} then {after:?}"
    );
    let table = stdout(&regiment(&socket, &["status"]));
    assert!(table.contains("\nlast upgrade 1 done in "), "{table}");

    // Refused: a new program that fails its preflight changes nothing.
    deploy.install(bad_build(dir.path()).to_str().unwrap());
    let out = regiment(&socket, &["upgrade", "--wait"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(stdout(&out), "upgrade 2 begun\n");
    let why = stderr(&out);
    assert!(
        why.starts_with("regiment: upgrade 2 refused in ")
            && why.contains("bad build")
            && why.trim_end().ends_with("; the master goes on as before"),
        "{why}"
    );
    let s = status_json(&socket);
    assert_eq!(ready_pids(&s), after, "the workers that served still do");
    assert_eq!(s["last_upgrade"]["outcome"], "refused");

    // Without --wait: begun, and a second one is refused while it is under way (held at its
    // preflight here).
    std::fs::remove_file(&go).unwrap();
    deploy.install(gated_hello(dir.path(), &go).to_str().unwrap());
    let out = regiment(&socket, &["upgrade"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "upgrade 3 begun\n");
    let out = regiment(&socket, &["upgrade"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("upgrade 3 is under way"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&go, "").unwrap();
    let s = wait_status(&socket, "upgrade 3 done", |s| {
        s["last_upgrade"]["number"] == 3 && s["last_upgrade"]["outcome"] == "done"
    });
    assert_eq!(s["master_pid"], cluster.pid());
}

/// A new program that passes its preflight but cannot take over after the exec (its options are
/// refused) goes back to the previous program: two execs, and `upgrade --wait` asks the master
/// that runs after them, exits 1 and says why; the workers were kept throughout.
#[test]
fn upgrade_wait_reports_an_upgrade_rolled_back_after_the_exec() {
    let dir = ScratchDir::new("cli-upgrade-rolled-back");
    let socket = dir.join("control.sock");
    let go = dir.join("go");
    let deploy = Deploy::new("cli-upgrade-rolled-back", HELLO);
    let cluster = start_for_upgrade(&deploy.app(), &socket);
    let before = ready_pids(&wait_status(&socket, "two ready workers", |s| {
        ready_pids(s).len() == 2
    }));

    // Executed, it is the fixture given a failure limit of 0, which it refuses; hello, the
    // previous program, reads no such variable.
    let refused = format!("FIXTURE_ROLLOUT_FAILURES=0 exec -a \"$0\" '{FIXTURE}' \"$@\"");
    deploy.install(
        gated_build(dir.path(), "refused-after-exec", &go, &refused)
            .to_str()
            .unwrap(),
    );
    let args = &["upgrade", "--wait"];
    let out = upgrade_wait_across_the_exec(&cluster, &socket, &go, args, Duration::ZERO);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("asking again"), "{}", stdout(&out));
    let why = stderr(&out);
    assert!(
        why.starts_with("regiment: upgrade 1 rolled back in ")
            && why.contains("rollout_failure_limit")
            && why
                .trim_end()
                .ends_with("; the master runs its previous program again, as before"),
        "{why}"
    );
    let s = status_json(&socket);
    assert_eq!(s["master_pid"], cluster.pid());
    assert_eq!(s["last_upgrade"]["outcome"], "rolled-back");
    assert_eq!(ready_pids(&s), before, "the workers were kept");
}

/// Reads one request frame from a client, as a master does.
fn read_request(s: &mut UnixStream) -> Value {
    let mut len = [0; 4];
    s.read_exact(&mut len).unwrap();
    let mut request = vec![0; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut request).unwrap();
    serde_json::from_slice(&request).unwrap()
}

/// A fake master that begins upgrade 1, then closes the connection that asks for its outcome,
/// as the exec does. What it does next is `after_exec`'s, given the listener (dropping it is
/// dying: the socket's file stays, and nothing listens).
fn master_that_execs(socket: &Path, after_exec: fn(UnixListener)) -> std::thread::JoinHandle<()> {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        assert_eq!(read_request(&mut s)["command"]["name"], "upgrade");
        s.write_all(&frame(
            r#"{"version":1,"answer":{"kind":"upgrade-begun","number":1},"ends_within_ms":1000}"#,
        ))
        .unwrap();
        let (mut s, _) = listener.accept().unwrap();
        let asked = read_request(&mut s);
        assert_eq!(asked["command"]["name"], "upgrade-outcome");
        assert_eq!(asked["command"]["number"], 1);
        drop(s);
        after_exec(listener);
    })
}

/// After the exec, a master that knows no such upgrade is an outcome unknown (exit 1), and a
/// master gone is one that cannot be reached (exit 3), each said so.
#[test]
fn upgrade_wait_says_when_the_master_after_the_exec_cannot_tell_the_outcome() {
    let dir = ScratchDir::new("cli-upgrade-unknown");
    // The master that runs after the exec was started afresh: it knows no upgrade 1.
    let socket = dir.join("afresh.sock");
    let master = master_that_execs(&socket, |listener| {
        let (mut s, _) = listener.accept().unwrap();
        assert_eq!(read_request(&mut s)["command"]["number"], 1);
        s.write_all(&frame(
            r#"{"version":1,"answer":{"kind":"upgrade","record":null}}"#,
        ))
        .unwrap();
    });
    let out = regiment(&socket, &["upgrade", "--wait"]);
    master.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("asking again"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(
            "upgrade 1: the master that answers now knows no such upgrade (it was started \
             afresh, or a later upgrade began): its outcome is unknown"
        ),
        "{}",
        stderr(&out)
    );

    // The master died at the exec: its socket's file is left, and nothing listens.
    let socket = dir.join("gone.sock");
    let master = master_that_execs(&socket, drop);
    let out = regiment(&socket, &["upgrade", "--wait"]);
    master.join().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "upgrade 1: the master closed the connection (as it does when it executes its new \
             program) and could not be asked again for the outcome: the master is gone"
        ),
        "{}",
        stderr(&out)
    );
}
