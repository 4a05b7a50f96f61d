//! The operating guides of docs/ hold: their files are read from docs/ as shipped, run where
//! this machine can run them, and their figures checked against each other.
//!
//! - systemd: hello.socket and hello.service (and the drop-in for systemd before 253) run as
//!   systemd runs them, by socket activation, with a real `NOTIFY_SOCKET`: ready, served on the
//!   activated socket, reloaded, upgraded in place, stopped within `TimeoutStopSec=`.
//! - containers: the Dockerfile's `ENTRYPOINT` runs as PID 1 of its own PID namespace (and
//!   upgrades itself there, staying PID 1) with the
//!   image's environment alone, and stops on its `STOPSIGNAL`; compose's stop grace period; the
//!   build context's `.dockerignore` leaves out `target/` and keeps the sources.
//! - Kubernetes: `terminationGracePeriodSeconds` against the preStop sleep and the drain, and the
//!   guide's arithmetic as written; the probes on the admin listener; the memory budget, a share
//!   of a memory limit the container has, as the guide says.
//! - nginx: its upstream keep-alive and timeouts against regiment's.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use regiment_axum::DEFAULT_HEADER_READ_TIMEOUT;
use regiment_core::defaults;
use tests::cluster::{CEILING, Cluster};
use tests::dockerfile::{self, Stage};
use tests::notify::{carries, count, value};
use tests::systemd::ActivatedService;
use tests::unit_file::{UnitFile, timespan};

const HELLO: &str = env!("CARGO_BIN_EXE_hello_under_test");
const REGIMENT: &str = env!("CARGO_BIN_EXE_regiment_under_test");

/// The least time a service manager must leave the master after the drain deadline: the
/// master kills the workers still draining then, reaps them and exits.
const MARGIN: Duration = Duration::from_secs(5);

fn docs(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(path)
}

/// The drain deadline a `REGIMENT_DRAIN_TIMEOUT` value gives, parsed as regiment parses it.
fn drain_timeout(value: Option<String>) -> Duration {
    value.map_or(defaults::DRAIN_TIMEOUT, |v| {
        humantime::parse_duration(&v).unwrap_or_else(|e| panic!("REGIMENT_DRAIN_TIMEOUT={v}: {e}"))
    })
}

/// Answers `GET path` on a connection of its own, with a ceiling that covers the start of a
/// socket-activated service (its first connection starts it).
fn get(addr: SocketAddr, path: &str) -> String {
    let (head, body) = ask(addr, path);
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    body
}

/// Whether `GET path` is answered 200.
fn answers_200(addr: SocketAddr, path: &str) -> bool {
    ask(addr, path).0.starts_with("HTTP/1.1 200")
}

