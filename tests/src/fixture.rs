//! A minimal regiment application used by the core end-to-end tests: the same program is master
//! and worker, as in any regiment application.
//!
//! - Master: a [`regiment_core::Builder`] configured from the `REGIMENT_*` environment (plus
//!   `FIXTURE_ROLLOUT_FAILURES`), printing every
//!   lifecycle event on stdout as `EVENT {json}` with the master's clock in `t_ms`, and a
//!   `status-snapshot` event on SIGWINCH. It gives workers `FIXTURE_FROM_BUILDER=builder`, its
//!   own `FIXTURE_TAG` and, from a before-spawn hook, `FIXTURE_FROM_HOOK=slotS-genG`. With
//!   `FIXTURE_SIGNALS_BEFORE_RUN=SIGHUP,SIGTERM`, it sends itself these signals between
//!   `build()` and `run()`, each delivered before it goes on.
//! - Worker: accepts on the inherited listener and answers one line per connection:
//!   `whoami` → `VARIANT SLOT PID GENERATION`; `sleep MS` → `started PID` at once, `done PID` after MS milliseconds.
//!   `env NAME` → the value of NAME in the worker's environment; `fds` → what its open
//!   descriptors point to; `args` → its arguments
//!   (the master's, or `FIXTURE_WORKER_ARGS` split on spaces, given to `Builder::args`); `block` → blocks the
//!   worker's runtime thread (its heartbeats stop; `FIXTURE_HEARTBEAT_TIMEOUT_MS` sets the
//!   master's heartbeat timeout, with heartbeats every 100 ms); `orphan` → `orphan PID PARENT`:
//!   a grandchild PID whose parent exited, so that it was re-parented to PARENT, which it tells
//!   before it exits at once (a zombie of PARENT until PARENT reaps it). `alloc MB` →
//!   `allocating PID` at once, then it allocates MB MiB and writes every byte of it (in a
//!   memory cgroup limited below that, the kernel's OOM killer kills it there), `allocated PID`
//!   if it lives, and frees it.
//!   SIGUSR1 makes it ask for its replacement (twice, as raw frames, to test the master's
//!   idempotence); SIGUSR2 makes it write garbage on its IPC channel, then ask for its
//!   replacement. `FIXTURE_IGNORE_DRAIN=1` makes it ignore drains; `FIXTURE_READY_DELAY_MS`
//!   delays its readiness; `FIXTURE_MANUAL_READY_MS` calls `worker::ready()` that long after
//!   `worker::listening()` (for readiness `manual`). `FIXTURE_READY_TWICE=1` sends two more
//!   raw `ready` frames after `listening()`; `FIXTURE_NO_HEARTBEAT=1` sends no heartbeats.
//!
//! `FIXTURE_RUN_IN_TASK=1` runs the supervisor in a task of its own: if that task panics, the
//! master prints `EVENT {"event":"supervisor-panicked"}` and lives on, its runtime running, as
//! a program that supervises among other duties would.
//!
//! Both sides log as many programs do, through tracing-subscriber's `fmt` on `std::io::stderr`:
//! a write that fails there (a closed pipe) panics whatever logged. The tests of a closed
//! stderr (tests/logging.rs) rely on it; `hello` logs through `regiment_core::LogWriter`.
//!
//! Variants (one binary each): `v1`, `v2` (normal), `never_ready`, `exit_early`.

// Raw descriptors and libc calls of a test harness, each under a SAFETY comment.
#![allow(unsafe_code)]

