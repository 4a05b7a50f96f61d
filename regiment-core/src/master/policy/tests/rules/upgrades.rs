//! The master's upgrade in place, as a stage of the policy: one at a time, none while stopping,
//! refused by the driver, then the new master's rollout, whose outcome is the upgrade's.

use super::canary::{answered, canary_config, of_generation};
use super::*;
use crate::master::policy::upgrade::{UpgradeLog, UpgradeOutcome};

/// Every upgrade that ended so far.
fn upgrades_ended(h: &Harness) -> Vec<UpgradeLog> {
    h.log
        .iter()
        .filter_map(|(_, e)| match e {
            Effect::UpgradeEnded(log) => Some(log.clone()),
            _ => None,
        })
        .collect()
}

/// Begins an upgrade, as a trigger would: its number.
fn begin(h: &mut Harness) -> Result<u64, String> {
    let begun = h.policy.begin_upgrade(h.now);
    h.pump_effects();
    begun
}

/// The old master begins an upgrade and hands over to the new one (same options, no time
/// lost), which rolls its build out: the generation it rolls out.
fn upgrade(h: &mut Harness, config: PolicyConfig) -> Generation {
    begin(h).expect("an upgrade begins");
    h.hand_over(config, h.now);
    let rolled = h
        .policy
        .upgraded(h.now)
        .expect("the new master rolls its build out");
    h.pump_effects();
    rolled
}

#[test]
fn an_upgrade_asks_the_driver_to_hand_over_and_changes_nothing_else() {
    let mut h = Harness::ready(2);
    let before: Vec<WorkerId> = h.policy.workers.keys().copied().collect();
    assert_eq!(begin(&mut h), Ok(1));
    assert!(
        h.step_effects()
            .any(|e| *e == Effect::Upgrade { number: 1 }),
        "no handover asked: {:?}",
        h.step_effects().collect::<Vec<_>>()
    );
    assert_eq!(spawns(&h), []);
    assert_eq!(h.policy.workers.keys().copied().collect::<Vec<_>>(), before);
    let status = h.status().last_upgrade.expect("a record");
    assert_eq!(
        (status.number, status.outcome, status.generation),
        (1, UpgradeOutcome::InProgress, None)
    );
}

#[test]
fn a_second_upgrade_is_refused_while_one_is_under_way() {
    let mut h = Harness::ready(2);
    assert_eq!(begin(&mut h), Ok(1));
    let refused = begin(&mut h).expect_err("one at a time");
    assert!(refused.contains("upgrade 1 is under way"), "{refused}");
    assert!(
        !h.step_effects()
            .any(|e| matches!(e, Effect::Upgrade { .. }))
    );

    // Still under way in the new master, until its rollout ends.
    h.hand_over(config(2), h.now);
    let refused = begin(&mut h).expect_err("one at a time");
    assert!(refused.contains("upgrade 1 is under way"), "{refused}");
    let rolled = h.policy.upgraded(h.now).expect("rolls out");
    h.pump_effects();
    let refused = begin(&mut h).expect_err("one at a time");
    assert!(
        refused.contains(&format!(
            "rolls its build out to the workers (generation {rolled})"
        )),
        "{refused}"
    );
    let again = h.policy.upgraded(h.now).expect_err("rolled out once");
    assert!(again.contains("already rolls generation 2 out"), "{again}");

    roll(&mut h, 1);
    assert_eq!(begin(&mut h), Ok(2), "the next one, once the first ended");
}

#[test]
fn an_upgrade_is_refused_while_stopping_and_a_stop_ends_one_not_handed_over() {
    let mut h = Harness::ready(2);
    assert_eq!(begin(&mut h), Ok(1));
    h.control(Control::Stop);
    let ended = upgrades_ended(&h);
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].outcome, UpgradeOutcome::Refused);
    assert_eq!(ended[0].why.as_deref(), Some("the master is stopping"));
    assert_eq!(h.policy.stats().upgrades_refused, 1);

    assert_eq!(begin(&mut h), Err("the master is stopping".into()));
    assert_eq!(
        h.policy.upgraded(h.now),
        Err("no upgrade is being handed over".into())
    );
}

