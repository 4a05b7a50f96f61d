//! A worker that gives up its drain at its own deadline says so before it exits
//! (`drain-abandoned`): its exit is booked as a drain given up, whatever status it exits with.

use super::*;
use crate::events::AbandonedDrain;

fn abandon(h: &mut Harness, id: WorkerId, in_flight: u64, connections: u64) {
    h.input(Input::DrainAbandoned {
        id,
        left: AbandonedDrain::new(in_flight, connections),
    });
}

fn exited_having_abandoned(
    slot: usize,
    pid: u32,
    status: &str,
    in_flight: u64,
    connections: u64,
) -> Event {
    Event::Exited {
        slot,
        pid,
        generation: 1,
        status: status.into(),
        abandoned_drain: Some(AbandonedDrain::new(in_flight, connections)),
        oom_killed: false,
    }
}

#[test]
fn a_worker_that_gave_up_its_drain_is_booked_so_whatever_its_exit_status() {
    let mut h = Harness::ready(3);
    let mut old = Vec::new();
    for slot in 0..3 {
        let (w, pid, new, _) = replace(&mut h, slot, "asked");
        h.ready_worker(new);
        assert!(h.processes[&w].drained);
        old.push((w, pid));
    }
    h.take_events();
    // `main` returning the error (exit 1), or ignoring it (exit 0): the same booking.
    let [(a, a_pid), (b, b_pid), (c, c_pid)] = old[..] else {
        unreachable!()
    };
    abandon(&mut h, a, 1, 2);
    h.exit(a, "exit 1");
    abandon(&mut h, b, 3, 3);
    h.exit(b, "exit 0");
    // One that drained fully says nothing.
    h.exit(c, "exit 0");
    assert_eq!(
        h.take_events(),
        [
            exited_having_abandoned(0, a_pid, "exit 1", 1, 2),
            exited_having_abandoned(1, b_pid, "exit 0", 3, 3),
            exited(2, c_pid, 1, "exit 0"),
        ]
    );
    assert_eq!(
        AbandonedDrain::new(1, 2).to_string(),
        "gave up its drain with 1 request in flight (2 connections open)"
    );
}

#[test]
fn a_worker_killed_at_its_deadline_after_giving_up_still_shows_what_it_left() {
    let mut h = Harness::ready_with(config(1).drain_timeout(secs(5)));
    let (old, old_pid, new, _) = replace(&mut h, 0, "asked");
    h.ready_worker(new);
    abandon(&mut h, old, 1, 1);
    // Its exit took longer than the margin it kept: the master's SIGKILL came first.
    h.advance(secs(5));
    h.take_events();
    h.exit(old, "signal 9 (SIGKILL)");
    assert_eq!(
        h.take_events(),
        [exited_having_abandoned(
            0,
            old_pid,
            "signal 9 (SIGKILL)",
            1,
            1
        )]
    );
}

/// Untrusted words: a repeat does not overwrite the first, and a message from a worker no
/// longer in the books changes nothing.
#[test]
fn only_the_first_word_of_a_live_worker_counts() {
    let mut h = Harness::ready(1);
    let (old, old_pid, new, _) = replace(&mut h, 0, "asked");
    h.ready_worker(new);
    abandon(&mut h, old, 1, 1);
    abandon(&mut h, old, 1000, 1000);
    h.take_events();
    h.exit(old, "exit 75");
    assert_eq!(
        h.take_events(),
        [exited_having_abandoned(0, old_pid, "exit 75", 1, 1)]
    );
    abandon(&mut h, old, 5, 5);
    assert_eq!(h.take_events(), []);
    assert_eq!(h.current(0), new);
}