use std::os::fd::{BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use regiment_core::plumbing::{CriterionKind, WorkerMessage, encode};
use regiment_core::{Role, worker};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::signal::unix::{SignalKind, signal};

/// Runs the fixture as master or worker.
pub fn main(variant: &'static str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // Workers run a single-threaded runtime: `block` then blocks all of it, for certain.
    let rt = match regiment_core::role() {
        Role::Master => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        Role::Worker => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
    .expect("runtime");
    match regiment_core::role() {
        Role::Master => rt.block_on(master()),
        Role::Worker => rt.block_on(run_worker(variant)),
    }
}

fn ms(v: &str) -> Duration {
    Duration::from_millis(
        v.trim()
            .trim_end_matches("ms")
            .parse()
            .expect("milliseconds"),
    )
}

async fn master() {
    let mut b = regiment_core::Builder::new()
        .process_name("fixture")
        .env("FIXTURE_FROM_BUILDER", "builder")
        .before_spawn(|plan| {
            let value = format!("slot{}-gen{}", plan.slot(), plan.generation());
            plan.env("FIXTURE_FROM_HOOK", value);
            Ok(())
        });
    // The harness finds its workers by this tag (`Cluster::is_ours`), in whatever
    // environment they start from (`REGIMENT_WORKER_ENV=only-configured`).
    if let Ok(tag) = std::env::var("FIXTURE_TAG") {
        b = b.env("FIXTURE_TAG", tag);
    }
    if let Ok(v) = std::env::var("FIXTURE_HEARTBEAT_TIMEOUT_MS") {
        b = b
            .heartbeat_interval(Duration::from_millis(100))
            .heartbeat_timeout(ms(&v));
    }
    if let Ok(v) = std::env::var("FIXTURE_WORKER_ARGS") {
        b = b.args(v.split(' '));
    }
    if let Ok(v) = std::env::var("FIXTURE_ROLLOUT_FAILURES") {
        b = b.rollout_failure_limit(v.parse().expect("number"));
    }
    let supervisor = match b.build() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let handle = supervisor.handle();
    let mut events = handle.events();
    let start = Instant::now();
    // Signals the master sends itself between `build` and `run`, as an operator's could arrive
    // while a program sets up the rest of its `main`.
    if let Ok(names) = std::env::var("FIXTURE_SIGNALS_BEFORE_RUN") {
        for name in names.split(',') {
            let sig: nix::sys::signal::Signal = name.trim().parse().expect("a signal name");
            nix::sys::signal::kill(nix::unistd::Pid::this(), sig).expect("signal itself");
            wait_delivered(sig);
        }
    }
    // SIGWINCH prints a status snapshot (the master itself does not use SIGWINCH).
    let mut winch = signal(SignalKind::window_change()).expect("SIGWINCH handler");
    tokio::spawn(async move {
        while winch.recv().await.is_some() {
            let status = serde_json::to_value(handle.status()).expect("status serializes");
            println!(
                "EVENT {}",
                serde_json::json!({"event": "status-snapshot", "status": status})
            );
        }
    });
    let printer = tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            let last = matches!(e, regiment_core::Event::Stopped);
            let mut v = serde_json::to_value(&e).expect("events serialize");
            v["t_ms"] = (start.elapsed().as_millis() as u64).into();
            println!("EVENT {v}");
            if last {
                break;
            }
        }
    });
    let result = if std::env::var("FIXTURE_RUN_IN_TASK").is_ok_and(|v| v == "1") {
        match tokio::spawn(supervisor.run()).await {
            Ok(result) => result,
            Err(panicked) => {
                println!(
                    "EVENT {}",
                    serde_json::json!({"event": "supervisor-panicked", "why": panicked.to_string()})
                );
                std::future::pending().await
            }
        }
    } else {
        supervisor.run().await
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    // The printer has the last events (`stopped`) still to print: wait for it, not for a guess.
    let _ = tokio::time::timeout(Duration::from_secs(30), printer).await;
}

/// Waits until `sig`, sent to this process, is no longer pending (`ShdPnd` of
/// `/proc/self/status`): delivered to a thread, so that `run` starts after it, not before.
fn wait_delivered(sig: nix::sys::signal::Signal) {
    let bit = 1u64 << (sig as u32 - 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        let pending = status
            .lines()
            .find_map(|l| l.strip_prefix("ShdPnd:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .expect("a ShdPnd mask");
        if pending & bit == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{sig} still pending");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn ipc_fd() -> RawFd {
    std::env::var(regiment_core::worker_vars::IPC_FD)
        .expect("worker has an IPC fd")
        .parse()
        .expect("fd")
}

/// Writes bytes straight to the IPC socket (the fd is non-blocking: retry on EAGAIN).
fn write_raw(mut bytes: &[u8]) {
    // SAFETY: the fd is the worker's IPC socket, open for the life of the process.
    let fd = unsafe { BorrowedFd::borrow_raw(ipc_fd()) };
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EAGAIN) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("write to IPC fd: {e}"),
        }
    }
}

