//! The default number of workers is the CPUs the master may run on, not the host's: a master
//! started under `taskset` (util-linux), without `REGIMENT_WORKERS`, wants and starts one
//! worker per CPU of its affinity mask. The cgroup quota's part of the count is tested on
//! copies of real cgroup files (`regiment-core/src/container/cpus.rs`).

use std::process::Command;

use nix::sched::{CpuSet, sched_getaffinity};
use nix::unistd::Pid;
use tests::cluster::Cluster;

const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");

/// The CPUs this test process may run on.
fn allowed_cpus() -> Vec<usize> {
    let set = sched_getaffinity(Pid::from_raw(0)).expect("sched_getaffinity");
    (0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect()
}

/// The fixture's master, `REGIMENT_WORKERS` unset, under `taskset --cpu-list cpus` (which
/// executes it in its own process: the pid is the master's) or as it is.
fn start_master(cpus: Option<&[usize]>) -> Cluster {
    let mut cmd = match cpus {
        Some(cpus) => {
            let list: Vec<String> = cpus.iter().map(ToString::to_string).collect();
            let mut cmd = Command::new("taskset");
            cmd.args(["--cpu-list", &list.join(","), FIXTURE]);
            cmd
        }
        None => Command::new(FIXTURE),
    };
    cmd.env_remove("REGIMENT_WORKERS");
    Cluster::start_command(cmd, &[])
}

/// The workers the master wants, and that as many serve.
fn workers_of(c: &Cluster) -> u64 {
    // Its first event is printed once it handles SIGWINCH, which asks for its status.
    c.addr();
    let status = c.status_where("the workers wanted", |s| s["workers_wanted"].is_u64());
    let wanted = status["workers_wanted"].as_u64().unwrap();
    let serving = c.wait_serving(usize::try_from(wanted).unwrap());
    assert_eq!(serving.len() as u64, wanted);
    wanted
}

#[test]
fn the_default_worker_count_follows_the_cpu_affinity() {
    assert!(
        Command::new("taskset").arg("--version").output().is_ok(),
        "this test runs the master under taskset (util-linux)"
    );
    let allowed = allowed_cpus();
    // As started by anyone: every CPU allowed, fewer if the cgroup's CPU quota is lower (the
    // test may run in a container that has one).
    let unrestricted = workers_of(&start_master(None));
    assert!(
        (1..=allowed.len() as u64).contains(&unrestricted),
        "{unrestricted} workers for {} CPUs",
        allowed.len()
    );
    // One CPU of this process's, then two where it has two: as many workers, no more than the
    // quota allows.
    for n in [1, 2].into_iter().filter(|n| *n <= allowed.len()) {
        let c = start_master(Some(&allowed[..n]));
        assert_eq!(
            workers_of(&c),
            (n as u64).min(unrestricted),
            "a master that may run on CPUs {:?}",
            &allowed[..n]
        );
    }
}
