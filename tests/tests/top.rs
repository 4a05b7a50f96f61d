//! `regiment top` against a running `hello` master: `--once` prints a frame (the header, a row
//! per worker, the events) for scripts; run in a real pseudo-terminal, the live view shows a row
//! per worker with its pid, follows a rolling restart as it happens (the new pids replace the
//! old), scales on `+` once confirmed, says so when the master goes away, and quits on `q`; a
//! terminal too small, or none, gets a clear message and exit 2. Each row shows the worker's
//! p50 and p99 latency once it serves requests, and a kill report the master took shows in the
//! pane (the `fixture`, which ignores its drain, is killed at its deadline).

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use serde_json::Value;
use tests::cluster::{CEILING, Cluster, pid_of, signal_pid};
use tests::command::regiment_bounded;
use tests::load::{ClientSpec, LoadConfig, Mode};
use tests::scratch::ScratchDir;

const HELLO: &str = env!("CARGO_BIN_EXE_hello_under_test");
const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");
const REGIMENT: &str = env!("CARGO_BIN_EXE_regiment_under_test");

fn start(socket: &Path, workers: usize) -> Cluster {
    let c = Cluster::start(
        Path::new(HELLO),
        &[
            ("HELLO_WORKERS", &workers.to_string()),
            ("HELLO_PRINT_EVENTS", "true"),
            ("RUST_LOG", "warn"),
            ("REGIMENT_CONTROL_SOCKET", socket.to_str().unwrap()),
        ],
    );
    c.wait_for("the workers ready", CEILING, |evs| {
        (evs.iter().filter(|e| e["event"] == "ready").count() >= workers).then_some(())
    });
    c
}

fn regiment(socket: &Path, args: &[&str]) -> std::process::Output {
    regiment_bounded(REGIMENT, socket, args)
        .unwrap_or_else(|| panic!("regiment {args:?} still ran after {CEILING:?}"))
}

