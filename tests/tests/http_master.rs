//! `hello` as a person runs it: it binds the address of its own flag and says where it listens
//! and how to steer it; and its HTTP workers outlive no master: when the master is SIGKILLed,
//! each worker drains (the request in flight completes) and exits on its own.

mod http_common;

use std::io::BufReader;

use http_common::{connect, read_response, send_get, start_hello, start_hello_without};
use nix::sys::signal::Signal;
use tests::cluster::{CEILING, wait_gone};

#[test]
fn hello_binds_its_own_flag_and_prints_where_it_listens_and_how_to_restart() {
    // No REGIMENT_BIND: the address comes from hello's --bind (HELLO_BIND).
    let c = start_hello_without(1, &[("HELLO_BIND", "127.0.0.1:0")], &["REGIMENT_BIND"]);
    let workers = c.wait_serving(1);
    let addr = c.addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    c.wait_line(&format!("hello: listening on http://{addr}"));
    let master = c.pid();
    let steering = c.wait_line("rolling restart");
    assert!(
        steering.contains(&format!("kill -HUP {master}"))
            && steering.contains(&format!("kill -TERM {master}")),
        "{steering}"
    );

    let mut s = connect(addr);
    send_get(&mut s, "/");
    let res = read_response(&mut BufReader::new(s)).expect("an answer");
    assert_eq!(res.status, 200);
    assert_eq!(
        res.body,
        format!("hello from worker 0 (pid {}), generation 1\n", workers[&0])
    );
}

#[test]
fn http_workers_drain_and_exit_when_their_master_is_sigkilled() {
    let c = start_hello(2, &[]);
    let workers = c.wait_serving(2);
    let addr = c.addr();

    // A request in flight on one of the workers when the master dies.
    let mut s = connect(addr);
    send_get(&mut s, "/slow?ms=5000");
    // In flight for certain: a worker's heartbeat has reported it to the master.
    c.status_where("the slow request in flight", |status| {
        status["workers"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w["in_flight"].as_u64() >= Some(1)))
    });
    let master = c.pid();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(master as i32), Signal::SIGKILL)
        .expect("kill the master");

    let res = read_response(&mut BufReader::new(s)).expect("the request in flight completes");
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(
        res.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("connection") && v == "close"),
        "answered by a draining worker: {:?}",
        res.headers
    );
    for pid in workers.values() {
        wait_gone(*pid, CEILING);
    }
}
