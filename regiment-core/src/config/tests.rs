//! The checks of the options given to the [`Builder`] (those of environment variables are in
//! `overrides_tests.rs`).

use std::time::Duration;

use nix::sys::signal::Signal;

use super::restart_signals::{parse_restart_signals, parse_signal};
use super::validated::parse_admin_bind;
use super::*;
use crate::limits::MAX_WORKERS;
use crate::listen::ListenAddr;

fn err(b: Builder) -> String {
    match b.env_overrides(EnvOverrides::Ignore).into_config() {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn invalid_options_name_the_option_and_what_it_accepts() {
    let e = err(Builder::new().workers(0));
    assert!(
        e.contains("`workers`") && e.contains("from 1 to 1024"),
        "{e}"
    );
    // As many as `regiment scale` and SIGTTIN accept, and no more.
    let e = err(Builder::new().workers(MAX_WORKERS + 1));
    assert!(
        e.contains("`workers`") && e.contains("\"1025\"") && e.contains("from 1 to 1024"),
        "{e}"
    );
    let e = err(Builder::new().workers_with(|| 5000));
    assert!(
        e.contains("`workers`") && e.contains("from 1 to 1024"),
        "{e}"
    );
    let e = err(Builder::new().workers(1).drain_timeout(Duration::ZERO));
    assert!(
        e.contains("`drain_timeout`") && e.contains("above zero"),
        "{e}"
    );
    let e = err(Builder::new().workers(1).start_timeout(Duration::ZERO));
    assert!(e.contains("`start_timeout`"), "{e}");
    let e = err(Builder::new()
        .workers(1)
        .start_timeout(Duration::from_secs(400 * 24 * 3600)));
    assert!(
        e.contains("`start_timeout`") && e.contains("at most 365 days"),
        "{e}"
    );
    let e = err(Builder::new().workers(1).backoff(
        Duration::from_millis(100),
        Duration::MAX,
        Duration::from_secs(60),
    ));
    assert!(e.contains("`backoff`"), "{e}");
    let e = err(Builder::new().workers(1).max_surge(0));
    assert!(e.contains("`max_surge`"), "{e}");
    let e = err(Builder::new().workers(1).bind("nowhere at all"));
    assert!(
        e.contains("`bind`") && e.contains("nowhere at all") && e.contains("HOST:PORT"),
        "{e}"
    );
}

#[test]
fn restart_signals_that_cannot_roll_the_workers_are_refused() {
    for refused in [
        // Cannot be handled.
        Signal::SIGKILL,
        Signal::SIGSTOP,
        // Faults, and what the kernel, a terminal or a timer sends on its own.
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGABRT,
        Signal::SIGCHLD,
        Signal::SIGPIPE,
        Signal::SIGALRM,
        Signal::SIGWINCH,
        Signal::SIGURG,
        Signal::SIGPROF,
        Signal::SIGVTALRM,
        Signal::SIGXCPU,
        Signal::SIGCONT,
        Signal::SIGTSTP,
        Signal::SIGQUIT,
        // Already stop, upgrade or scale the master.
        Signal::SIGTERM,
        Signal::SIGUSR2,
        Signal::SIGINT,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
    ] {
        let e = err(Builder::new()
            .workers(1)
            .restart_signals([Signal::SIGHUP, refused]));
        // The value named is the signal refused, not the whole list.
        assert!(
            e.contains("`restart_signals`")
                && e.contains(&format!("{:?}", refused.as_str()))
                && e.contains("SIGHUP or SIGUSR1"),
            "{e}"
        );
    }
    let e = err(Builder::new().workers(1).restart_signals([]));
    assert!(
        e.contains("`restart_signals`") && e.contains("at least one of SIGHUP"),
        "{e}"
    );
    for fine in [Signal::SIGHUP, Signal::SIGUSR1] {
        let config = Builder::new()
            .workers(1)
            .restart_signals([fine])
            .env_overrides(EnvOverrides::Ignore)
            .into_config();
        assert!(config.is_ok(), "{fine} refused");
    }
}

#[test]
fn the_restart_signal_variable_is_checked_under_its_own_name() {
    let e = parse_restart_signals("REGIMENT_RESTART_SIGNAL", "SIGHUP, kill")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`REGIMENT_RESTART_SIGNAL`")
            && e.contains("\"SIGHUP, kill\"")
            && e.contains("SIGHUP or SIGUSR1")
            && e.contains("such as SIGHUP,SIGUSR1"),
        "{e}"
    );
    for refused in [
        "SIGTERM", "usr2", "int", "SIGCHLD", "SIGNOPE", "", "SIGPIPE", "alrm", "SIGWINCH",
    ] {
        assert!(
            parse_restart_signals("REGIMENT_RESTART_SIGNAL", refused).is_err(),
            "{refused:?} accepted"
        );
    }
    assert_eq!(
        parse_restart_signals("REGIMENT_RESTART_SIGNAL", "hup, SIGUSR1").unwrap(),
        [Signal::SIGHUP, Signal::SIGUSR1]
    );
}

#[test]
fn the_admin_address_is_checked_under_the_name_that_gave_it() {
    let e = err(Builder::new().workers(1).admin_bind("nowhere"));
    assert!(
        e.contains("`admin_bind`") && e.contains("\"nowhere\"") && e.contains("HOST:PORT"),
        "{e}"
    );
    let e = parse_admin_bind("REGIMENT_ADMIN_BIND", "localhost")
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("`REGIMENT_ADMIN_BIND`"), "{e}");
    let ok = parse_admin_bind("REGIMENT_ADMIN_BIND", "unix:/run/a.sock").unwrap();
    assert_eq!(ok.addr, ListenAddr::Unix("/run/a.sock".into()));
}

