//! A worker that asks to be replaced before it served anything: its replacement backs off.

use super::canary::answered;
use super::*;

/// `leaky --max-rss-mb 0`: every worker asks as it starts. Replaced at once, the slot would
/// run a worker per start (60 in 6 s, measured); it backs off as a crash loop does instead,
/// each wait announced.
#[test]
fn workers_that_ask_as_they_start_are_replaced_with_backoff() {
    let mut h = Harness::new(config(1));
    h.start();
    let mut waits = Vec::new();
    while since_start(&h) < secs(6) && all_spawns(&h) < 100 {
        let asking = h.policy.slots[0].successor.unwrap_or_else(|| h.current(0));
        let pid = h.pid(asking);
        h.replace_me(asking, "memory-footprint: rss 9.0 MB > 0 MB");
        h.ready_worker(asking);
        h.exit_leaving();
        let wait = h
            .take_events()
            .iter()
            .find_map(|e| match e {
                Event::ReplacementDelayed {
                    pid: p, wait_ms, ..
                } if *p == pid => Some(*wait_ms),
                _ => None,
            })
            .unwrap_or(0);
        waits.push(wait);
        h.advance(ms(wait));
        assert!(h.successor(0).is_some(), "replaced once its wait is over");
    }
    assert_eq!(waits, [100, 200, 400, 800, 1_600, 3_200]);
    assert_eq!(all_spawns(&h), 7, "{waits:?}");
}

#[test]
fn a_worker_whose_heartbeats_count_no_request_when_it_asks_is_replaced_after_a_backoff() {
    let mut h = Harness::ready(1);
    let (old, old_pid) = h.serving(0);
    answered(&mut h, old, 0, 0);
    h.advance(secs(1));
    h.take_events();
    h.replace_me(old, "max-age");
    assert_eq!(
        h.take_events(),
        [
            replace_requested(0, old_pid, 1, "max-age"),
            replacement_delayed(
                0,
                old_pid,
                1,
                "its heartbeats count no request in the 1000 ms it was ready",
                100
            ),
        ]
    );
    h.advance(ms(99));
    assert_eq!((spawns(&h), h.successor(0)), (vec![], None));
    h.advance(ms(1));
    let (new, _) = h.starting(0);
    // It serves meanwhile, and drains once its successor is ready, as any worker that asked.
    assert!(h.worker(old).is_ready());
    h.ready_worker(new);
    assert!(h.processes[&old].drained);
}

#[test]
fn a_worker_that_served_or_tells_nothing_of_it_is_replaced_at_once() {
    // One request served.
    let mut h = Harness::ready(1);
    let old = h.current(0);
    answered(&mut h, old, 1, 0);
    h.replace_me(old, "request-count: 1 requests >= 1");
    assert!(h.successor(0).is_some());
    assert!(
        !h.take_events()
            .iter()
            .any(|e| matches!(e, Event::ReplacementDelayed { .. }))
    );
    // No heartbeats: a worker that counts no requests (regiment-core alone) tells nothing.
    let mut h = Harness::ready(1);
    h.replace_me(h.current(0), "asked");
    assert!(h.successor(0).is_some());
}

/// An idle service's worker recycled by `MaxAge`: it served nothing, for a healthy period.
#[test]
fn a_worker_that_served_nothing_for_a_healthy_period_is_replaced_at_once() {
    let mut h = Harness::ready(1);
    let old = h.current(0);
    answered(&mut h, old, 0, 0);
    h.advance(secs(60));
    h.replace_me(old, "max-age: 6h");
    assert!(h.successor(0).is_some());
}