async fn run_worker(variant: &'static str) {
    if variant == "exit_early" {
        std::process::exit(3);
    }
    // Take the channel now: the handlers below must not run before the worker exists.
    assert!(regiment_core::plumbing::attach_worker());
    let mut usr1 = signal(SignalKind::user_defined1()).expect("SIGUSR1 handler");
    let mut usr2 = signal(SignalKind::user_defined2()).expect("SIGUSR2 handler");
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = usr1.recv() => {
                    let frame = encode(&WorkerMessage::ReplaceMe {
                        criterion: CriterionKind::Unspecified,
                        reason: "asked by the test".into(),
                    });
                    write_raw(&frame);
                    write_raw(&frame);
                }
                _ = usr2.recv() => {
                    let mut garbage = Vec::new();
                    garbage.extend_from_slice(&5u32.to_be_bytes());
                    garbage.extend_from_slice(b"\xff\xfe{{{");
                    let unknown = br#"{"v":1,"type":"launch-missiles"}"#;
                    garbage.extend_from_slice(&(unknown.len() as u32).to_be_bytes());
                    garbage.extend_from_slice(unknown);
                    let future = br#"{"v":99,"type":"ready"}"#;
                    garbage.extend_from_slice(&(future.len() as u32).to_be_bytes());
                    garbage.extend_from_slice(future);
                    let big = 1_000_000usize;
                    garbage.extend_from_slice(&(big as u32).to_be_bytes());
                    garbage.resize(garbage.len() + big, b'x');
                    write_raw(&garbage);
                    worker::request_replacement("after garbage");
                }
            }
        }
    });

    let listeners = regiment_core::listen::take_inherited().expect("inherited listeners");
    if listeners.is_empty() {
        eprintln!("fixture worker: no inherited listener");
        std::process::exit(4);
    }
    if variant == "never_ready" {
        std::future::pending::<()>().await;
    }
    if let Ok(v) = std::env::var("FIXTURE_READY_DELAY_MS") {
        tokio::time::sleep(ms(&v)).await;
    }
    let ignore_drain = std::env::var("FIXTURE_IGNORE_DRAIN").is_ok_and(|v| v == "1");
    let connections = tokio_util::task::TaskTracker::new();
    let mut accept_loops = tokio::task::JoinSet::new();
    for listener in listeners {
        accept_loops.spawn(accept_loop(listener, connections.clone(), variant));
    }
    worker::listening();
    if std::env::var("FIXTURE_READY_TWICE").is_ok_and(|v| v == "1") {
        // As a server with several accept loops might: the master must count one.
        write_raw(&encode(&WorkerMessage::Ready));
        write_raw(&encode(&WorkerMessage::Ready));
    }
    if std::env::var("FIXTURE_NO_HEARTBEAT").is_ok_and(|v| v == "1") {
        // Raw writes on the channel (SIGUSR2's garbage) must not interleave with heartbeats.
    } else {
        regiment_core::plumbing::start_heartbeat();
    }
    if let Ok(v) = std::env::var("FIXTURE_MANUAL_READY_MS") {
        let delay = ms(&v);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            worker::ready();
        });
    }
    if ignore_drain {
        std::future::pending::<()>().await;
    }
    worker::drained().await;
    // Stop accepting at once (dropping the listeners); what is queued is served by the others.
    accept_loops.shutdown().await;
    connections.close();
    connections.wait().await;
    std::process::exit(0);
}

async fn accept_loop(
    listener: regiment_core::listen::Listener,
    connections: tokio_util::task::TaskTracker,
    variant: &'static str,
) {
    use regiment_core::listen::Listener;
    match listener {
        Listener::Tcp(l) => {
            let l = tokio::net::TcpListener::from_std(l).expect("tokio listener");
            while let Ok((stream, _)) = l.accept().await {
                connections.spawn(answer(stream, variant));
            }
        }
        Listener::Unix(l) => {
            let l = tokio::net::UnixListener::from_std(l).expect("tokio listener");
            while let Ok((stream, _)) = l.accept().await {
                connections.spawn(answer(stream, variant));
            }
        }
    }
}