/// The pids of the ready workers, by slot, once `want` of them are ready and none other runs.
fn settled_pids(socket: &Path, want: usize) -> Vec<u32> {
    let deadline = Instant::now() + CEILING;
    loop {
        let out = regiment(socket, &["status", "--json"]);
        let s: Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
        let workers = s["workers"].as_array().unwrap();
        if workers.len() == want && workers.iter().all(|w| w["state"] == "ready") {
            let mut by_slot: Vec<(u64, u32)> = workers
                .iter()
                .map(|w| {
                    (
                        w["slot"].as_u64().unwrap(),
                        w["pid"].as_u64().unwrap() as u32,
                    )
                })
                .collect();
            by_slot.sort();
            return by_slot.into_iter().map(|(_, pid)| pid).collect();
        }
        assert!(Instant::now() < deadline, "{want} settled workers: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The settled pids by slot, once `pred` holds of them, within the ceiling.
fn wait_pids(socket: &Path, want: usize, pred: impl Fn(&[u32]) -> bool) -> Vec<u32> {
    let deadline = Instant::now() + CEILING;
    loop {
        let pids = settled_pids(socket, want);
        if pred(&pids) {
            return pids;
        }
        assert!(Instant::now() < deadline, "pids {pids:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `regiment top` in a pseudo-terminal of its own, its screen kept as a terminal draws it.
/// Dropped while it runs, it is killed by pid.
struct Top {
    child: Box<dyn Child + Send + Sync>,
    pid: u32,
    writer: Box<dyn Write + Send>,
    screen: Arc<(Mutex<vt100::Parser>, Condvar)>,
    _master: Box<dyn MasterPty + Send>,
}

impl Top {
    fn spawn(socket: &Path, args: &[&str], rows: u16, cols: u16) -> Top {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let mut cmd = CommandBuilder::new(REGIMENT);
        cmd.arg("--socket");
        cmd.arg(socket);
        cmd.arg("top");
        cmd.args(args);
        cmd.env_remove("REGIMENT_CONTROL_SOCKET");
        cmd.env("TERM", "xterm-256color");
        let child = pair.slave.spawn_command(cmd).expect("regiment top runs");
        let pid = child.process_id().expect("its pid");
        drop(pair.slave);
        let screen = Arc::new((
            Mutex::new(vt100::Parser::new(rows, cols, 0)),
            Condvar::new(),
        ));
        let mut reader = pair
            .master
            .try_clone_reader()
            .expect("the terminal's output");
        let drawn = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0; 8192];
            // Until the program is gone: EOF, or EIO once no process holds the terminal.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                let (parser, changed) = &*drawn;
                parser
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .process(&buf[..n]);
                changed.notify_all();
            }
        });
        let writer = pair.master.take_writer().expect("the terminal's input");
        Top {
            child,
            pid,
            writer,
            screen,
            _master: pair.master,
        }
    }

    /// The screen once `pred` holds of its text, within the ceiling.
    fn wait_screen(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + CEILING;
        let (parser, changed) = &*self.screen;
        let mut parser = parser.lock().unwrap();
        loop {
            let text = parser.screen().contents();
            if pred(&text) {
                return text;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the screen never showed {what}:\n{text}");
            parser = changed.wait_timeout(parser, left).unwrap().0;
        }
    }

    fn press(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// Its exit code, once it exited, within the ceiling.
    fn wait_exit(&mut self) -> u32 {
        let deadline = Instant::now() + CEILING;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.exit_code();
            }
            assert!(Instant::now() < deadline, "regiment top still runs");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Top {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            signal_pid(self.pid, Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// A worker's row: its slot, then its pid, at the start of a line.
fn row(slot: usize, pid: u32) -> String {
    format!("{slot:<4}  {pid} ")
}

fn has_row(screen: &str, slot: usize, pid: u32) -> bool {
    screen.lines().any(|l| l.starts_with(&row(slot, pid)))
}

/// The cell under the header `column` in the row of `slot` and `pid` on `screen` (a table's
/// columns are aligned, left to right, as `--once` prints them and the live view draws them).
fn cell(screen: &str, column: &str, slot: usize, pid: u32) -> Option<String> {
    let header = screen.lines().find(|l| l.starts_with("SLOT  PID"))?;
    let at = header.find(&format!("  {column}  "))? + 2;
    let row = screen.lines().find(|l| l.starts_with(&row(slot, pid)))?;
    Some(row.chars().skip(at).take_while(|c| *c != ' ').collect())
}

/// A latency as top shows it (`850µs`, `2.4ms`, `12ms`, `1.3s`), in microseconds.
fn latency_us(cell: &str) -> Option<f64> {
    if let Some(us) = cell.strip_suffix("µs") {
        return us.parse().ok();
    }
    if let Some(ms) = cell.strip_suffix("ms") {
        return ms.parse::<f64>().ok().map(|ms| ms * 1e3);
    }
    cell.strip_suffix('s')?.parse::<f64>().ok().map(|s| s * 1e6)
}

/// The p50 and p99 of the worker `pid` of slot 0 on `screen`, once both read as latencies.
fn latencies(screen: &str, pid: u32) -> Option<(f64, f64)> {
    let p50 = latency_us(&cell(screen, "P50", 0, pid)?)?;
    let p99 = latency_us(&cell(screen, "P99", 0, pid)?)?;
    Some((p50, p99))
}

#[test]
fn top_once_prints_a_frame_and_top_without_a_terminal_says_so() {
    let dir = ScratchDir::new("top-once");
    let socket = dir.join("control.sock");
    let cluster = start(&socket, 2);
    let pids = settled_pids(&socket, 2);

    let out = regiment(&socket, &["top", "--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "master {} · generation 1 · 2/2 workers ready · up ",
            cluster.pid()
        )),
        "{text}"
    );
    assert_eq!(lines[1], "rollout: none yet", "{text}");
    assert_eq!(lines[2], format!("listeners: {}", cluster.addr()), "{text}");
    let table = lines
        .iter()
        .position(|l| l.starts_with("SLOT"))
        .expect(&text);
    assert!(
        lines[table].starts_with("SLOT  PID") && lines[table].contains("REQ/S"),
        "{text}"
    );
    for (slot, pid) in pids.iter().enumerate() {
        let cells: Vec<&str> = lines[table + 1 + slot].split_whitespace().collect();
        assert_eq!(
            (cells[0], cells[1], cells[2], cells[3]),
            (&*slot.to_string(), &*pid.to_string(), "1", "ready"),
            "{text}"
        );
        // Two statuses a second apart: the rate of a worker both knew.
        assert!(
            cells[5].parse::<f64>().is_ok(),
            "REQ/S {}: {text}",
            cells[5]
        );
    }
    assert_eq!(lines[table + 3..table + 5], ["", "EVENTS (UTC)"], "{text}");

    // A master that does not answer (something listens, and never accepts): said so within
    // --timeout, exit 5, as every command.
    let silent = dir.join("silent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&silent).unwrap();
    let out = regiment(&silent, &["--timeout", "1s", "top", "--once"]);
    assert_eq!(out.status.code(), Some(5));
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(
        why.contains(&format!(
            "no answer from the master at {} within 1s (--timeout)",
            silent.display()
        )),
        "{why}"
    );

    // Not a terminal (stdout is a pipe here): it says what to use instead, exit 2.
    let out = regiment(&socket, &["top"]);
    assert_eq!(out.status.code(), Some(2));
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(
        why.contains("standard output is not one") && why.contains("regiment top --once"),
        "{why}"
    );
}

#[test]
fn top_in_a_terminal_follows_a_rolling_restart_scales_and_quits_on_q() {
    let dir = ScratchDir::new("top-live");
    let socket = dir.join("control.sock");
    let _cluster = start(&socket, 2);
    let old = settled_pids(&socket, 2);

    // Too small a terminal: said so, exit 2, before anything is drawn.
    let mut small = Top::spawn(&socket, &[], 10, 60);
    assert_eq!(small.wait_exit(), 2);
    small.wait_screen("why it cannot draw", |s| {
        s.contains("the terminal is 60x10; top needs at least 80x16")
    });

    let mut top = Top::spawn(&socket, &[], 40, 160);
    top.wait_screen("a row per worker with its pid", |s| {
        has_row(s, 0, old[0]) && has_row(s, 1, old[1]) && s.contains("2/2 workers ready")
    });

    // A rolling restart from another terminal: followed live, the new pids in place of the old.
    let out = regiment(&socket, &["reload", "--wait"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = settled_pids(&socket, 2);
    assert!(new.iter().all(|pid| !old.contains(pid)), "{old:?} {new:?}");
    let screen = top.wait_screen("the new pids only, generation 2", |s| {
        has_row(s, 0, new[0])
            && has_row(s, 1, new[1])
            && !old
                .iter()
                .any(|pid| s.contains(&row(0, *pid)) || s.contains(&row(1, *pid)))
            && s.contains("generation 2 · 2/2 workers ready")
    });
    assert!(
        screen.contains("rollout: none under way; last: generation 2 done"),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("slot 0: pid {} started (generation 2)", new[0])),
        "the events pane: {screen}"
    );

    // + asks first; n leaves it be; y scales.
    top.press("+");
    top.wait_screen("the question", |s| {
        s.contains("scale from 2 to 3 workers? y/n")
    });
    top.press("n");
    top.wait_screen("the keys again", |s| s.contains("r reload · + scale up"));
    top.press("+");
    top.wait_screen("the question", |s| {
        s.contains("scale from 2 to 3 workers? y/n")
    });
    top.press("y");
    let third = settled_pids(&socket, 3)[2];
    top.wait_screen("what was asked, and the master's answer", |s| {
        s.contains("asked: scale from 2 to 3 workers") && s.contains("scaling from 2 to 3 workers")
    });
    top.wait_screen("a third worker", |s| {
        has_row(s, 2, third) && s.contains("3/3 workers ready")
    });

    // x asks which slot, then whether; the slot's worker is replaced.
    let before = settled_pids(&socket, 3);
    top.press("x1\r");
    top.wait_screen("the question", |s| {
        s.contains("replace the worker of slot 1? y/n")
    });
    top.press("y");
    let replaced = wait_pids(&socket, 3, |pids| pids[1] != before[1]);
    top.wait_screen("slot 1's new worker", |s| {
        has_row(s, 1, replaced[1]) && !s.contains(&row(1, before[1]))
    });

    // r asks, then rolls every worker; the pane tells the rollout as it goes.
    top.press("r");
    top.wait_screen("the question", |s| {
        s.contains("rolling restart (reload) of every worker? y/n")
    });
    top.press("y");
    let rolled = wait_pids(&socket, 3, |pids| {
        pids.iter().all(|p| !replaced.contains(p))
    });
    top.wait_screen(
        "generation 3 in every slot, and the rollout's outcome",
        |s| {
            (0..3).all(|slot| has_row(s, slot, rolled[slot]))
                && s.contains("rolling restart to generation 3 started")
                && s.contains("rollout: generation 3 done: 3 workers replaced")
        },
    );

    // The master goes away: said so, and the view stays until q.
    let out = regiment(&socket, &["stop", "--wait"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    top.wait_screen("the master unreachable", |s| {
        s.contains("master unreachable since") && s.contains("no control socket at")
    });
    top.press("q");
    assert_eq!(top.wait_exit(), 0);
}

#[test]
fn top_shows_each_workers_p50_and_p99_latency() {
    let dir = ScratchDir::new("top-latency");
    let socket = dir.join("control.sock");
    let cluster = start(&socket, 1);
    let pid = settled_pids(&socket, 1)[0];
    let mut top = Top::spawn(&socket, &[], 40, 160);
    // No request finished yet: no latency to tell.
    let screen = top.wait_screen("the worker's row", |s| has_row(s, 0, pid));
    assert_eq!(
        cell(&screen, "P50", 0, pid).as_deref(),
        Some("-"),
        "{screen}"
    );
    assert_eq!(
        cell(&screen, "P99", 0, pid).as_deref(),
        Some("-"),
        "{screen}"
    );

    // Requests that each sleep 20 ms in the handler, bounded in count and time. The workers'
    // bucket of 20 ms starts at 16.4 ms (shown `16ms`): no figure of theirs can be lower.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let config = LoadConfig::new(cluster.addr())
        .clients(
            4,
            ClientSpec::new(Mode::NewConnection, &["/slow?ms=20"]).max_requests(5_000),
        )
        .max_duration(CEILING);
    let stop = config.stop();
    let load = rt.spawn(tests::load::run(config));
    let at_least = 16_000.0;
    let screen = top.wait_screen("the p50 and p99 of the requests served", |s| {
        latencies(s, pid).is_some_and(|(p50, p99)| p50 >= at_least && p99 >= p50)
    });
    eprintln!("{screen}");

    // `--once` prints them too.
    let out = regiment(&socket, &["top", "--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (p50, p99) = latencies(&text, pid).unwrap_or_else(|| panic!("p50 and p99: {text}"));
    assert!(p50 >= at_least && p99 >= p50, "{text}");

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let report = rt.block_on(load).expect("the load run");
    assert_eq!(report.failures(), 0, "{report}");
    top.press("q");
    assert_eq!(top.wait_exit(), 0);
}

#[test]
fn top_shows_a_kill_report_in_its_pane() {
    let dir = ScratchDir::new("top-kill-report");
    let socket = dir.join("control.sock");
    let c = Cluster::start(
        Path::new(FIXTURE),
        &[
            ("REGIMENT_WORKERS", "1"),
            ("FIXTURE_IGNORE_DRAIN", "1"),
            ("REGIMENT_DRAIN_TIMEOUT", "1s"),
            ("REGIMENT_CONTROL_SOCKET", socket.to_str().unwrap()),
        ],
    );
    let old = c.wait_serving(1)[&0];
    let mut top = Top::spawn(&socket, &[], 40, 160);
    top.wait_screen("the worker's row", |s| has_row(s, 0, old));

    // It asks to be replaced, then ignores its drain: the master reports on it, then kills it
    // at the deadline.
    signal_pid(old, Signal::SIGUSR1);
    c.wait_event("kill", 0, |e| e["event"] == "killed" && pid_of(e) == old);
    let said = format!("kill report #1: slot 0 pid {old} gen 1, drain deadline: ");
    let screen = top.wait_screen("the kill report in the pane", |s| s.contains(&said));
    let line = screen.lines().find(|l| l.contains(&said)).unwrap();
    assert!(
        line.contains(" thread") && line.contains("(regiment report 1)"),
        "{screen}"
    );

    // `--once` shows it among the events too.
    let out = regiment(&socket, &["top", "--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let events = text.split_once("EVENTS (UTC)\n").expect(&text).1;
    assert!(
        events.lines().any(|l| l.contains(&said)),
        "the report in the events: {text}"
    );
    top.press("q");
    assert_eq!(top.wait_exit(), 0);
}