#[test]
fn a_backoff_that_never_resets_is_refused() {
    let e = err(Builder::new().workers(1).backoff(
        Duration::from_millis(100),
        Duration::from_secs(30),
        Duration::ZERO,
    ));
    assert!(e.contains("`backoff`") && e.contains("above zero"), "{e}");
}

#[test]
fn the_worker_count_can_be_computed_at_start() {
    let c = Builder::new()
        .workers_with(|| 3)
        .env_overrides(EnvOverrides::Ignore)
        .into_config()
        .unwrap();
    assert_eq!(c.policy.workers, 3);
    // The CPUs this process may use: affinity and cgroup quota (container/cpus.rs).
    let cpus = crate::container::available_cpus();
    let c = Builder::new()
        .env_overrides(EnvOverrides::Ignore)
        .into_config()
        .unwrap();
    assert_eq!(c.policy.workers, cpus, "one worker per CPU by default");
}

#[test]
fn parses_signal_names() {
    assert_eq!(parse_signal("hup"), Some(Signal::SIGHUP));
    assert_eq!(parse_signal("SIGUSR2"), Some(Signal::SIGUSR2));
    assert_eq!(parse_signal("SIGNOPE"), None);
}

/// A control socket's path longer than a socket address holds could be bound (short, then
/// linked into place), but no client could connect to it: refused at build, under the name
/// the user gave it, with the limit.
#[test]
fn a_control_socket_path_longer_than_a_socket_address_is_refused() {
    let long = format!("/tmp/{}/control.sock", "d".repeat(100));
    let e = err(Builder::new().workers(1).control_socket(&long));
    assert!(
        e.contains("`control_socket`") && e.contains(&long) && e.contains("at most 107 bytes"),
        "{e}"
    );
    let from_env = Builder::new()
        .workers(1)
        .into_config_from(&|name| (name == "REGIMENT_CONTROL_SOCKET").then(|| long.clone()));
    let e = from_env.err().expect("refused").to_string();
    assert!(
        e.contains("`REGIMENT_CONTROL_SOCKET`") && e.contains("sun_path"),
        "{e}"
    );
    let longest = format!("/tmp/{}", "s".repeat(107 - "/tmp/".len()));
    assert!(
        Builder::new()
            .workers(1)
            .control_socket(longest)
            .env_overrides(EnvOverrides::Ignore)
            .into_config()
            .is_ok()
    );
}

#[test]
fn a_memory_budget_is_resolved_at_build_and_refused_under_its_option() {
    let c = Builder::new()
        .workers(1)
        .memory_budget(MemoryBudget::mb(1500))
        .env_overrides(EnvOverrides::Ignore)
        .into_config()
        .unwrap();
    assert_eq!(c.policy.memory_budget, Some(1500 << 20));
    let c = Builder::new()
        .workers(1)
        .env_overrides(EnvOverrides::Ignore)
        .into_config()
        .unwrap();
    assert_eq!(c.policy.memory_budget, None);
    // The limit is read with or without a budget, for the status.
    assert_eq!(
        c.memory.limit.map(|l| l.bytes),
        Some(crate::container::memory_limit().bytes)
    );
    let e = err(Builder::new()
        .workers(1)
        .memory_budget(MemoryBudget::percent_of_limit(101)));
    assert!(
        e.contains("`memory_budget`") && e.contains("\"101%\"") && e.contains("from 1 to 100"),
        "{e}"
    );
    let e = err(Builder::new().workers(1).memory_budget(MemoryBudget::mb(0)));
    assert!(
        e.contains("`memory_budget`") && e.contains("at least 1 MB"),
        "{e}"
    );
}

/// The driver shows what the build resolved from the moment the master is built: the budget,
/// and the limit (this machine's) it is a share of.
#[test]
fn the_status_before_run_shows_the_budget_and_the_limit() {
    let supervisor = Builder::new()
        .workers(1)
        .memory_budget(MemoryBudget::percent_of_limit(80))
        .env_overrides(EnvOverrides::Ignore)
        .build()
        .expect("builds");
    let memory = supervisor.handle().status().memory;
    let limit = crate::container::memory_limit();
    assert_eq!(
        memory.limit,
        Some(crate::events::MemoryLimitStatus {
            bytes: limit.bytes,
            source: limit.source.to_string(),
        })
    );
    assert_eq!(
        memory.budget,
        Some(crate::events::MemoryBudgetStatus {
            bytes: u64::try_from(u128::from(limit.bytes) * 80 / 100).unwrap(),
            source: crate::events::BudgetSource::PercentOfLimit { percent: 80 },
        })
    );
}
