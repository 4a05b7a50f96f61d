//! Workers that run as another user than their master (`REGIMENT_WORKER_USER`), and workers
//! that get only the configured environment (`REGIMENT_WORKER_ENV=only-configured`). Real
//! masters and workers; each test kills what it started by pid (see `tests::cluster`).
//!
//! The tests of the switch to `nobody` need a master that runs as root (CI does): run as
//! another user, they print why they cannot run and return. The others run as anyone.

mod http_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http_common::{pid_via_http, wait_until};
use nix::unistd::User;
use regiment_core::{Builder, EnvOverrides, Error};
use tests::cluster::{CEILING, Cluster, ask, whoami};
use tests::deploy::Deploy;

const HELLO: &str = env!("CARGO_BIN_EXE_hello_under_test");
const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");
const PATIENT: &str = env!("CARGO_BIN_EXE_patient_under_test");

/// Whether this test can switch users; if not, says so.
fn runs_as_root(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("{test}: skipped, the master must run as root to switch its workers' user");
    }
    root
}

fn nobody() -> User {
    User::from_name("nobody")
        .expect("the user database answers")
        .expect("a user `nobody`")
}

/// A copy of `binary` that `nobody` may read and execute, wherever the build directory is.
fn world_readable_copy(name: &str, binary: &str) -> Deploy {
    let deploy = Deploy::new(name, binary);
    let dir = deploy.app().parent().expect("a directory").to_owned();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(deploy.app(), std::fs::Permissions::from_mode(0o755)).unwrap();
    deploy
}

/// `Uid:`, `Gid:` or `Groups:` of `/proc/PID/status`, as numbers.
fn ids(pid: u32, field: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("a live process");
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in the status of {pid}"));
    line.split_whitespace()
        .map(|n| n.parse().expect("an id"))
        .collect()
}

/// `GET /pid` over a Unix-domain socket: the pid of the worker that answered.
fn pid_via_unix_http(path: &Path) -> u32 {
    let mut s = std::os::unix::net::UnixStream::connect(path).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /pid HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (_, body) = answer.split_once("\r\n\r\n").expect("a body");
    body.trim().parse().expect("a pid")
}

#[test]
fn workers_run_as_nobody_while_the_root_master_binds() {
    if !runs_as_root("workers_run_as_nobody_while_the_root_master_binds") {
        return;
    }
    let nobody = nobody();
    let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
    let deploy = world_readable_copy("privileges-hello", HELLO);
    // A socket file in a directory only root may enter: the workers could not have bound it,
    // nor connect to it, yet they serve it through the descriptor they inherit.
    let private = deploy.app().with_file_name("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let sock = private.join("app.sock");
    let bind = format!("127.0.0.1:0,unix:{}", sock.display());
    let c = Cluster::start(
        &deploy.app(),
        &[
            ("HELLO_WORKERS", "2"),
            ("HELLO_PRINT_EVENTS", "true"),
            ("RUST_LOG", "info"),
            ("REGIMENT_BIND", &bind),
            ("REGIMENT_WORKER_USER", "nobody"),
        ],
    );
    let workers: Vec<u32> = c.wait_serving(2).into_values().collect();

    assert_eq!(ids(c.pid(), "Uid"), [0; 4], "the master stays root");
    for &pid in &workers {
        // Real, effective, saved and filesystem ids: none left to regain root with.
        assert_eq!(ids(pid, "Uid"), [uid; 4], "worker {pid}");
        assert_eq!(ids(pid, "Gid"), [gid; 4], "worker {pid}");
        assert_eq!(ids(pid, "Groups"), [gid], "worker {pid}: no other group");
    }
    let served = pid_via_http(c.addr());
    assert!(workers.contains(&served), "{served} not in {workers:?}");
    let served = pid_via_unix_http(&sock);
    assert!(workers.contains(&served), "{served} not in {workers:?}");
    let said = format!("workers run as user nobody (uid {uid}), group ");
    wait_until("the log line naming the workers' user", CEILING, || {
        c.stderr().contains(&said)
    });
}

#[test]
fn workers_of_another_user_get_its_home_and_name_and_not_the_masters() {
    if !runs_as_root("workers_of_another_user_get_its_home_and_name_and_not_the_masters") {
        return;
    }
    let nobody = nobody();
    let deploy = world_readable_copy("privileges-login", FIXTURE);
    let masters_env = [
        ("REGIMENT_WORKERS", "1"),
        ("REGIMENT_WORKER_USER", "nobody"),
        ("HOME", "/root"),
        ("USER", "root"),
        ("LOGNAME", "root"),
    ];
    // Inherited or not, the login variables are the workers' user's.
    for worker_env in ["inherit", "only-configured"] {
        let mut env = masters_env.to_vec();
        env.push(("REGIMENT_WORKER_ENV", worker_env));
        let c = Cluster::start(&deploy.app(), &env);
        c.wait_serving(1);
        let addr = c.addr();
        let env = |name: &str| ask(addr, &format!("env {name}")).unwrap();
        assert_eq!(PathBuf::from(env("HOME")), nobody.dir, "{worker_env}");
        assert_eq!(env("USER"), "nobody", "{worker_env}");
        assert_eq!(env("LOGNAME"), "nobody", "{worker_env}");
    }
}

#[test]
fn an_unknown_worker_user_is_refused_at_build_naming_the_option_and_the_value() {
    let err = Builder::new()
        .worker_user("no-such-user-regiment")
        .env_overrides(EnvOverrides::Ignore)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "worker_user",
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("\"no-such-user-regiment\"") && text.contains("numeric uid"),
        "{text}"
    );
    let err = Builder::new()
        .worker_group("no-such-group-regiment")
        .env_overrides(EnvOverrides::Ignore)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`worker_group`") && err.contains("\"no-such-group-regiment\""),
        "{err}"
    );
}

