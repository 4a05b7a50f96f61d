//! `Handle::rolling_restart_and_wait`, as a program that supervises the supervisor uses it: this
//! test process is the master (a `Supervisor` run in-process), its workers are the fixture
//! binary deployed at a program path. A deploy waits for its outcome: done, or aborted with the
//! reason, and the good generation follows. Workers end with the master (their IPC channel
//! closes), so a failed test leaves no process behind.

use std::time::Duration;

use regiment_core::events::{RolloutOutcome, WorkerState};
use regiment_core::{Builder, EnvOverrides};
use tests::deploy::Deploy;

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");
const FIXTURE_V2: &str = env!("CARGO_BIN_EXE_fixture_v2");
const FIXTURE_EXIT_EARLY: &str = env!("CARGO_BIN_EXE_fixture_exit_early");
/// Generous: a loaded 2-core machine.
const CEILING: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_waits_for_its_outcome_and_the_good_generation_follows() {
    let deploy = Deploy::new("rollout-wait", FIXTURE);
    let supervisor = Builder::new()
        .program(deploy.app())
        .workers(2)
        .bind("127.0.0.1:0")
        .rollout_failure_limit(1)
        .rollout_settle(Duration::from_millis(300))
        .start_timeout(Duration::from_secs(10))
        .env_overrides(EnvOverrides::Ignore)
        .build()
        .expect("builds");
    let handle = supervisor.handle();
    let run = tokio::spawn(supervisor.run());
    tokio::time::timeout(CEILING, async {
        while handle
            .status()
            .workers
            .iter()
            .filter(|w| w.state == WorkerState::Ready)
            .count()
            < 2
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("two workers ready");

    // A good deploy: done, every slot replaced, its generation the good one.
    deploy.install(FIXTURE_V2);
    let done = tokio::time::timeout(CEILING, handle.rolling_restart_and_wait())
        .await
        .expect("the rollout ends")
        .expect("a rollout was started");
    assert_eq!((done.generation, done.outcome), (2, RolloutOutcome::Done));
    assert_eq!(done.replaced, 2);
    assert!(
        done.ended_at_ms
            .is_some_and(|end| end >= done.started_at_ms)
    );
    let status = handle.status();
    assert_eq!(status.good_generation, 2);
    assert_eq!(status.last_rollout, Some(done));

    // A bad deploy: aborted, with the reason; the good generation stays.
    deploy.install(FIXTURE_EXIT_EARLY);
    let aborted = tokio::time::timeout(CEILING, handle.rolling_restart_and_wait())
        .await
        .expect("the rollout ends")
        .expect("a rollout was started");
    assert_eq!(
        (aborted.generation, aborted.outcome),
        (3, RolloutOutcome::Aborted)
    );
    assert_eq!(
        aborted.why.as_deref(),
        Some("1 consecutive workers of generation 3 failed to start")
    );
    assert_eq!(handle.status().good_generation, 2);

    // Once stopped, no rollout starts.
    handle.stop();
    tokio::time::timeout(CEILING, run)
        .await
        .expect("stops")
        .expect("joins")
        .expect("runs cleanly");
    assert_eq!(handle.rolling_restart_and_wait().await, None);
}
