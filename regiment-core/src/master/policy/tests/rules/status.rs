//! Status.

use super::*;

#[test]
fn the_status_shows_workers_states_generations_reasons_and_slots_restarts() {
    let mut h = Harness::ready(2);
    let ((a, a_pid), (b, b_pid)) = (h.serving(0), h.serving(1));
    let worker =
        |slot, pid, generation, state, age_ms, load: u64, reason: Option<&str>| WorkerStatus {
            slot,
            pid,
            generation,
            state,
            age_ms,
            rss: load,
            requests: load,
            in_flight: 0,
            responses_5xx: 0,
            failures: 0,
            latency_p50_us: None,
            latency_p99_us: None,
            // The one heartbeat below comes 500 ms before the snapshots that show its load.
            silent_ms: (load > 0).then_some(500),
            replace_reason: reason.map(Into::into),
            program: Some(program_of(Generation(generation))),
            memory: None,
        };
    assert_eq!(
        h.status(),
        PolicyStatus {
            generation: 1,
            good_generation: 1,
            workers_wanted: 2,
            rollout: None,
            last_rollout: None,
            last_upgrade: None,
            stopping: false,
            workers: vec![
                worker(0, a_pid, 1, WorkerState::Ready, 0, 0, None),
                worker(1, b_pid, 1, WorkerState::Ready, 0, 0, None),
            ],
            slots: vec![slot_status(0, 0, None), slot_status(1, 0, None)],
            memory_total: 0,
            master_memory: None,
        }
    );

    h.advance(secs(2));
    h.heartbeat(a);
    h.replace_me(a, "asked by the test");
    let (a2, a2_pid) = h.starting(0);
    h.advance(ms(500));
    assert_eq!(
        h.status().workers,
        [
            worker(
                0,
                a_pid,
                1,
                WorkerState::Ready,
                2_500,
                1,
                Some("asked by the test")
            ),
            worker(0, a2_pid, 1, WorkerState::Starting, 500, 0, None),
            worker(1, b_pid, 1, WorkerState::Ready, 2_500, 0, None),
        ]
    );
    h.ready_worker(a2);
    assert_eq!(
        h.status().workers[0],
        worker(
            0,
            a_pid,
            1,
            WorkerState::Draining,
            2_500,
            1,
            Some("asked by the test")
        )
    );
    h.exit_leaving();
    h.exit(b, "signal 9 (SIGKILL)");
    let status = h.status();
    assert_eq!(
        status.workers,
        [worker(0, a2_pid, 1, WorkerState::Ready, 500, 0, None)]
    );
    assert_eq!(
        status.slots,
        [
            slot_status(0, 1, Some("asked by the test")),
            slot_status(1, 1, Some("killed by SIGKILL from outside")),
        ]
    );
    h.control(Control::RollingRestart);
    let status = h.status();
    assert_eq!((status.generation, status.rollout), (2, Some(2)));
    assert_eq!(
        status.workers.len(),
        3,
        "slot 0's replacement and slot 1's new worker"
    );
    assert!(
        status.workers[1..]
            .iter()
            .all(|w| w.generation == 2 && w.state == WorkerState::Starting)
    );
    h.control(Control::Stop);
    let status = h.status();
    assert!(status.stopping);
    assert_eq!(status.rollout, None);
    assert!(
        status
            .workers
            .iter()
            .all(|w| w.state == WorkerState::Draining)
    );
}
