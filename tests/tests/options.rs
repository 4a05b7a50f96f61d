//! What an operator writes, as `hello` gets it: `REGIMENT_*` variables, empty or set over the
//! program's own flags, and how the master answers them before and as it starts.

use std::path::Path;

use tests::cluster::{CEILING, Cluster};

const HELLO: &str = env!("CARGO_BIN_EXE_hello_under_test");

/// `hello` with `env`, one worker, its log at info on stderr.
fn start_hello(env: &[(&str, &str)]) -> Cluster {
    let mut all = vec![("HELLO_WORKERS", "1"), ("HELLO_PRINT_EVENTS", "true")];
    all.extend_from_slice(env);
    Cluster::start(Path::new(HELLO), &all)
}

/// An empty variable is refused, naming it, before any worker starts: regiment-core's options
/// and regiment-axum's HTTP ones alike.
#[test]
fn an_empty_variable_stops_the_start_naming_it() {
    for name in ["REGIMENT_WORKERS", "REGIMENT_IDLE_GRACE"] {
        let mut c = start_hello(&[(name, "")]);
        assert!(!c.wait_exit(CEILING).success(), "{name}= was accepted");
        let err = c.stderr();
        assert!(
            err.contains(&format!("`{name}`")) && err.contains("set but empty"),
            "{name}: {err}"
        );
        assert!(c.events().is_empty(), "{name}: {:?}", c.events());
    }
}

/// `ready` is no readiness (it once passed for `manual`, whose workers never become ready
/// unless the app calls `worker::ready()`): refused, with the three there are.
#[test]
fn a_readiness_by_another_name_stops_the_start() {
    let mut c = start_hello(&[("REGIMENT_READINESS", "ready")]);
    assert!(!c.wait_exit(CEILING).success(), "ready was accepted");
    let err = c.stderr();
    assert!(
        err.contains("`REGIMENT_READINESS`") && err.contains("listening, started, manual"),
        "{err}"
    );
}

/// `REGIMENT_BIND` beats `hello --bind`, as every variable beats what the program set: the
/// master says so at start, with the value it took, and serves there.
#[test]
fn a_variable_over_a_flag_is_logged_at_start() {
    let mut cmd = std::process::Command::new(HELLO);
    cmd.args(["--bind", "127.0.0.1:1", "--workers", "1", "--print-events"]);
    let c = Cluster::start_command(cmd, &[("REGIMENT_DRAIN_TIMEOUT", "5s")]);
    c.wait_serving(1);
    c.wait_log(
        "options set by the environment, over the program's own: REGIMENT_BIND=127.0.0.1:0, ",
    );
    assert!(
        c.stderr().contains("REGIMENT_DRAIN_TIMEOUT=5s"),
        "{}",
        c.stderr()
    );
    assert_ne!(c.addr().port(), 1, "REGIMENT_BIND took the place of --bind");
}