#[test]
fn the_driver_refusing_the_handover_ends_the_upgrade_and_the_master_goes_on() {
    let mut h = Harness::ready(2);
    assert_eq!(begin(&mut h), Ok(1));
    let why = "preflight: /srv/app/bin/app exited 1 in --preflight";
    h.policy.upgrade_refused(h.now, 1, why.into());
    h.pump_effects();
    let ended = upgrades_ended(&h);
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(
        (ended[0].outcome, ended[0].why.as_deref()),
        (UpgradeOutcome::Refused, Some(why))
    );
    let record = h.status().last_upgrade.expect("a record");
    assert_eq!(record.outcome, UpgradeOutcome::Refused);
    assert_eq!(record.ended_at_ms, Some(0));
    assert_eq!(h.policy.stats().upgrades_refused, 1);
    // Told twice, or of another upgrade: nothing more.
    h.policy.upgrade_refused(h.now, 1, why.into());
    h.pump_effects();
    assert_eq!(upgrades_ended(&h).len(), 1);
    assert_eq!(h.policy.stats().upgrades_refused, 1);
    // The master goes on, and may try again.
    assert_eq!(h.rolling_restart(), Some(Generation(2)));
    assert_eq!(begin(&mut h), Ok(2));
}

#[test]
fn the_upgraded_master_rolls_its_build_out_and_the_upgrade_ends_done_with_it() {
    let mut h = Harness::ready(3);
    let rolled = upgrade(&mut h, config(3));
    assert_eq!(rolled, Generation(2));
    assert_took!(h, Event::RolloutStarted { generation: 2 });
    assert!(
        h.step_effects()
            .any(|e| *e == Effect::OpenProgram(Generation(2))),
        "the new build's program is opened as any rollout's"
    );
    roll(&mut h, 1);
    let ended = upgrades_ended(&h);
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(
        (ended[0].outcome, ended[0].generation, ended[0].why.clone()),
        (UpgradeOutcome::Done, Some(Generation(2)), None)
    );
    assert_eq!(generations(&h), [2, 2, 2]);
    assert_eq!(h.policy.stats().upgrades_done, 1);
    assert_eq!(h.policy.stats().rollouts_done, 1);
}

#[test]
fn the_upgraded_masters_rollout_runs_the_canary_gate_and_a_failing_canary_aborts_the_upgrade() {
    let mut h = Harness::ready_with(canary_config(3));
    upgrade(&mut h, canary_config(3));
    assert_eq!(successors(&h), 1, "only the canary starts");
    let (canary, _) = h.starting(0);
    h.ready_worker(canary);
    h.exit_leaving();
    // The canary answers 50 % 5xx, the old generation none.
    answered(&mut h, canary, 100, 50);
    for old in of_generation(&h, 1) {
        answered(&mut h, old, 300, 0);
    }
    h.take_events();
    h.advance(secs(30));
    assert_took!(h, Event::RolloutAborted { generation: 2, .. });
    let ended = upgrades_ended(&h);
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].outcome, UpgradeOutcome::Aborted);
    let why = ended[0].why.clone().unwrap_or_default();
    assert!(
        why.starts_with("the rollout to generation 2 was aborted: the canary of generation 2"),
        "{why}"
    );
    // The last good program serves on.
    assert_eq!(h.status().good_generation, 1);
    assert_eq!(h.policy.stats().upgrades_aborted, 1);
    assert_eq!(begin(&mut h), Ok(2), "and a later upgrade may run");
}

#[test]
fn an_upgrade_follows_the_rolling_restart_that_supersedes_its_rollout() {
    let mut h = Harness::ready(2);
    upgrade(&mut h, config(2));
    assert_eq!(h.rolling_restart(), Some(Generation(3)));
    assert_eq!(
        upgrades_ended(&h),
        [],
        "superseded is no end of the upgrade"
    );
    roll(&mut h, 1);
    let ended = upgrades_ended(&h);
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(
        (ended[0].outcome, ended[0].generation),
        (UpgradeOutcome::Done, Some(Generation(3)))
    );
}

#[test]
fn a_stop_during_the_upgraded_masters_rollout_aborts_the_upgrade() {
    let mut h = Harness::ready(2);
    upgrade(&mut h, config(2));
    h.control(Control::Stop);
    let ended = upgrades_ended(&h);
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].outcome, UpgradeOutcome::Aborted);
    assert_eq!(
        ended[0].why.as_deref(),
        Some("the rollout to generation 2 was aborted: stopping")
    );
}
