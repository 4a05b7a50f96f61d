//! The servers under measurement: `plain_axum` or regiment's `hello`, started as child
//! processes on an ephemeral port of 127.0.0.1, their stdout read line by line with the time
//! each line arrived (`hello --print-events` prints every lifecycle event there).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::cores::Cores;

/// Which server, and how it is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    /// `plain_axum`: one process, `axum::serve`, on `#[tokio::main]`'s runtime (one thread per
    /// CPU it may run on).
    Plain,
    /// regiment's `hello`.
    Hello(HelloSetup),
}

/// `hello`'s setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloSetup {
    /// `HELLO_WORKERS`.
    pub workers: usize,
    /// `HELLO_CRITERIA`.
    pub criteria: Criteria,
    /// The runtime of its processes.
    pub runtime: Runtime,
    /// Requests after which a worker is replaced (`HELLO_MAX_REQUESTS`).
    pub max_requests: u64,
    /// Another build than the one beside this benchmark (the engine section's
    /// `--other-hello`).
    pub binary: Option<PathBuf>,
}

/// Whether `hello`'s criteria layers are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criteria {
    /// `MemoryFootprint` and `RequestCount` wrap the routes.
    On,
    /// The routes alone.
    Off,
}

/// The runtime of each server process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// Whatever the binary does by default (regiment's default for `hello`'s workers).
    Default,
    /// Multi-threaded with this many worker threads (`TOKIO_WORKER_THREADS`).
    MultiThread(usize),
    /// `new_current_thread`.
    CurrentThread,
}

/// Requests never reach it: the criteria are on but never fire.
pub const NEVER: u64 = 1_000_000_000_000;

impl HelloSetup {
    /// `workers` workers with both criteria on, never firing, on regiment's default runtime;
    /// the benchmarks change one field from there.
    pub fn steady(workers: usize) -> Self {
        HelloSetup {
            workers,
            criteria: Criteria::On,
            runtime: Runtime::Default,
            max_requests: NEVER,
            binary: None,
        }
    }
}

impl Server {
    /// A short label for tables.
    pub fn label(&self) -> String {
        match self {
            Server::Plain => "plain axum::serve".to_string(),
            Server::Hello(h) => {
                let mut s = format!(
                    "hello, {} worker{}",
                    h.workers,
                    if h.workers == 1 { "" } else { "s" }
                );
                s.push_str(match h.criteria {
                    Criteria::On => ", criteria on",
                    Criteria::Off => ", criteria off",
                });
                match h.runtime {
                    Runtime::Default => {}
                    Runtime::MultiThread(n) => s.push_str(&format!(", multi-thread {n}")),
                    Runtime::CurrentThread => s.push_str(", current-thread"),
                }
                if h.max_requests != NEVER {
                    s.push_str(&format!(", replaced every {} requests", h.max_requests));
                }
                if h.binary.is_some() {
                    s.push_str(", other build (--other-hello)");
                }
                s
            }
        }
    }
}

/// Lines a server printed, each with the moment it was read.
#[derive(Debug, Default)]
pub struct Output {
    lines: Mutex<Vec<(Instant, String)>>,
    grew: Condvar,
}

impl Output {
    /// Waits until `pred` holds over the lines so far, at most `limit`.
    pub fn wait_for(
        &self,
        limit: Duration,
        mut pred: impl FnMut(&[(Instant, String)]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + limit;
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if pred(&lines) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            lines = self
                .grew
                .wait_timeout(lines, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The lines so far.
    pub fn snapshot(&self) -> Vec<(Instant, String)> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `hello`'s events (the JSON of its `EVENT ` lines) so far, with their times.
    pub fn events(&self) -> Vec<(Instant, serde_json::Value)> {
        events_of(&self.snapshot())
    }
}

/// The JSON events among `lines`.
pub fn events_of(lines: &[(Instant, String)]) -> Vec<(Instant, serde_json::Value)> {
    lines
        .iter()
        .filter_map(|(at, l)| {
            let json = l.strip_prefix("EVENT ")?;
            Some((*at, serde_json::from_str(json).ok()?))
        })
        .collect()
}

/// A running server; stopped (SIGTERM, then SIGKILL after 30 s) when dropped.
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it printed.
    pub output: Arc<Output>,
}

impl Running {
    /// The pid of the server's first process (`hello`'s master).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the server's first process.
    pub fn signal(&self, signal: Signal) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), signal);
    }

    /// Stops the server and waits for it.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.signal(Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop_now();
        }
    }
}

