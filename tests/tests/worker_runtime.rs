//! The runtime threads of HTTP workers: each worker's `#[tokio::main]` gets its share of the
//! CPUs (`TOKIO_WORKER_THREADS`, set by the master), unless the user set the variable.

mod http_common;

use http_common::start_hello;

/// The value of `name` in the environment `pid` started with.
fn environ(pid: u32, name: &str) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("read /proc/PID/environ");
    raw.split(|&b| b == 0).find_map(|kv| {
        let kv = String::from_utf8_lossy(kv);
        kv.strip_prefix(&format!("{name}=")).map(str::to_string)
    })
}

#[test]
fn each_worker_gets_its_share_of_the_cpus_as_runtime_threads() {
    let c = start_hello(2, &[]);
    let workers = c.wait_serving(2);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The user's own value, if this test runs with one, is passed through as is.
    let expected =
        std::env::var("TOKIO_WORKER_THREADS").unwrap_or_else(|_| (cpus / 2).max(1).to_string());
    for pid in workers.values() {
        assert_eq!(
            environ(*pid, "TOKIO_WORKER_THREADS").as_deref(),
            Some(expected.as_str()),
            "worker {pid} on {cpus} CPUs"
        );
    }
    // The master's own environment is left as it was.
    assert_eq!(
        environ(c.pid(), "TOKIO_WORKER_THREADS"),
        std::env::var("TOKIO_WORKER_THREADS").ok()
    );
}

#[test]
fn a_value_the_user_set_is_kept() {
    let c = start_hello(2, &[("TOKIO_WORKER_THREADS", "3")]);
    let workers = c.wait_serving(2);
    for pid in workers.values() {
        assert_eq!(environ(*pid, "TOKIO_WORKER_THREADS").as_deref(), Some("3"));
    }
}
