//! Starts a regiment master as a real process, follows its lifecycle events, and cleans up.
//!
//! The master prints each event as `EVENT {json}` on stdout (see [`crate::fixture`]); a reader
//! thread collects them, and tests wait on conditions over the collected events with generous
//! ceilings. Dropping a [`Cluster`] SIGKILLs the master and every worker it reported spawning,
//! by pid, after checking that the pid still belongs to a worker of this cluster.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::closable_pipe::{ClosablePipe, Closer};

/// The ceiling for conditions that should hold within a few seconds on an idle machine.
pub const CEILING: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Log {
    events: Vec<Value>,
    /// The master's other stdout lines (what a person running it reads).
    lines: Vec<String>,
    closed: bool,
}

/// A running master and what it has reported.
#[derive(Debug)]
pub struct Cluster {
    master: Child,
    log: Arc<(Mutex<Log>, Condvar)>,
    stderr: Arc<Mutex<String>>,
    tag: String,
    /// The threads that read the master's stdout and stderr, and what makes them close them.
    stdout_reader: Reader,
    stderr_reader: Reader,
}

/// A thread reading one of the master's pipes, until EOF or until told to close it.
#[derive(Debug)]
struct Reader {
    closer: Closer,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reader {
    /// Closes the pipe (the thread drops it as it returns), and waits until it is closed.
    fn close(&mut self) {
        self.closer.close();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the pipe's reader");
        }
    }
}

impl Cluster {
    /// Starts `program` as a master listening on an ephemeral port of 127.0.0.1, with `env`.
    pub fn start(program: &Path, env: &[(&str, &str)]) -> Cluster {
        Self::start_command(Command::new(program), env)
    }

    /// [`Cluster::start`] with the variables `unset` left out of the master's environment:
    /// `REGIMENT_BIND`, say, for a program that binds an address of its own choosing (an empty
    /// value is no way to unset one: regiment refuses it).
    pub fn start_without(program: &Path, env: &[(&str, &str)], unset: &[&str]) -> Cluster {
        let mut cmd = Command::new(program);
        Self::default_env(&mut cmd);
        for name in unset {
            cmd.env_remove(name);
        }
        Self::start_prepared(cmd, env)
    }

    /// Starts the master with `cmd` (which must exec the master program in the same process,
    /// so that the pid is the master's) and `env`.
    pub fn start_command(mut cmd: Command, env: &[(&str, &str)]) -> Cluster {
        Self::default_env(&mut cmd);
        Self::start_prepared(cmd, env)
    }

    /// What every master of the tests gets unless a test says otherwise.
    fn default_env(cmd: &mut Command) {
        cmd.env("REGIMENT_BIND", "127.0.0.1:0")
            // Rollouts complete once their last worker served this long (5 s by default): short
            // here, so that the tests that wait for many rollouts stay quick; the tests of the
            // settle itself give their own.
            .env("REGIMENT_ROLLOUT_SETTLE", "300ms")
            .env("RUST_LOG", "info");
    }

