//! Messages.

use super::*;

#[test]
fn ready_counts_once_per_worker() {
    let mut h = Harness::new(config(1));
    h.start();
    let w = h.current(0);
    h.take_events();
    for _ in 0..3 {
        h.ready_worker(w);
    }
    assert_eq!(h.take_events(), [ready(0, h.pid(w), 1)]);
}

#[test]
fn invalid_messages_are_reported_then_thinned() {
    let mut h = Harness::ready(1);
    let (w, pid) = h.serving(0);
    for _ in 0..2_000 {
        h.input(Input::InvalidMessage {
            id: w,
            why: "not a protocol message".into(),
        });
    }
    let whys: Vec<String> = h
        .take_events()
        .into_iter()
        .map(|e| match e {
            Event::InvalidMessage {
                slot: 0,
                pid: p,
                generation: 1,
                why,
            } if p == pid => why,
            other => panic!("{other:?}"),
        })
        .collect();
    let mut expected = vec!["not a protocol message".to_owned()];
    expected.extend(
        (2..=10)
            .chain([1_000, 2_000])
            .map(|n| format!("not a protocol message (invalid message #{n})")),
    );
    assert_eq!(whys, expected);
    assert!(h.worker(w).is_ready(), "survived");
}