/// The head and body of the answer to `GET path`, on a connection of its own.
fn ask(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
    s.set_read_timeout(Some(CEILING)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("an answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    (head.to_owned(), body.to_owned())
}

/// CLOCK_MONOTONIC in µs, the clock of `MONOTONIC_USEC`.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// The timeouts of a service unit against its drain deadline, and its watchdog.
fn check_unit_figures(service: &UnitFile) {
    let drain = drain_timeout(service.env_var("REGIMENT_DRAIN_TIMEOUT"));
    let stop = service
        .timespan("Service", "TimeoutStopSec")
        .expect("TimeoutStopSec= set (systemd's default, 90 s, says nothing of the drain)");
    assert!(
        stop >= drain + MARGIN,
        "TimeoutStopSec={stop:?} must exceed the drain deadline ({drain:?}) by {MARGIN:?} at \
         least, or systemd kills workers that are still finishing requests"
    );
    assert_eq!(
        service.get("Service", "KillMode"),
        Some("mixed"),
        "KillMode=mixed: SIGTERM to the master alone, which drains its workers in order"
    );
    assert!(
        service.timespan("Service", "WatchdogSec").is_some(),
        "WatchdogSec= set: the master's supervisor loop feeds it"
    );
}

/// Starts the unit by its first connection, then reloads and stops it as systemctl would,
/// checking what systemd would see at each step.
fn serve_reload_stop(service: &UnitFile, socket: &UnitFile) {
    let workers: usize = service
        .env_var("REGIMENT_WORKERS")
        .expect("REGIMENT_WORKERS in the unit")
        .parse()
        .expect("a number of workers");
    let mut unit = ActivatedService::start(service, socket, &[("hello", Path::new(HELLO))]);

    // The first connection starts the service, and a worker answers it on the activated socket.
    let body = get(unit.addr(), "/");
    assert!(
        body.starts_with("hello from worker") && body.contains("generation 1"),
        "{body}"
    );
    let notify = unit.notify();
    notify.wait_for("READY=1", |m| count(m, "READY=1") == 1);
    let serving = unit.cluster().wait_serving(workers);
    // Workers get the socket under the name the socket unit gave it, and not the notify socket.
    let fdname = socket.require("Socket", "FileDescriptorName");
    for pid in serving.values() {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("a worker's environ");
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        assert!(
            vars.contains(&format!("LISTEN_FDNAMES={fdname}").as_bytes()),
            "worker {pid} sees the socket as {fdname}"
        );
        assert!(!vars.iter().any(|v| v.starts_with(b"NOTIFY_SOCKET=")));
    }
    notify.wait_for("a watchdog ping", |m| count(m, "WATCHDOG=1") >= 1);

    // systemctl reload: RELOADING=1 stamped after the reload began (systemd ignores an older
    // one), then READY=1 once the rollout ended; the workers run a new generation.
    let reload_began = monotonic_usec();
    unit.reload();
    notify.wait_for(
        "RELOADING=1 with MONOTONIC_USEC after the reload began",
        |m| {
            m.iter().any(|m| {
                carries(m, "RELOADING=1")
                    && value(m, "MONOTONIC_USEC")
                        .and_then(|v| v.parse::<u64>().ok())
                        .is_some_and(|t| t >= reload_began)
            })
        },
    );
    notify.wait_for("READY=1 after RELOADING=1", |m| {
        let reloading = m.iter().position(|m| carries(m, "RELOADING=1")).unwrap();
        count(&m[reloading..], "READY=1") == 1
    });
    let body = get(unit.addr(), "/");
    assert!(body.contains("generation 2"), "after the reload: {body}");

    // The guide's deploy script ends with `regiment reload --wait`, on the unit's control
    // socket: the same rollout, answered with its outcome, and systemd told of it as well.
    let control = unit
        .environment("REGIMENT_CONTROL_SOCKET")
        .expect("REGIMENT_CONTROL_SOCKET in the unit");
    let regiment = |args: &[&str]| {
        let out = Command::new(REGIMENT)
            .args(args)
            .env("REGIMENT_CONTROL_SOCKET", &control)
            .output()
            .expect("run regiment");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "regiment {args:?}: {}\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let deployed = regiment(&["reload", "--wait"]);
    assert!(
        deployed
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("generation 3 done")),
        "{deployed}"
    );
    notify.wait_for("RELOADING=1 then READY=1 for the deploy", |m| {
        let second = m
            .iter()
            .enumerate()
            .filter(|(_, m)| carries(m, "RELOADING=1"))
            .nth(1);
        second.is_some_and(|(i, _)| count(&m[i..], "READY=1") == 1)
    });
    assert!(get(unit.addr(), "/").contains("generation 3"));
    let status = regiment(&["status"]);
    assert!(
        status.contains(&format!("{workers}/{workers} workers ready · generation 3")),
        "{status}"
    );

    // An upgrade of the master in place (SIGUSR2, as `regiment upgrade` asks): the same main
    // process, on the socket systemd handed it, one more reload to systemd, and its workers
    // rolled to the new build.
    let master = unit.cluster().pid();
    unit.cluster().signal(Signal::SIGUSR2);
    notify.wait_for("the upgrade's end", |m| {
        m.iter().any(|m| carries(m, "STATUS=upgrade 1 done"))
    });
    notify.wait_for("RELOADING=1 then READY=1 for the upgrade", |m| {
        let third = m
            .iter()
            .enumerate()
            .filter(|(_, m)| carries(m, "RELOADING=1"))
            .nth(2);
        third.is_some_and(|(i, _)| count(&m[i..], "READY=1") == 1)
    });
    assert_eq!(unit.cluster().pid(), master);
    assert!(get(unit.addr(), "/").contains("generation 4"));

    // Pings go on at half of WatchdogSec= (the first one came at start).
    notify.wait_for("a second watchdog ping", |m| count(m, "WATCHDOG=1") >= 2);

    // systemctl stop: STOPPING=1, and the master exits 0 within TimeoutStopSec=.
    let status = unit.stop();
    unit.notify()
        .wait_for("STOPPING=1", |m| count(m, "STOPPING=1") == 1);
    assert!(
        status.success(),
        "the master exited with {status}:\n{}",
        unit.cluster().stderr()
    );
    unit.cluster().wait_all_gone(CEILING);
}

#[test]
fn hello_service_and_socket_run_as_systemd_runs_them() {
    let socket = UnitFile::read(&docs("systemd/hello.socket"));
    let service = UnitFile::read(&docs("systemd/hello.service"));
    assert_eq!(service.get("Service", "Type"), Some("notify-reload"));
    // systemd sends SIGHUP itself under notify-reload; an ExecReload= that signals too would
    // start a second rollout, which supersedes the first.
    assert!(
        service.get("Service", "ExecReload").is_none(),
        "no ExecReload= beside Type=notify-reload"
    );
    assert!(
        service.all("Unit", "Requires").contains(&"hello.socket"),
        "hello.service requires its socket"
    );
    check_unit_figures(&service);
    serve_reload_stop(&service, &socket);
}

#[test]
fn the_drop_in_for_systemd_before_253_reloads_with_exec_reload() {
    let socket = UnitFile::read(&docs("systemd/hello.socket"));
    let service = UnitFile::read(&docs("systemd/hello.service"))
        .with_drop_in(&docs("systemd/hello.service.d/before-253.conf"));
    assert_eq!(service.get("Service", "Type"), Some("notify"));
    assert_eq!(service.all("Service", "ExecReload").len(), 1);
    check_unit_figures(&service);
    serve_reload_stop(&service, &socket);
}

/// The final stage of the Dockerfile, after its checks: the entrypoint is the binary itself in
/// exec form, the stop signal a graceful stop, the listeners' ports exposed.
fn checked_image() -> Stage {
    let stages = dockerfile::stages(&docs("containers/Dockerfile"));
    let build = stages.first().expect("a build stage");
    let image = stages.last().expect("a final stage").clone();
    let entrypoint = image.exec_form("ENTRYPOINT").expect("an ENTRYPOINT");
    // A CMD, if any, only gives the entrypoint arguments, in exec form too (or this panics).
    image.exec_form("CMD");
    let program = Path::new(&entrypoint[0]);
    assert!(
        !["sh", "bash", "dash", "ash", "env", "tini", "dumb-init"]
            .contains(&program.file_name().unwrap().to_str().unwrap()),
        "ENTRYPOINT {entrypoint:?}: the master itself is PID 1, not a shell or an init"
    );
    assert!(
        image
            .all("COPY")
            .iter()
            .any(|c| c.ends_with(&format!(" {}", entrypoint[0]))),
        "ENTRYPOINT {} is the binary the image copies in",
        entrypoint[0]
    );
    let name = program.file_name().unwrap().to_str().unwrap();
    assert!(
        build
            .all("RUN")
            .iter()
            .any(|r| r.contains(&format!("--bin {name}"))),
        "the build stage builds {name}"
    );
    let stop = image.last("STOPSIGNAL").unwrap_or("SIGTERM");
    assert!(
        matches!(stop, "SIGTERM" | "TERM" | "15"),
        "STOPSIGNAL {stop}: the master stops gracefully on SIGTERM (SIGINT too); SIGQUIT or \
         SIGKILL would not drain"
    );
    let exposed: Vec<String> = image
        .all("EXPOSE")
        .into_iter()
        .flat_map(|e| {
            e.split_whitespace()
                .map(|p| p.trim_end_matches("/tcp").to_owned())
        })
        .collect();
    for var in ["REGIMENT_BIND", "REGIMENT_ADMIN_BIND"] {
        let addr: SocketAddr = image
            .env_var(var)
            .unwrap_or_else(|| panic!("ENV {var}"))
            .parse()
            .unwrap_or_else(|e| panic!("{var}: {e}"));
        assert!(
            exposed.contains(&addr.port().to_string()),
            "{var}'s port is exposed: {exposed:?}"
        );
    }
    image
}

/// `addr` with a free port of this machine instead of its own.
fn on_free_port(addr: &str) -> String {
    let addr: SocketAddr = addr.parse().expect("HOST:PORT");
    let port = TcpListener::bind((addr.ip(), 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    SocketAddr::new(addr.ip(), port).to_string()
}

/// The pid of the process whose parent is `parent`, from /proc.
fn child_of(parent: u32) -> u32 {
    let children: Vec<u32> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                s.lines()
                    .any(|l| l.strip_prefix("PPid:").map(str::trim) == Some(&parent.to_string()))
            })
        })
        .collect();
    assert_eq!(children.len(), 1, "one child of {parent}: {children:?}");
    children[0]
}

