//! The `REGIMENT_*` overrides, given through a test's own environment (the process's is shared
//! by every test thread).

use std::time::Duration;

use super::builder::Builder;
use super::choices::EnvOverrides;
use super::settings::Config;
use crate::error::Result;

/// The config `builder` gives under an environment of `vars` only.
fn with_env(builder: Builder, vars: &[(&str, &str)]) -> Result<Config> {
    let lookup = |name: &str| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    };
    builder.into_config_from(&lookup)
}

fn config(vars: &[(&str, &str)]) -> Config {
    with_env(Builder::new().workers(1), vars).unwrap()
}

fn refusal(vars: &[(&str, &str)]) -> String {
    match with_env(Builder::new().workers(1), vars) {
        Ok(_) => panic!("{vars:?} accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_variable_is_in_the_readme_table() {
    let readme = include_str!("../../../README.md");
    for name in super::overrides::names() {
        assert!(
            readme.contains(&format!("`{name}`")),
            "{name} missing from README"
        );
    }
}

#[test]
fn backoff_variables_set_the_backoff() {
    let c = config(&[
        ("REGIMENT_BACKOFF_INITIAL", "50ms"),
        ("REGIMENT_BACKOFF_MAX", "5s"),
        ("REGIMENT_BACKOFF_RESET", "2m"),
    ]);
    assert_eq!(
        (
            c.policy.backoff.initial,
            c.policy.backoff.max,
            c.policy.backoff.reset_after
        ),
        (
            Duration::from_millis(50),
            Duration::from_secs(5),
            Duration::from_secs(120)
        )
    );
    for name in [
        "REGIMENT_BACKOFF_INITIAL",
        "REGIMENT_BACKOFF_MAX",
        "REGIMENT_BACKOFF_RESET",
    ] {
        for bad in ["0s", "366days", "soon"] {
            let e = refusal(&[(name, bad)]);
            assert!(
                e.contains(&format!("`{name}`")) && e.contains("above zero and at most 365 days"),
                "{name}={bad}: {e}"
            );
        }
    }
}

/// Values good alone that do not go together are refused under the name the user wrote: the
/// variable that set one, with the other as it was set (the builder's option, or a variable).
#[test]
fn options_checked_together_are_refused_under_the_variable_that_set_them() {
    let e = refusal(&[("REGIMENT_BACKOFF_INITIAL", "1h")]);
    assert_eq!(
        e,
        "invalid value \"1h\" for option `REGIMENT_BACKOFF_INITIAL`: expected a first delay no \
         longer than `backoff`'s longest delay (30s)"
    );
    let e = refusal(&[("REGIMENT_BACKOFF_MAX", "50ms")]);
    assert!(
        e.contains("`REGIMENT_BACKOFF_MAX`")
            && e.contains("at least `backoff`'s first delay (100ms)"),
        "{e}"
    );
    let e = refusal(&[
        ("REGIMENT_BACKOFF_INITIAL", "1m"),
        ("REGIMENT_BACKOFF_MAX", "2s"),
    ]);
    assert!(
        e.contains("`REGIMENT_BACKOFF_INITIAL`") && e.contains("`REGIMENT_BACKOFF_MAX` (2s)"),
        "{e}"
    );
    let coded = Builder::new()
        .workers(1)
        .heartbeat_timeout(Duration::from_secs(10));
    let e = with_env(coded, &[("REGIMENT_HEARTBEAT_INTERVAL", "20s")])
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("`REGIMENT_HEARTBEAT_INTERVAL`")
            && e.contains("shorter than `heartbeat_timeout` (10s)"),
        "{e}"
    );
}

/// A variable beats whatever the program set (`REGIMENT_BIND` over `hello --bind`): the master
/// says which options the environment set, with their values, at start.
#[test]
fn the_options_the_environment_set_are_logged_at_start() {
    let vars = [
        ("REGIMENT_WORKERS", "2"),
        ("REGIMENT_BIND", "127.0.0.1:0"),
        ("REGIMENT_IDLE_GRACE", "2s"),
        ("REGIMENT_NOT_AN_OPTION", "secret"),
    ];
    let (config, log) =
        crate::test_support::capture_log(|| with_env(Builder::new().workers(1), &vars));
    assert_eq!(config.unwrap().policy.workers, 2);
    assert!(
        log.contains(
            " INFO regiment: options set by the environment, over the program's own: \
                      REGIMENT_WORKERS=2, REGIMENT_BIND=127.0.0.1:0, REGIMENT_IDLE_GRACE=2s"
        ),
        "{log}"
    );
    assert!(!log.contains("secret"), "{log}");
    let (_, log) = crate::test_support::capture_log(|| with_env(Builder::new().workers(1), &[]));
    assert!(!log.contains("environment"), "{log}");
}

#[test]
fn the_rollout_failure_limit_variable_is_a_count_of_at_least_one() {
    let c = config(&[("REGIMENT_ROLLOUT_FAILURE_LIMIT", "5")]);
    assert_eq!(c.policy.rollout_failures, 5);
    for bad in ["0", "-1", "three", "99999999999"] {
        let e = refusal(&[("REGIMENT_ROLLOUT_FAILURE_LIMIT", bad)]);
        assert!(
            e.contains("`REGIMENT_ROLLOUT_FAILURE_LIMIT`") && e.contains("at least 1"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn heartbeat_variables_set_the_interval_and_the_timeout_or_turn_it_off() {
    let c = config(&[
        ("REGIMENT_HEARTBEAT_INTERVAL", "250ms"),
        ("REGIMENT_HEARTBEAT_TIMEOUT", "10s"),
    ]);
    assert_eq!(c.spawn.heartbeat_interval, Duration::from_millis(250));
    assert_eq!(c.policy.heartbeat_timeout, Some(Duration::from_secs(10)));
    assert_eq!(c.policy.unresponsive_grace, Duration::from_secs(2));
    let c = config(&[("REGIMENT_UNRESPONSIVE_GRACE", "500ms")]);
    assert_eq!(c.policy.unresponsive_grace, Duration::from_millis(500));
    let e = refusal(&[("REGIMENT_UNRESPONSIVE_GRACE", "0s")]);
    assert!(e.contains("`REGIMENT_UNRESPONSIVE_GRACE`"), "{e}");
    let on = Builder::new()
        .workers(1)
        .heartbeat_timeout(Duration::from_secs(10));
    let c = with_env(on, &[("REGIMENT_HEARTBEAT_TIMEOUT", "off")]).unwrap();
    assert_eq!(
        c.policy.heartbeat_timeout, None,
        "off turns a coded timeout off"
    );
    for bad in ["0s", "a while"] {
        let e = refusal(&[("REGIMENT_HEARTBEAT_INTERVAL", bad)]);
        assert!(e.contains("`REGIMENT_HEARTBEAT_INTERVAL`"), "{bad}: {e}");
        let e = refusal(&[("REGIMENT_HEARTBEAT_TIMEOUT", bad)]);
        assert!(
            e.contains("`REGIMENT_HEARTBEAT_TIMEOUT`") && e.contains("or off"),
            "{bad}: {e}"
        );
    }
    // A timeout not longer than the interval would replace healthy workers.
    let e = refusal(&[("REGIMENT_HEARTBEAT_TIMEOUT", "1s")]);
    assert!(
        e.contains("`REGIMENT_HEARTBEAT_TIMEOUT`")
            && e.contains("longer than `heartbeat_interval` (1s)"),
        "{e}"
    );
}

#[test]
fn the_process_name_variable_names_the_workers() {
    let c = config(&[("REGIMENT_PROCESS_NAME", " shop ")]);
    assert_eq!(c.spawn.process_name, "shop");
    // Unset: the program's name.
    assert_ne!(config(&[]).spawn.process_name.trim(), "");
}

/// `REGIMENT_WORKERS=$WORKERS` with `WORKERS` unset is a mistake more often than a wish for
/// the default: every variable refuses an empty or blank value, under its own name, and says
/// how to get the default.
#[test]
fn an_empty_variable_is_refused_under_its_name() {
    for name in super::overrides::names() {
        for blank in ["", "  "] {
            let e = refusal(&[(name, blank)]);
            assert!(
                e.contains(&format!("`{name}`")) && e.contains("set but empty"),
                "{name}={blank:?}: {e}"
            );
        }
    }
    // Commas alone name no address either.
    let e = refusal(&[("REGIMENT_BIND", " , ")]);
    assert!(e.contains("`REGIMENT_BIND`"), "{e}");
}

#[test]
fn addresses_from_the_variable_are_refused_under_its_name() {
    let c = config(&[("REGIMENT_BIND", "127.0.0.1:0, unix:/run/a.sock,")]);
    assert_eq!(
        (c.listen.binds.len(), c.listen.bind_option),
        (2, "REGIMENT_BIND")
    );
    let e = refusal(&[("REGIMENT_BIND", "nowhere")]);
    assert!(e.contains("`REGIMENT_BIND`"), "{e}");
    // So are the admin address and the workers' user, checked later at build, and the control
    // socket, bound later still.
    let e = refusal(&[("REGIMENT_ADMIN_BIND", "nowhere")]);
    assert!(e.contains("`REGIMENT_ADMIN_BIND`"), "{e}");
    let e = refusal(&[("REGIMENT_WORKER_USER", "no-such-user-of-regiment")]);
    assert!(e.contains("`REGIMENT_WORKER_USER`"), "{e}");
    let c = config(&[("REGIMENT_CONTROL_SOCKET", "/run/a.sock")]);
    assert_eq!(
        c.listen.control_socket.map(|socket| socket.option),
        Some("REGIMENT_CONTROL_SOCKET")
    );
    let c = with_env(Builder::new().workers(1).control_socket("/run/a.sock"), &[]).unwrap();
    assert_eq!(
        c.listen.control_socket.map(|socket| socket.option),
        Some("control_socket")
    );
}

#[test]
fn any_canary_variable_turns_the_canary_on_and_bad_ones_are_refused() {
    let c = config(&[("REGIMENT_CANARY_MIN_REQUESTS", "50")]);
    let canary = c.policy.canary.expect("on");
    assert_eq!((canary.min_requests, canary.workers), (50, 1));
    assert!(config(&[]).policy.canary.is_none());
    for (name, bad) in [
        ("REGIMENT_CANARY_WORKERS", "0"),
        ("REGIMENT_CANARY_WINDOW", "0s"),
        ("REGIMENT_CANARY_MAX_ERROR_RATIO", "1.5"),
        ("REGIMENT_CANARY_MIN_REQUESTS", "many"),
    ] {
        let e = refusal(&[(name, bad)]);
        assert!(e.contains(&format!("`{name}`")), "{name}={bad}: {e}");
    }
}

#[test]
fn variables_are_ignored_when_overrides_are_off() {
    let b = Builder::new()
        .workers(1)
        .env_overrides(EnvOverrides::Ignore);
    let c = with_env(
        b,
        &[("REGIMENT_WORKERS", "7"), ("REGIMENT_DRAIN_TIMEOUT", "0s")],
    )
    .unwrap();
    assert_eq!(c.policy.workers, 1);
}

#[test]
fn more_workers_than_a_master_runs_are_refused_under_the_variable() {
    assert_eq!(config(&[("REGIMENT_WORKERS", "1024")]).policy.workers, 1024);
    for bad in ["1025", "0", "100000"] {
        let e = refusal(&[("REGIMENT_WORKERS", bad)]);
        assert!(
            e.contains("`REGIMENT_WORKERS`") && e.contains("from 1 to 1024"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn the_readiness_variable_takes_each_readiness_by_its_one_name() {
    let c = config(&[("REGIMENT_READINESS", "manual")]);
    assert_eq!(c.policy.readiness, crate::Readiness::Manual);
    assert_eq!(c.spawn.readiness, crate::Readiness::Manual);
    for other in ["ready", "Manual", "listen"] {
        let e = refusal(&[("REGIMENT_READINESS", other)]);
        assert!(
            e.contains("`REGIMENT_READINESS`") && e.contains("listening, started, manual"),
            "{other}: {e}"
        );
    }
}

#[test]
fn a_rollout_timeout_no_rollout_could_meet_is_refused_under_the_name_it_was_given() {
    // The settle time (5 s by default) alone is longer: every rollout would be aborted.
    let e = refusal(&[("REGIMENT_ROLLOUT_TIMEOUT", "3s")]);
    assert!(
        e.contains("`REGIMENT_ROLLOUT_TIMEOUT`") && e.contains("settle time together (5s)"),
        "{e}"
    );
    let e = match with_env(
        Builder::new()
            .workers(2)
            .rollout_timeout(Duration::from_secs(20))
            .canary(crate::Canary::new()),
        &[],
    ) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("`rollout_timeout`") && e.contains("(35s)"),
        "the canary's 30 s window too: {e}"
    );
    assert_eq!(
        config(&[("REGIMENT_ROLLOUT_TIMEOUT", "6s")])
            .policy
            .rollout_timeout,
        Some(Duration::from_secs(6))
    );
}

#[test]
fn the_memory_budget_variable_sets_a_size_or_a_share_of_the_limit_over_the_coded_one() {
    let c = config(&[("REGIMENT_MEMORY_BUDGET", "1500MB")]);
    assert_eq!(c.policy.memory_budget, Some(1500 << 20));
    assert_eq!(
        c.memory.budget.map(|b| b.source),
        Some(crate::events::BudgetSource::Fixed)
    );
    let coded = Builder::new()
        .workers(1)
        .memory_budget(crate::MemoryBudget::mb(100));
    let c = with_env(coded, &[("REGIMENT_MEMORY_BUDGET", "50%")]).unwrap();
    let limit = crate::container::memory_limit().bytes;
    let half = u64::try_from(u128::from(limit) * 50 / 100).unwrap();
    assert_eq!(c.policy.memory_budget, Some(half));
    assert_eq!(c.memory.limit.map(|l| l.bytes), Some(limit));
    assert_eq!(config(&[]).policy.memory_budget, None);
}

#[test]
fn a_wrong_memory_budget_is_refused_under_the_variable_with_the_forms_accepted() {
    for bad in ["1500", "1.5GB", "0MB", "0%", "120%", "lots"] {
        let e = refusal(&[("REGIMENT_MEMORY_BUDGET", bad)]);
        assert_eq!(
            e,
            format!(
                "invalid value {bad:?} for option `REGIMENT_MEMORY_BUDGET`: expected {}",
                super::memory_budget::ACCEPTED
            )
        );
    }
}

#[test]
fn the_kill_report_timeout_is_a_duration_and_zero_turns_reports_off() {
    use std::time::Duration;
    assert_eq!(
        config(&[]).kill_report_timeout,
        crate::defaults::KILL_REPORT_TIMEOUT
    );
    let c = config(&[("REGIMENT_KILL_REPORT_TIMEOUT", "250ms")]);
    assert_eq!(c.kill_report_timeout, Duration::from_millis(250));
    let off = config(&[("REGIMENT_KILL_REPORT_TIMEOUT", "0s")]);
    assert_eq!(off.kill_report_timeout, Duration::ZERO);
    let e = refusal(&[("REGIMENT_KILL_REPORT_TIMEOUT", "soon")]);
    assert!(e.contains("REGIMENT_KILL_REPORT_TIMEOUT"), "{e}");
}
