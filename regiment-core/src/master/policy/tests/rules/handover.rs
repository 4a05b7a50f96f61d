//! The policy's state handed from the old master to the new one: deadlines kept on the new
//! clock, the format versioned, bad input refused, the new master's options honoured.

use std::time::Instant;

use super::*;
use crate::master::policy::handover::{PolicyState, RestoreError, STATE_VERSION, SnapshotRefusal};
use crate::master::policy::{Policy, worker::Phase};

/// The JSON of the state of a cluster of 2 with a rollout under way.
fn busy_state() -> (Harness, Vec<u8>) {
    let mut h = Harness::ready(2);
    roll_first(&mut h);
    h.advance(secs(1));
    let state = h.policy.snapshot(h.now).expect("quiet");
    (h, state.to_json())
}

fn restore(json: &[u8], now: Instant) -> Result<Policy, RestoreError> {
    Policy::restore(config(2), PolicyState::from_json(json)?, now)
}

#[test]
fn a_starting_workers_start_timeout_fires_after_the_time_it_had_left_on_the_new_clock() {
    let mut h = Harness::ready(2);
    h.control(Control::RollingRestart);
    let (new, _) = h.starting(0);
    h.advance(secs(10));
    let Phase::Starting { deadline } = h.worker(new).phase else {
        panic!("starting: {:?}", h.worker(new).phase)
    };
    let left = deadline - h.now;
    assert_eq!(left, secs(20), "the default start timeout is 30 s");
    // The new master's clock reads otherwise: only what is left counts.
    let elsewhere = h.now + secs(3_600);
    h.hand_over(config(2), elsewhere);
    h.advance(left - ms(1));
    assert_eq!(kills(&h), [], "killed before its time");
    h.advance(ms(1));
    let killed = kills(&h);
    assert_eq!(killed.len(), 1, "{killed:?}");
    assert_eq!(
        (killed[0].0, killed[0].1, killed[0].2),
        (since_start(&h), new, KillReason::StartTimeout)
    );
    assert_eq!(since_start(&h), secs(3_600 + 30));
}

#[test]
fn a_handover_keeps_the_books_whole() {
    let (h, json) = busy_state();
    let restored = restore(&json, h.now).expect("restores");
    // The books are those the old master had, to the nanosecond.
    let again = restored.snapshot(h.now).expect("quiet");
    assert_eq!(String::from_utf8(again.to_json()), String::from_utf8(json));
    assert_eq!(restored.stats(), h.policy.stats());
    assert_eq!(restored.status(h.now, wall(&h)), h.status());
}

fn wall(h: &Harness) -> crate::master::policy::WallClock {
    crate::master::policy::WallClock {
        instant: h.t0,
        unix_ms: 0,
    }
}

#[test]
fn a_snapshot_waits_for_every_effect_to_be_carried_out() {
    let mut h = Harness::ready(2);
    h.policy.begin_upgrade(h.now).expect("begins");
    assert_eq!(
        h.policy.snapshot(h.now).map(|_| ()),
        Err(SnapshotRefusal::EffectsPending(1))
    );
    h.pump_effects();
    assert!(h.policy.snapshot(h.now).is_ok());
}

#[test]
fn a_state_of_another_version_is_refused_naming_both_versions() {
    let (h, json) = busy_state();
    let mut value: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
    value["version"] = (STATE_VERSION + 1).into();
    // Whatever else changed in that version: the version is what is refused.
    value["workers"] = "written otherwise".into();
    let err = restore(&serde_json::to_vec(&value).unwrap(), h.now).expect_err("another version");
    assert_eq!(
        err,
        RestoreError::Version {
            found: STATE_VERSION + 1,
            expected: STATE_VERSION
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the policy state is of format version {}, and this master reads versions 1 to {} \
             only",
            STATE_VERSION + 1,
            STATE_VERSION
        )
    );
    // Handed over in memory too.
    let mut state = PolicyState::from_json(&json).expect("reads");
    state.version = 0;
    assert!(matches!(
        Policy::restore(config(2), state, h.now),
        Err(RestoreError::Version { found: 0, .. })
    ));
}