/// The absolute path of `program` on this machine's PATH.
fn on_path(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH (util-linux)"))
}

#[test]
fn the_dockerfile_entrypoint_runs_as_pid_1_and_stops_on_its_stopsignal() {
    let image = checked_image();
    let entrypoint = image.exec_form("ENTRYPOINT").unwrap();
    assert_eq!(
        Path::new(&entrypoint[0]).file_name().unwrap(),
        "hello",
        "the guide's image runs hello"
    );
    // As the container runs it: PID 1 of a PID namespace of its own, with the image's
    // environment alone (its ports moved to free ones of this machine), plus the harness's
    // own event lines. --kill-child takes the namespace down with unshare if the test fails.
    let mut env: Vec<(String, String)> = image.env();
    for (k, v) in &mut env {
        if k == "REGIMENT_BIND" || k == "REGIMENT_ADMIN_BIND" {
            *v = on_free_port(v);
        }
    }
    env.push(("HELLO_PRINT_EVENTS".into(), "true".into()));
    let mut cmd = Command::new(on_path("unshare"));
    cmd.env_clear()
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(HELLO)
        .args(&entrypoint[1..]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut c = Cluster::start_command(cmd, &env);
    c.wait_line("master pid 1;");
    let bind: SocketAddr = env
        .iter()
        .find(|(k, _)| *k == "REGIMENT_BIND")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    let body = get(SocketAddr::from(([127, 0, 0, 1], bind.port())), "/");
    assert!(body.starts_with("hello from worker"), "{body}");
    // The probes and the scrape of the guide, on the image's admin listener.
    let admin: SocketAddr = env
        .iter()
        .find(|(k, _)| *k == "REGIMENT_ADMIN_BIND")
        .map(|(_, v)| v.parse().unwrap())
        .expect("REGIMENT_ADMIN_BIND in the image");
    let admin = SocketAddr::from(([127, 0, 0, 1], admin.port()));
    get(admin, "/healthz");
    // A worker can answer before its master has read its ready message: ready soon after.
    let deadline = std::time::Instant::now() + CEILING;
    while !answers_200(admin, "/readyz") {
        assert!(std::time::Instant::now() < deadline, "/readyz never 200");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(get(admin, "/metrics").contains("regiment_workers{state=\"ready\"}"));

    // An upgrade in place, asked from outside the namespace: PID 1 executes the program anew
    // and stays PID 1 (a fork-a-new-master upgrade would end the container as its first
    // master exits), its workers rolled to the new build.
    let pid_1 = child_of(c.pid());
    kill(Pid::from_raw(pid_1 as i32), Signal::SIGUSR2).expect("signal PID 1");
    let deadline = std::time::Instant::now() + CEILING;
    let upgraded = loop {
        let status: serde_json::Value =
            serde_json::from_str(&get(admin, "/status")).expect("the status as JSON");
        if status["last_upgrade"]["outcome"]
            .as_str()
            .is_some_and(|o| o != "in-progress")
        {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the upgrade never ended: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(upgraded["last_upgrade"]["outcome"], "done", "{upgraded}");
    assert_eq!(upgraded["master_pid"], 1, "{upgraded}");
    assert_eq!(child_of(c.pid()), pid_1, "the same process, still PID 1");
    let body = get(SocketAddr::from(([127, 0, 0, 1], bind.port())), "/");
    assert!(body.starts_with("hello from worker"), "{body}");

    // docker stop: the STOPSIGNAL to PID 1, from outside its namespace.
    let stop = Signal::SIGTERM;
    kill(Pid::from_raw(pid_1 as i32), stop).expect("signal PID 1");
    let status = c.wait_exit(CEILING);
    assert!(
        status.success(),
        "PID 1 exited with {status}:\n{}",
        c.stderr()
    );
    c.wait_for("the master stopped", CEILING, |evs| {
        evs.iter().any(|e| e["event"] == "stopped").then_some(())
    });
}

/// The build context of docs/containers/Dockerfile, the workspace root, leaves out Cargo's
/// output and the git history (`.dockerignore`), and none of what the build stage compiles.
#[test]
fn the_container_build_context_leaves_out_the_build_output_and_keeps_the_sources() {
    let root = docs("..");
    let text = std::fs::read_to_string(root.join(".dockerignore"))
        .expect("a .dockerignore at the workspace root, the Dockerfile's build context");
    let patterns: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(
        patterns.iter().all(|p| !p.starts_with('!')),
        "no exceptions: {patterns:?}"
    );
    // Docker's matching for patterns without wildcards: the path itself, or what is under it.
    let ignored = |path: &str| {
        patterns.iter().any(|p| {
            let p = p.trim_matches('/');
            assert!(
                !p.contains(['*', '?', '[']),
                "a pattern this test reads: {p}"
            );
            path == p || path.starts_with(&format!("{p}/"))
        })
    };
    for path in ["target", "target/release/hello", ".git"] {
        assert!(ignored(path), "{path} is sent to the builder: {patterns:?}");
    }
    // The workspace's manifest and lock file, and every member's (cargo loads them all).
    let mut needed = vec!["Cargo.toml".to_owned(), "Cargo.lock".to_owned()];
    for entry in std::fs::read_dir(&root).unwrap() {
        let entry = entry.unwrap();
        if entry.path().join("Cargo.toml").is_file() {
            let member = entry.file_name().into_string().unwrap();
            needed.push(format!("{member}/Cargo.toml"));
            needed.push(format!("{member}/src"));
        }
    }
    assert!(needed.contains(&"examples/src".to_owned()), "{needed:?}");
    for path in &needed {
        assert!(
            !ignored(path),
            "{path} is left out of the build: {patterns:?}"
        );
    }
}

#[test]
fn compose_stop_grace_period_covers_the_drain() {
    let image = checked_image();
    let text = std::fs::read_to_string(docs("containers/compose.yaml")).unwrap();
    let compose: yaml_serde::Value = yaml_serde::from_str(&text).expect("compose.yaml parses");
    let hello = &compose["services"]["hello"];
    assert_eq!(
        hello["build"]["dockerfile"].as_str(),
        Some("docs/containers/Dockerfile")
    );
    let env = &hello["environment"];
    let drain = drain_timeout(
        env["REGIMENT_DRAIN_TIMEOUT"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| image.env_var("REGIMENT_DRAIN_TIMEOUT")),
    );
    let grace = hello["stop_grace_period"]
        .as_str()
        .and_then(timespan)
        .expect("stop_grace_period set: compose's default (10 s) is below the drain deadline");
    assert!(
        grace >= drain + MARGIN,
        "stop_grace_period {grace:?} must exceed the drain deadline ({drain:?}) by {MARGIN:?}"
    );
}

/// The figures of docs/kubernetes.md's arithmetic, the line below the one that names them
/// (`terminationGracePeriodSeconds  >=  preStop sleep  +  ...`): the left side, the relation,
/// and the terms of the right side.
fn guide_arithmetic(guide: &str) -> (u64, String, Vec<u64>) {
    let mut lines = guide.lines();
    lines
        .find(|l| l.starts_with("terminationGracePeriodSeconds "))
        .expect("the guide's arithmetic");
    let figures = lines.next().expect("the figures below the names");
    let mut tokens = figures.split_whitespace();
    let number = |t: &str| -> u64 {
        t.trim_matches(|c| c == '(' || c == ')')
            .parse()
            .unwrap_or_else(|e| panic!("{t:?} in {figures:?}: {e}"))
    };
    let left = number(tokens.next().expect("the left side"));
    let relation = tokens.next().expect("a relation").to_owned();
    let terms = tokens.filter(|t| *t != "+").map(number).collect();
    (left, relation, terms)
}

/// The documents of a multi-document YAML file.
fn yaml_documents(text: &str) -> Vec<yaml_serde::Value> {
    text.split("\n---\n")
        .map(|doc| yaml_serde::from_str(doc).expect("the manifest parses"))
        .collect()
}

#[test]
fn kubernetes_grace_period_covers_the_prestop_sleep_and_the_drain() {
    let text = std::fs::read_to_string(docs("kubernetes/deployment.yaml")).unwrap();
    let manifests = yaml_documents(&text);
    let deployment = manifests
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"].as_u64(),
        Some(0),
        "the Deployment rolls the fleet without taking a pod away first"
    );
    let pod = &deployment["spec"]["template"]["spec"];
    let containers = pod["containers"].as_sequence().expect("containers");
    assert_eq!(containers.len(), 1, "one regiment per pod");
    let c = &containers[0];
    assert!(
        c["command"].is_null() && c["args"].is_null(),
        "the image's ENTRYPOINT runs as is, no shell wrapper"
    );
    let env = |name: &str| {
        c["env"]
            .as_sequence()
            .expect("env")
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .map(str::to_owned)
    };

    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds set (the default, 30 s, is the drain alone)");
    let pre_stop = &c["lifecycle"]["preStop"];
    let sleep = pre_stop["sleep"]["seconds"].as_u64().unwrap_or_else(|| {
        let argv = pre_stop["exec"]["command"]
            .as_sequence()
            .expect("a preStop sleep");
        assert_eq!(argv[0], "sleep", "a preStop sleep");
        argv[1]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("sleep N")
    });
    let drain = drain_timeout(env("REGIMENT_DRAIN_TIMEOUT"));
    let needed = Duration::from_secs(sleep) + drain + MARGIN;
    assert!(
        Duration::from_secs(grace) >= needed,
        "terminationGracePeriodSeconds {grace} must exceed the preStop sleep ({sleep} s) plus \
         the drain deadline ({drain:?}) by {MARGIN:?}: the grace period counts from before the \
         preStop hook"
    );
    // The guide's arithmetic holds as written, with the manifest's figures.
    let guide = std::fs::read_to_string(docs("kubernetes.md")).unwrap();
    let (left, relation, terms) = guide_arithmetic(&guide);
    let right: u64 = terms.iter().sum();
    let holds = match relation.as_str() {
        "=" => left == right,
        ">" => left > right,
        ">=" | "≥" => left >= right,
        other => panic!("the guide's arithmetic relates by {other:?}"),
    };
    assert!(
        holds,
        "docs/kubernetes.md: {left} {relation} {terms:?} is false"
    );
    let margin = *terms.last().expect("a margin");
    assert_eq!(
        (left, terms[0], terms[1]),
        (grace, sleep, drain.as_secs()),
        "docs/kubernetes.md's figures are the manifest's: grace period, preStop sleep, drain"
    );
    assert!(
        Duration::from_secs(margin) >= MARGIN,
        "the guide's margin, {margin} s"
    );

    // The memory budget: a share of the container's limit, which it must have (else the share
    // is of the node's memory), with the figures the guide gives.
    let budget = env("REGIMENT_MEMORY_BUDGET").expect("REGIMENT_MEMORY_BUDGET in env");
    let percent: u8 = budget
        .strip_suffix('%')
        .and_then(|p| p.parse().ok())
        .filter(|p| (1..=100).contains(p))
        .unwrap_or_else(|| panic!("REGIMENT_MEMORY_BUDGET={budget}: a share of the limit, 80%"));
    let limit = c["resources"]["limits"]["memory"]
        .as_str()
        .expect("resources.limits.memory: the limit a share of it is a budget of");
    let gib = limit
        .strip_suffix("Gi")
        .unwrap_or_else(|| panic!("limits.memory {limit}: in Gi, as the guide reads it"));
    let said = format!("The memory budget is {percent} % of the {gib} GiB limit");
    assert!(
        guide.replace('\n', " ").contains(&said),
        "docs/kubernetes.md says: {said:?}"
    );

    // Probes on the admin listener, whose port is the container's.
    let port_named = |name: &yaml_serde::Value| -> u64 {
        if let Some(n) = name.as_u64() {
            return n;
        }
        c["ports"]
            .as_sequence()
            .expect("ports")
            .iter()
            .find(|p| &p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("no container port named {name:?}"))
    };
    let port_of = |var: &str| -> u64 {
        let addr: SocketAddr = env(var)
            .unwrap_or_else(|| panic!("{var} in env"))
            .parse()
            .unwrap_or_else(|e| panic!("{var}: {e}"));
        assert!(
            addr.ip().is_unspecified(),
            "{var} listens on every address, for the kubelet and the Service"
        );
        addr.port().into()
    };
    let admin = port_of("REGIMENT_ADMIN_BIND");
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        assert_eq!(port_named(&get["port"]), admin, "{probe} on the admin port");
    }
    let http = port_of("REGIMENT_BIND");
    let service = manifests
        .iter()
        .find(|d| d["kind"] == "Service")
        .expect("a Service");
    assert_eq!(
        port_named(&service["spec"]["ports"][0]["targetPort"]),
        http,
        "the Service sends traffic to REGIMENT_BIND's port"
    );
}

/// nginx directives as (enclosing block, name, arguments), comments left out.
fn nginx_directives(text: &str) -> Vec<(String, String, Vec<String>)> {
    let mut blocks: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap().trim();
        if let Some(head) = line.strip_suffix('{') {
            blocks.push(head.trim().to_owned());
        } else if line == "}" {
            blocks.pop();
        } else if let Some(directive) = line.strip_suffix(';') {
            let words = tests::unit_file::words(directive);
            out.push((blocks.join(" / "), words[0].clone(), words[1..].to_vec()));
        }
    }
    out
}

#[test]
fn nginx_closes_idle_connections_first_and_waits_no_longer_than_the_drain() {
    let text = std::fs::read_to_string(docs("nginx/hello.conf")).unwrap();
    let directives = nginx_directives(&text);
    let one = |block: &str, name: &str| -> Vec<String> {
        directives
            .iter()
            .find(|(b, n, _)| b.starts_with(block) && n == name)
            .map(|(_, _, args)| args.clone())
            .unwrap_or_else(|| panic!("{name} in {block}"))
    };
    let socket = UnitFile::read(&docs("systemd/hello.socket"));
    assert_eq!(
        one("upstream", "server")[0],
        socket.require("Socket", "ListenStream"),
        "nginx proxies to hello.socket's address"
    );
    // Panics unless nginx keeps idle connections to regiment at all.
    one("upstream", "keepalive");
    let idle = timespan(&one("upstream", "keepalive_timeout")[0]).expect("a time");
    assert!(
        idle < DEFAULT_HEADER_READ_TIMEOUT,
        "keepalive_timeout {idle:?} below regiment's header read timeout \
         ({DEFAULT_HEADER_READ_TIMEOUT:?}), after which regiment closes an idle connection"
    );
    assert_eq!(one("server", "proxy_http_version"), ["1.1"]);
    assert!(
        directives
            .iter()
            .any(|(_, n, a)| n == "proxy_set_header" && a[0] == "Connection" && a[1].is_empty()),
        "proxy_set_header Connection \"\": upstream keep-alive"
    );
    let service = UnitFile::read(&docs("systemd/hello.service"));
    let drain = drain_timeout(service.env_var("REGIMENT_DRAIN_TIMEOUT"));
    let read = timespan(&one("server", "proxy_read_timeout")[0]).expect("a time");
    assert!(
        read <= drain,
        "proxy_read_timeout {read:?} at most the drain deadline ({drain:?})"
    );
}

#[test]
fn the_guides_show_the_files_as_shipped() {
    let guides: [(&str, &[&str]); 4] = [
        (
            "systemd.md",
            &[
                "systemd/hello.socket",
                "systemd/hello.service",
                "systemd/hello.service.d/before-253.conf",
            ],
        ),
        (
            "containers.md",
            &[
                "containers/Dockerfile",
                "containers/compose.yaml",
                "../.dockerignore",
            ],
        ),
        ("kubernetes.md", &["kubernetes/deployment.yaml"]),
        ("load-balancers.md", &["nginx/hello.conf"]),
    ];
    for (guide, files) in guides {
        let text = std::fs::read_to_string(docs(guide)).unwrap();
        for file in files {
            let shipped = std::fs::read_to_string(docs(file)).unwrap();
            assert!(
                text.contains(shipped.trim_end()),
                "docs/{guide} shows docs/{file} as it is shipped: copy the file into the guide"
            );
        }
    }
}