async fn answer<S>(stream: S, variant: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (r, mut w) = tokio::io::split(stream);
    let mut line = String::new();
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(r).read_line(&mut line),
    )
    .await;
    if !matches!(read, Ok(Ok(_))) {
        return;
    }
    let pid = std::process::id();
    let reply = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["block"] => {
            // Blocks the worker's (single-threaded) runtime once this answer is written, as a
            // CPU-bound handler would: heartbeats stop.
            tokio::spawn(async { std::thread::sleep(Duration::from_secs(600)) });
            "blocking\n".to_string()
        }
        ["env", name] => format!("{}\n", std::env::var(name).unwrap_or_default()),
        ["orphan"] => match tokio::task::spawn_blocking(orphan).await {
            Ok(Ok((orphan, parent))) => format!("orphan {orphan} {parent}\n"),
            Ok(Err(e)) => format!("error {e}\n"),
            Err(e) => format!("error {e}\n"),
        },
        ["args"] => format!(
            "{}\n",
            std::env::args().skip(1).collect::<Vec<_>>().join(" ")
        ),
        // What every open descriptor of this worker points to, space-separated.
        ["fds"] => {
            let targets: Vec<String> = std::fs::read_dir("/proc/self/fd")
                .map(|dir| {
                    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                        .map(|t| t.display().to_string())
                        .collect()
                })
                .unwrap_or_default();
            format!("{}\n", targets.join(" "))
        }
        ["alloc", mb] => {
            if w.write_all(format!("allocating {pid}\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            let bytes = mb.parse::<usize>().expect("MiB") << 20;
            // Every page written, so that every page is charged.
            let touched = vec![1u8; bytes];
            std::hint::black_box(&touched);
            format!("allocated {pid}\n")
        }
        ["sleep", n] => {
            // Tells the client its request is in flight on this worker.
            if w.write_all(format!("started {pid}\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(ms(n)).await;
            format!("done {pid}\n")
        }
        _ => format!(
            "{variant} {} {pid} {}\n",
            worker::slot().unwrap_or(usize::MAX),
            worker::generation().unwrap_or(0)
        ),
    };
    let _ = w.write_all(reply.as_bytes()).await;
    let _ = w.shutdown().await;
}

/// Double-forks: a child forks the grandchild, tells its pid and exits; the grandchild, once
/// re-parented (to the nearest subreaper above, else to init), tells its new parent's pid and
/// exits. Returns both pids. Between fork and `_exit` only async-signal-safe calls are made.
fn orphan() -> std::io::Result<(i32, i32)> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let [read_end, write_end] = fds;
    // SAFETY: pipe2 just created both descriptors; nothing else owns them.
    let mut reader = unsafe { std::fs::File::from_raw_fd(read_end) };
    let writer = unsafe { std::os::fd::OwnedFd::from_raw_fd(write_end) };
    // SAFETY: the child and the grandchild only call fork, getpid, getppid, nanosleep, write
    // and _exit, all async-signal-safe.
    let child = unsafe { libc::fork() };
    if child == 0 {
        unsafe {
            let me = libc::getpid();
            let grandchild = libc::fork();
            if grandchild == 0 {
                // Bounded (60 s): its parent exits right after writing.
                let pause = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 1_000_000,
                };
                for _ in 0..60_000 {
                    if libc::getppid() != me {
                        break;
                    }
                    libc::nanosleep(&pause, std::ptr::null_mut());
                }
                let parent = libc::getppid().to_ne_bytes();
                libc::write(write_end, parent.as_ptr().cast(), parent.len());
                libc::_exit(0);
            }
            let pid = grandchild.to_ne_bytes();
            libc::write(write_end, pid.as_ptr().cast(), pid.len());
            libc::_exit(0);
        }
    }
    drop(writer);
    if child < 0 {
        return Err(std::io::Error::last_os_error());
    }
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None)?;
    let mut pids = [0u8; 8];
    reader.read_exact(&mut pids)?;
    let [a, b, c, d, e, f, g, h] = pids;
    Ok((
        i32::from_ne_bytes([a, b, c, d]),
        i32::from_ne_bytes([e, f, g, h]),
    ))
}
