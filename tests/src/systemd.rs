//! Runs a service unit and its socket unit the way systemd runs them, without systemd as the
//! service manager: `systemd-socket-activate` (Debian's systemd package) binds the socket's
//! `ListenStream=` host on a free port, names it by `FileDescriptorName=`, and on the first
//! connection execs `ExecStart=` with the unit's `Environment=`, as the main process, with
//! `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES`. The harness plays the rest of systemd:
//! `NOTIFY_SOCKET` (a real datagram socket), `WATCHDOG_USEC` from `WatchdogSec=` with
//! `WATCHDOG_PID` naming the main process, `RuntimeDirectory=` under a private `%t`, a reload
//! as `systemctl reload` does it, and a stop as `KillMode=mixed` does it.
//!
//! Two variables are the harness's own, not the unit's: `FIXTURE_TAG`, by which
//! [`Cluster`] finds every process it must clean up, and `HELLO_PRINT_EVENTS`, the lifecycle
//! event lines [`Cluster`] follows.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cluster::{CEILING, Cluster};
use crate::notify::NotifySocket;
use crate::unit_file::{UnitFile, words};

/// systemd's `TimeoutStopSec=` when a unit does not set it.
const DEFAULT_TIMEOUT_STOP: Duration = Duration::from_secs(90);

/// A service started by socket activation, as systemd would start it.
#[derive(Debug)]
pub struct ActivatedService {
    cluster: Cluster,
    notify: NotifySocket,
    addr: SocketAddr,
    service: UnitFile,
    dir: PathBuf,
}