/// A state of version 1, written by the build before the memory budget, restores: its books
/// less the memory ones, which start empty, and its workers count as sized (no new workers).
#[test]
fn a_state_of_version_1_restores_with_empty_memory_books() {
    let (h, json) = busy_state();
    let mut value: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
    value["version"] = 1.into();
    value.as_object_mut().unwrap().remove("memory");
    for w in value["workers"].as_array_mut().unwrap() {
        let w = w.as_object_mut().unwrap();
        w.remove("memory");
        w.remove("sized");
    }
    for s in value["slots"].as_array_mut().unwrap() {
        s.as_object_mut().unwrap().remove("vacating");
    }
    let restored = restore(&serde_json::to_vec(&value).unwrap(), h.now).expect("version 1");
    assert_eq!(restored.workers.len(), h.policy.workers.len());
    assert!(
        restored
            .workers
            .values()
            .all(|w| w.sized && w.memory.is_none())
    );
    assert_eq!(restored.memory, Default::default());
}

#[test]
fn garbage_is_refused_never_panicked_on() {
    let (h, json) = busy_state();
    for garbage in [
        &b""[..],
        b"not json",
        b"{}",
        b"[1, 2]",
        b"{\"version\": \"1\"}",
    ] {
        let err = PolicyState::from_json(garbage).expect_err("garbage");
        assert!(matches!(err, RestoreError::Malformed(_)), "{err}");
    }
    // Every cut of a good state is refused, and none panics.
    for cut in 0..json.len() {
        assert!(restore(&json[..cut], h.now).is_err(), "cut at {cut}");
    }
    // A field this build does not know: a format change nobody versioned.
    let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    value["tomorrow"] = 1.into();
    let err = restore(&serde_json::to_vec(&value).unwrap(), h.now).expect_err("unknown field");
    assert!(
        err.to_string().contains("unknown field `tomorrow`"),
        "{err}"
    );
}

/// A change made to a state's JSON.
type Edit = fn(&mut serde_json::Value);

#[test]
fn a_state_whose_books_do_not_hold_together_is_refused_saying_why() {
    let (h, json) = busy_state();
    let edits: [(&str, Edit); 7] = [
        ("slot 0 holds worker #999, not in the books", |v| {
            v["slots"][0]["current"] = 999.into()
        }),
        ("not below the next id, 1", |v| v["next_id"] = 1.into()),
        ("generation 9, not one of 1 to 2", |v| {
            v["workers"][0]["generation"] = 9.into()
        }),
        ("is listed twice", |v| {
            let first = v["workers"][0].clone();
            v["workers"].as_array_mut().unwrap().push(first);
        }),
        ("a slot out of range or twice", |v| {
            v["queue"] = serde_json::json!([5])
        }),
        ("0 slots, not 1 to", |v| v["slots"] = serde_json::json!([])),
        ("no count a master reaches", |v| {
            v["stats"]["crashes"] = u64::MAX.into()
        }),
    ];
    for (expected, edit) in edits {
        let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        edit(&mut value);
        let err = restore(&serde_json::to_vec(&value).unwrap(), h.now).expect_err(expected);
        assert!(
            matches!(err, RestoreError::Inconsistent(_)) && err.to_string().contains(expected),
            "expected {expected:?}: {err}"
        );
    }
}

#[test]
fn a_new_master_configured_with_another_worker_count_scales_to_it_keeping_the_workers() {
    let mut h = Harness::ready(2);
    let before: Vec<WorkerId> = h.policy.workers.keys().copied().collect();
    h.hand_over(config(3), h.now);
    assert_took!(h, Event::Scaled { workers: 3 });
    assert_eq!(h.policy.slots.len(), 3);
    assert_eq!(spawns(&h).len(), 1, "the new slot is filled");
    for id in before {
        assert!(h.worker(id).is_ready(), "{id} kept serving");
    }
    // Fewer: the last slot's worker drains, as `regiment scale` would have it.
    let last = h.current(2);
    h.ready_all();
    h.hand_over(config(1), h.now);
    assert_took!(h, Event::Scaled { workers: 1 });
    assert!(drains(&h).iter().any(|(_, id, _)| *id == last));
}

#[test]
fn a_count_scaled_at_runtime_is_kept_when_the_option_did_not_change() {
    let mut h = Harness::ready(2);
    h.control(Control::ScaleUp);
    h.ready_all();
    h.take_events();
    h.hand_over(config(2), h.now);
    assert_eq!(h.policy.slots.len(), 3, "the operator's third worker stays");
    assert_eq!(h.take_events(), []);
}