/// Where the binaries are (the directory of this executable, `target/release`).
#[derive(Debug, Clone)]
pub struct Binaries {
    /// Their directory.
    pub dir: PathBuf,
}

impl Binaries {
    /// The path of the binary `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Starts `server` on the `cores` given, and waits until it listens and, for `hello`, until
/// all its workers are ready (at most a minute).
pub fn start(bins: &Binaries, server: &Server, cores: &Cores) -> Result<Running, String> {
    let (mut cmd, ready_workers) = match server {
        Server::Plain => {
            let mut cmd = cores.command(&bins.path("plain_axum"));
            cmd.arg("--bind")
                .arg("127.0.0.1:0")
                .env_remove("TOKIO_WORKER_THREADS");
            (cmd, 0)
        }
        Server::Hello(h) => {
            let program = h.binary.clone().unwrap_or_else(|| bins.path("hello"));
            let mut cmd = cores.command(&program);
            cmd.env("HELLO_BIND", "127.0.0.1:0")
                .env("HELLO_WORKERS", h.workers.to_string())
                .env("HELLO_MAX_REQUESTS", h.max_requests.to_string())
                .env("HELLO_PRINT_EVENTS", "true")
                // A rollout completes once its new workers served this long (5 s by default):
                // 1 s, so that the restarts section's rollouts, 2 s apart, each complete
                // instead of superseding the one before.
                .env("REGIMENT_ROLLOUT_SETTLE", "1s")
                .env(
                    "HELLO_CRITERIA",
                    match h.criteria {
                        Criteria::On => "on",
                        Criteria::Off => "off",
                    },
                )
                .env_remove("TOKIO_WORKER_THREADS")
                .env_remove("HELLO_RUNTIME");
            match h.runtime {
                Runtime::Default => {}
                Runtime::MultiThread(n) => {
                    cmd.env("TOKIO_WORKER_THREADS", n.to_string());
                }
                Runtime::CurrentThread => {
                    cmd.env("HELLO_RUNTIME", "current-thread");
                }
            }
            (cmd, h.workers)
        }
    };
    cmd.env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", server.label()))?;
    let stdout = child.stdout.take().expect("piped");
    let output = Arc::new(Output::default());
    let sink = output.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut lines = sink.lines.lock().unwrap_or_else(|e| e.into_inner());
            lines.push((Instant::now(), line));
            sink.grew.notify_all();
        }
    });
    let mut running = Running {
        child,
        addr: "127.0.0.1:0".parse().expect("an address"),
        output,
    };
    let mut addr = None;
    let listening = running.output.wait_for(Duration::from_secs(60), |lines| {
        addr = lines.iter().find_map(|(_, l)| listening_addr(l));
        let ready = events_of(lines)
            .iter()
            .filter(|(_, e)| e["event"] == "ready")
            .count();
        addr.is_some() && ready >= ready_workers
    });
    match addr {
        Some(a) if listening => {
            running.addr = a;
            Ok(running)
        }
        _ => Err(format!(
            "{} did not listen with all workers ready within 60 s",
            server.label()
        )),
    }
}

/// The address in `NAME: listening on http://ADDR`.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    line.split_once("listening on http://")?
        .1
        .trim()
        .parse()
        .ok()
}

/// Checks that the binaries exist, with the command that builds them if not.
pub fn check(bins: &Binaries) -> Result<(), String> {
    for name in ["hello", "plain_axum", "regiment-load"] {
        if !Path::new(&bins.path(name)).exists() {
            return Err(format!(
                "{} is missing: build it with `cargo build --release -p examples -p regiment-bench`",
                bins.path(name).display()
            ));
        }
    }
    Ok(())
}