impl ActivatedService {
    /// Starts `service` behind `socket`. `programs` maps the file name of `ExecStart=`'s program
    /// (`hello`) to the binary to run in its place. The service is not running yet: like
    /// systemd's, it is started by the first connection to [`ActivatedService::addr`].
    pub fn start(service: &UnitFile, socket: &UnitFile, programs: &[(&str, &Path)]) -> Self {
        require_socket_activate();
        let dir = private_dir();
        let notify = NotifySocket::bind(&dir.join("notify.sock"));
        // Free ports are picked, then bound by systemd-socket-activate: another process may
        // take one in between, so a start that fails to bind is retried on another.
        let mut tries = 0;
        loop {
            tries += 1;
            let addr = listen_addr(socket);
            let cmd = command(service, socket, programs, addr, &dir, &notify);
            let mut cluster = Cluster::start_command(cmd, &[]);
            let deadline = Instant::now() + CEILING;
            loop {
                if cluster.stderr().contains("Listening on") {
                    return ActivatedService {
                        cluster,
                        notify,
                        addr,
                        service: service.clone(),
                        dir,
                    };
                }
                if !cluster.is_running() {
                    assert!(
                        tries < 3,
                        "systemd-socket-activate did not start:\n{}",
                        cluster.stderr()
                    );
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "systemd-socket-activate never listened:\n{}",
                    cluster.stderr()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// The value the unit's `Environment=` gives `name`, its specifiers resolved as they were
    /// for the service.
    pub fn environment(&self, name: &str) -> Option<String> {
        let runtime_root = self.dir.join("run");
        self.service
            .environment()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| specifiers(&v, &runtime_root))
    }

    /// The activated socket's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the service told the service manager.
    pub fn notify(&self) -> &NotifySocket {
        &self.notify
    }

    /// The master, its events and its workers.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// `$MAINPID`: systemd-socket-activate execs the program in its own process.
    pub fn main_pid(&self) -> u32 {
        self.cluster.pid()
    }

    /// What `systemctl reload` does: runs `ExecReload=` (with `$MAINPID`) when the unit has
    /// it, else, under `Type=notify-reload`, sends `ReloadSignal=` (SIGHUP by default) to the
    /// main process.
    pub fn reload(&self) {
        let commands = self.service.all("Service", "ExecReload");
        if !commands.is_empty() {
            for line in commands {
                self.run_control_command(line);
            }
            return;
        }
        assert_eq!(
            self.service.get("Service", "Type"),
            Some("notify-reload"),
            "{} cannot reload: no ExecReload= and not Type=notify-reload",
            self.service.path().display()
        );
        let signal = signal(
            self.service
                .get("Service", "ReloadSignal")
                .unwrap_or("SIGHUP"),
        );
        kill(Pid::from_raw(self.main_pid() as i32), signal).expect("send the reload signal");
    }

    /// What `systemctl stop` does under `KillMode=mixed`: `KillSignal=` (SIGTERM by default) to
    /// the main process alone, then waits for it to exit, at most `TimeoutStopSec=` (after
    /// which systemd would SIGKILL every process of the unit).
    pub fn stop(&mut self) -> ExitStatus {
        let mode = self.service.get("Service", "KillMode");
        assert!(
            matches!(mode, Some("mixed" | "process")),
            "{}: KillMode={mode:?}; this harness stops the way KillMode=mixed does",
            self.service.path().display()
        );
        let signal = signal(
            self.service
                .get("Service", "KillSignal")
                .unwrap_or("SIGTERM"),
        );
        kill(Pid::from_raw(self.main_pid() as i32), signal).expect("send the stop signal");
        let timeout = self
            .service
            .timespan("Service", "TimeoutStopSec")
            .unwrap_or(DEFAULT_TIMEOUT_STOP);
        self.cluster.wait_exit(timeout)
    }

    fn run_control_command(&self, line: &str) {
        let main_pid = self.main_pid().to_string();
        let argv: Vec<String> = words(line)
            .into_iter()
            .map(|w| {
                w.replace("${MAINPID}", &main_pid)
                    .replace("$MAINPID", &main_pid)
            })
            .collect();
        let program = argv[0].trim_start_matches(['-', '+', '!', ':']);
        let status = Command::new(program)
            .args(&argv[1..])
            .status()
            .unwrap_or_else(|e| panic!("run {line:?}: {e}"));
        assert!(status.success(), "{line:?} failed: {status}");
    }
}

impl Drop for ActivatedService {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fails the test, saying what to install, when the tool is not on this machine.
fn require_socket_activate() {
    let found = Command::new("systemd-socket-activate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "systemd-socket-activate is missing: install Debian's systemd package \
         (apt-get install -y --no-install-recommends systemd), as bash .ci/run does"
    );
}

/// A fresh directory for one service: its notify socket and its `%t`.
fn private_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "regiment-unit-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the service's directory");
    dir
}

/// The socket unit's `ListenStream=` host (any address of it: 127.0.0.1) with a free port.
fn listen_addr(socket: &UnitFile) -> SocketAddr {
    let listen = socket.require("Socket", "ListenStream");
    let ip = match SocketAddr::from_str(listen) {
        Ok(addr) if !addr.ip().is_unspecified() => addr.ip(),
        Ok(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Err(_) => {
            listen.parse::<u16>().unwrap_or_else(|_| {
                panic!("ListenStream={listen}: this harness knows HOST:PORT and PORT")
            });
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
    };
    let port = TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    SocketAddr::new(ip, port)
}

/// `sh` only to put its own pid in `WATCHDOG_PID` before it execs systemd-socket-activate,
/// which execs the program: all three are the one main process.
fn command(
    service: &UnitFile,
    socket: &UnitFile,
    programs: &[(&str, &Path)],
    addr: SocketAddr,
    dir: &Path,
    notify: &NotifySocket,
) -> Command {
    let runtime_root = dir.join("run");
    let mut env = vec![format!("NOTIFY_SOCKET={}", notify.path().display())];
    for name in service
        .all("Service", "RuntimeDirectory")
        .into_iter()
        .flat_map(words)
    {
        let path = runtime_root.join(&name);
        std::fs::create_dir_all(&path).expect("create the RuntimeDirectory");
        env.push(format!("RUNTIME_DIRECTORY={}", path.display()));
    }
    if let Some(watchdog) = service.timespan("Service", "WatchdogSec") {
        env.push(format!("WATCHDOG_USEC={}", watchdog.as_micros()));
        env.push("WATCHDOG_PID".into());
    }
    for (k, v) in service.environment() {
        env.push(format!("{k}={}", specifiers(&v, &runtime_root)));
    }
    env.push("FIXTURE_TAG".into());
    env.push("HELLO_PRINT_EVENTS=true".into());

    let exec = words(service.require("Service", "ExecStart"));
    let path = exec[0].trim_start_matches(['-', '+', '!', ':']);
    let name = Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path);
    let program = programs
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("ExecStart={path}: no built binary stands for {name:?}"));
    let fdname = socket
        .get("Socket", "FileDescriptorName")
        .map(str::to_owned)
        .unwrap_or_else(|| {
            // systemd's default: the socket unit's name.
            socket.path().file_name().unwrap().to_string_lossy().into()
        });

    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("export WATCHDOG_PID=$$; exec systemd-socket-activate \"$@\"")
        .arg("sh")
        .arg(format!("--listen={addr}"))
        .arg(format!("--fdname={fdname}"));
    for e in env {
        cmd.arg(format!("--setenv={e}"));
    }
    cmd.arg(program);
    cmd.args(exec[1..].iter().map(|a| specifiers(a, &runtime_root)));
    cmd
}

/// Resolves the unit specifiers the guides use: `%t` (the runtime directory's root, /run for
/// a system service) and `%%`.
fn specifiers(value: &str, runtime_root: &Path) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push_str(&runtime_root.to_string_lossy()),
            Some('%') => out.push('%'),
            other => panic!("the specifier %{other:?} in {value:?} is not known to this harness"),
        }
    }
    out
}

/// A signal as unit files name it: `SIGHUP` or `HUP`.
fn signal(name: &str) -> Signal {
    let full = if name.starts_with("SIG") {
        name.to_owned()
    } else {
        format!("SIG{name}")
    };
    Signal::from_str(&full).unwrap_or_else(|_| panic!("{name} is not a signal"))
}