/// Starts the fixture as a master with `env` and expects it to refuse to start: its exit
/// status and what it wrote on stderr.
fn refused_start(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = Command::new(FIXTURE)
        .env("REGIMENT_BIND", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the fixture");
    let deadline = Instant::now() + CEILING;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the master started with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

#[test]
fn bad_worker_variables_stop_the_start_naming_the_variable_and_what_it_takes() {
    let (code, stderr) = refused_start(&[("REGIMENT_WORKER_USER", "no-such-user-regiment")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("`REGIMENT_WORKER_USER`") && stderr.contains("\"no-such-user-regiment\""),
        "{stderr}"
    );
    let (code, stderr) = refused_start(&[("REGIMENT_WORKER_ENV", "clean")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("`REGIMENT_WORKER_ENV`") && stderr.contains("inherit, only-configured"),
        "{stderr}"
    );
}

#[test]
fn only_configured_variables_and_regiments_own_reach_workers_when_asked() {
    let masters_env = [
        ("REGIMENT_WORKERS", "1"),
        ("FIXTURE_MASTER_ONLY", "from-master"),
        // The fixture's builder configures this one: the configured value wins.
        ("FIXTURE_FROM_BUILDER", "from-master"),
    ];
    // By default, workers inherit the master's environment.
    let c = Cluster::start(Path::new(FIXTURE), &masters_env);
    c.wait_serving(1);
    let addr = c.addr();
    let env = |name: &str| ask(addr, &format!("env {name}")).unwrap();
    assert_eq!(env("FIXTURE_MASTER_ONLY"), "from-master");
    assert_eq!(env("FIXTURE_FROM_BUILDER"), "builder");
    assert!(!env("PATH").is_empty());
    drop(c);

    let mut only_configured = masters_env.to_vec();
    only_configured.extend([
        ("REGIMENT_WORKER_ENV", "only-configured"),
        // A variable workers read (regiment-axum's idle grace), and one they do not.
        ("REGIMENT_IDLE_GRACE", "2s"),
        ("REGIMENT_DEPLOY_TOKEN", "secret"),
    ]);
    let c = Cluster::start(Path::new(FIXTURE), &only_configured);
    c.wait_serving(1);
    let addr = c.addr();
    let env = |name: &str| ask(addr, &format!("env {name}")).unwrap();
    assert_eq!(env("FIXTURE_MASTER_ONLY"), "");
    assert_eq!(env("PATH"), "");
    assert_eq!(
        env("RUST_LOG"),
        "",
        "set in the master's environment by the harness"
    );
    // What the builder and the hook configure, and regiment's own variables.
    assert_eq!(env("FIXTURE_FROM_BUILDER"), "builder");
    assert_eq!(env("FIXTURE_FROM_HOOK"), "slot0-gen1");
    assert_eq!(env("REGIMENT_WORKER_ID"), "0");
    assert_eq!(env("REGIMENT_GENERATION"), "1");
    assert_eq!(env("LISTEN_FDS"), "1");
    assert_eq!(env("LISTEN_FDNAMES"), "regiment0");
    assert_eq!(env("LISTEN_PID"), whoami(addr).2.to_string());
    // Of the master's REGIMENT_* variables, those workers read, and no other.
    assert_eq!(env("REGIMENT_IDLE_GRACE"), "2s");
    assert_eq!(env("REGIMENT_DEPLOY_TOKEN"), "", "a secret of the master's");
    assert_eq!(env("REGIMENT_WORKERS"), "", "the master's option");
}

/// Workers that start from nothing (`only-configured`) still take the HTTP options given in
/// their master's environment: a client that sends half a header and stalls is cut off after
/// `REGIMENT_HEADER_READ_TIMEOUT` (1 s), not after the hour the program's code gives it.
#[test]
fn the_variables_workers_read_reach_workers_that_start_from_nothing() {
    let c = Cluster::start(
        Path::new(PATIENT),
        &[
            ("REGIMENT_WORKERS", "1"),
            ("REGIMENT_WORKER_ENV", "only-configured"),
            ("REGIMENT_HEADER_READ_TIMEOUT", "1s"),
        ],
    );
    c.wait_serving(1);
    let mut stream = TcpStream::connect(c.addr()).expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: patient\r\n")
        .expect("half a header");
    // Bounded by the ceiling, far below the hour: a read that times out means the worker
    // still waits for the rest of the header.
    stream.set_read_timeout(Some(CEILING)).unwrap();
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!(
            "the stalled connection is still open after {CEILING:?} ({e}): the worker did not \
             get REGIMENT_HEADER_READ_TIMEOUT\n{}",
            c.stderr()
        ),
    }
    // Nothing was served for the half request.
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains("patient"), "{answer}");
}