    /// Starts `cmd`, its default environment set, with `env` on top.
    fn start_prepared(mut cmd: Command, env: &[(&str, &str)]) -> Cluster {
        let tag = format!("{}-{}", std::process::id(), rand_suffix());
        cmd.env("FIXTURE_TAG", &tag)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        // A program just copied into place (a test's deploy) can be busy for an instant: a
        // process forked by another test at that moment holds the copy's write descriptor
        // until it execs (ETXTBSY). Retried, a bounded number of times.
        let mut tries = 0;
        let mut master = loop {
            match cmd.spawn() {
                Ok(child) => break child,
                Err(e) if e.raw_os_error() == Some(libc_etxtbsy()) && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("start the master: {e}"),
            }
        };
        let log = Arc::new((Mutex::new(Log::default()), Condvar::new()));
        let (stdout, stdout_closer) = ClosablePipe::new(master.stdout.take().expect("stdout"));
        let l = log.clone();
        let stdout_thread = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(json) = line.strip_prefix("EVENT ") {
                    let v: Value = serde_json::from_str(json).expect("event JSON");
                    l.0.lock().unwrap().events.push(v);
                } else {
                    l.0.lock().unwrap().lines.push(line);
                }
                l.1.notify_all();
            }
            l.0.lock().unwrap().closed = true;
            l.1.notify_all();
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let s = stderr.clone();
        let (mut err_pipe, stderr_closer) =
            ClosablePipe::new(master.stderr.take().expect("stderr"));
        let stderr_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                if std::env::var_os("REGIMENT_TEST_VERBOSE").is_some() {
                    eprint!("{text}");
                }
                s.lock().unwrap().push_str(&text);
            }
        });
        Cluster {
            master,
            log,
            stderr,
            tag,
            stdout_reader: Reader {
                closer: stdout_closer,
                thread: Some(stdout_thread),
            },
            stderr_reader: Reader {
                closer: stderr_closer,
                thread: Some(stderr_thread),
            },
        }
    }

    /// Closes the read end of the master's stdout, as a reader that exits does (`| head`): its
    /// next writes there, and its workers', fail with EPIPE. Events it prints from now on are
    /// not seen. Returns once the pipe is closed.
    pub fn close_stdout(&mut self) {
        self.stdout_reader.close();
    }

    /// Closes the read end of the master's stderr (see [`Cluster::close_stdout`]); what it logs
    /// from now on is not seen.
    pub fn close_stderr(&mut self) {
        self.stderr_reader.close();
    }

    /// The master's pid.
    pub fn pid(&self) -> u32 {
        self.master.id()
    }

    /// Everything the master wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The time between two steps of the master, from its own log lines (`message` about the
    /// worker `pid`, for each): tracing stamps a line as the driver writes it, in the turn that
    /// carried the step out, a few microseconds after that turn read its clock. The events'
    /// `t_ms` cannot time steps: the fixture stamps each event when its printer task gets to it,
    /// late by however long that task waited for a thread. A deadline counted from the first
    /// step is met at the earliest `deadline - ONE_TURN` after its line (see [`ONE_TURN`]).
    ///
    /// The log is read from the master's stderr, which the harness reads apart from its events
    /// (stdout): a line whose event was seen may still be on its way, and is waited for.
    pub fn logged_between(&self, first: (&str, u32), then: (&str, u32)) -> Duration {
        let deadline = Instant::now() + CEILING;
        let find = |log: &str, (message, pid): (&str, u32)| -> Option<SystemTime> {
            let line = log
                .lines()
                .find(|l| l.contains(message) && l.contains(&format!(" pid={pid} ")))?;
            let stamp = line.split_whitespace().next().expect("a timestamp");
            Some(humantime::parse_rfc3339(stamp).unwrap_or_else(|e| panic!("{stamp:?}: {e}")))
        };
        loop {
            let log = strip_ansi(&self.stderr());
            if let (Some(a), Some(b)) = (find(&log, first), find(&log, then)) {
                return b.duration_since(a).unwrap_or_default();
            }
            assert!(
                Instant::now() < deadline,
                "no {first:?} or {then:?} line (pid after the message) in:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A copy of the events so far.
    pub fn events(&self) -> Vec<Value> {
        self.log.0.lock().unwrap().events.clone()
    }

    /// Waits until the master has printed a stdout line (other than an event) containing
    /// `text`, or panics after the ceiling with what it printed.
    pub fn wait_line(&self, text: &str) -> String {
        let deadline = Instant::now() + CEILING;
        let (lock, cv) = &*self.log;
        let mut log = lock.lock().unwrap();
        loop {
            if let Some(line) = log.lines.iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline && !log.closed,
                "the master never printed {text:?}; it printed: {:?}\n{}",
                log.lines,
                self.stderr()
            );
            log = cv.wait_timeout(log, Duration::from_millis(200)).unwrap().0;
        }
    }

    /// Waits until the master's log (its stderr) says `text`, or panics after the ceiling with
    /// what it logged.
    pub fn wait_log(&self, text: &str) {
        let deadline = Instant::now() + CEILING;
        while !self.stderr().contains(text) {
            assert!(
                Instant::now() < deadline,
                "the master never logged {text:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `check` returns `Some` over the events, or panics after `ceiling` with the
    /// events and the master's stderr.
    pub fn wait_for<T>(
        &self,
        what: &str,
        ceiling: Duration,
        mut check: impl FnMut(&[Value]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + ceiling;
        let (lock, cv) = &*self.log;
        let mut log = lock.lock().unwrap();
        loop {
            if let Some(t) = check(&log.events) {
                return t;
            }
            let now = Instant::now();
            if now >= deadline || log.closed {
                let events = log
                    .events
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n");
                drop(log);
                panic!(
                    "timed out waiting for {what} (master {}):\n--- events\n{events}\n--- stderr\n{}",
                    if self.log.0.lock().unwrap().closed {
                        "gone"
                    } else {
                        "running"
                    },
                    self.stderr()
                );
            }
            log = cv
                .wait_timeout(log, (deadline - now).min(Duration::from_millis(200)))
                .unwrap()
                .0;
        }
    }

    /// Waits for the index of the first event at or after `from` that matches `pred`.
    pub fn wait_event(
        &self,
        what: &str,
        from: usize,
        pred: impl Fn(&Value) -> bool,
    ) -> (usize, Value) {
        self.wait_for(what, CEILING, |evs| {
            evs.iter()
                .enumerate()
                .skip(from)
                .find(|(_, e)| pred(e))
                .map(|(i, e)| (i, e.clone()))
        })
    }

    /// The TCP address the master listens on.
    pub fn addr(&self) -> SocketAddr {
        let (_, e) = self.wait_event("listening", 0, |e| e["event"] == "listening");
        e["addrs"][0]
            .as_str()
            .expect("an address")
            .parse()
            .expect("a TCP address")
    }

    /// Waits until `n` workers are serving, and returns their pids by slot.
    pub fn wait_serving(&self, n: usize) -> BTreeMap<u64, u32> {
        self.wait_for(&format!("{n} serving workers"), CEILING, |evs| {
            let s = serving(evs);
            (s.len() == n).then_some(s)
        })
    }

    /// Sends `sig` to the master.
    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid() as i32), sig).expect("signal the master");
    }

    /// Waits for the master to exit.
    pub fn wait_exit(&mut self, ceiling: Duration) -> ExitStatus {
        let deadline = Instant::now() + ceiling;
        loop {
            if let Some(status) = self.master.try_wait().expect("wait for the master") {
                // Let the reader thread collect the last lines. Workers share the master's
                // stdout, so the pipe closes only once they are gone too: bounded, as a worker
                // that outlives its master is for the test to find, not to hang on.
                let collected_by = Instant::now().max(deadline) + Duration::from_secs(10);
                {
                    let (lock, cv) = &*self.log;
                    let mut log = lock.lock().unwrap();
                    while !log.closed && Instant::now() < collected_by {
                        log = cv.wait_timeout(log, Duration::from_millis(200)).unwrap().0;
                    }
                }
                // And stderr, read by a thread of its own to its EOF: what the master said
                // last (an error before it exited) is there once this returns.
                while (self.stderr_reader.thread.as_ref()).is_some_and(|t| !t.is_finished())
                    && Instant::now() < collected_by
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "master did not exit within {ceiling:?}\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A fresh status snapshot from the master (the fixture prints one on SIGWINCH) that
    /// satisfies `pred`; asks again until it does, within the ceiling.
    pub fn status_where(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + CEILING;
        loop {
            let from = self.events().len();
            self.signal(Signal::SIGWINCH);
            let (_, snap) = self.wait_event("a status snapshot", from, |e| {
                e["event"] == "status-snapshot"
            });
            if pred(&snap["status"]) {
                return snap["status"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "status never showed {what}: {}",
                snap["status"]
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the master process is still running.
    pub fn is_running(&mut self) -> bool {
        self.master
            .try_wait()
            .expect("wait for the master")
            .is_none()
    }

    /// Every worker pid the master reported spawning.
    pub fn spawned_pids(&self) -> Vec<u32> {
        self.events()
            .iter()
            .filter(|e| e["event"] == "spawned")
            .map(pid_of)
            .collect()
    }

    /// Whether `pid` is a live (not zombie) process that carries this cluster's tag.
    pub fn is_ours(&self, pid: u32) -> bool {
        alive(pid)
            && std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                env.split(|b| *b == 0)
                    .any(|kv| kv == format!("FIXTURE_TAG={}", self.tag).as_bytes())
            })
    }

    /// Live processes anywhere on the machine that carry this cluster's tag (master included).
    pub fn live_processes(&self) -> Vec<u32> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| *pid != std::process::id() && self.is_ours(*pid))
            .collect()
    }

    /// Waits until no process of this cluster is alive.
    pub fn wait_all_gone(&self, ceiling: Duration) {
        let deadline = Instant::now() + ceiling;
        loop {
            let live = self.live_processes();
            if live.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "processes left behind: {live:?}\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.master.kill();
        let _ = self.master.wait();
        for pid in self.spawned_pids() {
            if self.is_ours(pid) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }
}

/// How much earlier than its deadline a step may appear in [`Cluster::logged_between`]: the
/// first line is written after its turn read the clock, in the same turn (microseconds of
/// work; a thread preempted just there for longer than this is what it allows for).
pub const ONE_TURN: Duration = Duration::from_millis(50);

/// `text` without its ANSI escape sequences (tracing colours its fields).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters, ended by a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

/// The `pid` field of an event.
pub fn pid_of(e: &Value) -> u32 {
    e["pid"].as_u64().expect("pid") as u32
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    crate::procfs::state(pid).is_some_and(|s| s != 'Z')
}

/// Waits until `pid` is gone.
pub fn wait_gone(pid: u32, ceiling: Duration) {
    let deadline = Instant::now() + ceiling;
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "pid {pid} still alive after {ceiling:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The workers serving after `events`: slot → pid. A replacement takes its slot at its `ready`,
/// before the worker it replaces drains.
pub fn serving(events: &[Value]) -> BTreeMap<u64, u32> {
    let mut by_slot = BTreeMap::new();
    for e in events {
        match e["event"].as_str() {
            Some("ready") => {
                by_slot.insert(e["slot"].as_u64().expect("slot"), pid_of(e));
            }
            Some("draining" | "exited" | "crashed" | "killed") => {
                by_slot.retain(|_, p| *p != pid_of(e))
            }
            _ => {}
        }
    }
    by_slot
}

/// Sends one line to the cluster and returns the answer line.
pub fn ask(addr: SocketAddr, line: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(format!("{line}\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    if out.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "empty answer",
        ));
    }
    Ok(out.trim().to_owned())
}

/// Sends one line over a Unix-domain socket and returns the answer line.
pub fn ask_unix(path: &Path, line: &str) -> std::io::Result<String> {
    let mut s = std::os::unix::net::UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(format!("{line}\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.trim().to_owned())
}

/// `whoami` answered: (variant, slot, pid, generation).
pub fn whoami(addr: SocketAddr) -> (String, u64, u32, u64) {
    let a = ask(addr, "whoami").expect("whoami answered");
    let f: Vec<&str> = a.split_whitespace().collect();
    assert_eq!(f.len(), 4, "unexpected answer {a:?}");
    (
        f[0].into(),
        f[1].parse().unwrap(),
        f[2].parse().unwrap(),
        f[3].parse().unwrap(),
    )
}

/// Sends `sig` to a worker.
pub fn signal_pid(pid: u32, sig: Signal) {
    kill(Pid::from_raw(pid as i32), sig).expect("signal the worker");
}

/// `ETXTBSY`: text file busy.
fn libc_etxtbsy() -> i32 {
    nix::errno::Errno::ETXTBSY as i32
}
