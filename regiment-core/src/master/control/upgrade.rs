//! The control socket's upgrades of the master in place: `upgrade` begins one, `upgrade-outcome`
//! follows it to its end. The exec closes every connection, this one too: a client that waits
//! asks again the master that runs after it, which serves the same socket and knows the
//! upgrade by its number.

use std::time::{Duration, SystemTime};

use tokio::net::UnixStream;

use super::reply::{error, follow, send, send_frame};
use super::shared::Shared;
use crate::master::policy::PolicyConfig;
use crate::plumbing::control::{Answer, ErrorKind};

/// What an upgrade is given between its preflight and its rollout: the quiet moment the passed
/// preflight waits for to exec in (at most 10 s), and the new program's start until it took
/// over (a minute, as long as the service manager is told to wait by `EXTEND_TIMEOUT_USEC`).
const HANDOVER_ALLOWANCE: Duration = Duration::from_secs(70);

/// The time an upgrade over `workers` slots may take by `policy`: its preflight (bounded by the
/// start timeout), the handover ([`HANDOVER_ALLOWANCE`]) and the rollout of the new build
/// ([`PolicyConfig::time_allowed_for_rollout`]). The new master rolls out by its own options;
/// these are the ones a client can be told before the exec. With the defaults and 8 workers:
/// 30 s + 1 min 10 s + 4 min 5 s = 5 min 45 s.
pub(super) fn time_allowed(policy: &PolicyConfig, workers: usize) -> Duration {
    policy
        .start_timeout
        .saturating_add(HANDOVER_ALLOWANCE)
        .saturating_add(policy.time_allowed_for_rollout(workers))
}

/// Begins an upgrade: its number and the time it may take, or why none began.
pub(super) async fn begin(stream: &mut UnixStream, shared: &Shared) -> std::io::Result<()> {
    let handle = &shared.handle;
    match handle.upgrade().await {
        Ok(number) => {
            let allowed = time_allowed(&shared.policy, handle.status().workers_wanted);
            send_frame(stream, Answer::UpgradeBegun { number }, Some(allowed)).await
        }
        Err(why) => send(stream, error(ErrorKind::Refused, why)).await,
    }
}

/// Streams every event until upgrade `number` ended in this master, then its record (`None`
/// for an upgrade this master does not know). Each frame carries the time the upgrade has left,
/// counted from its start by the wall clock (the only clock that goes on across the exec), so
/// that a client that asks again after the exec is not given the whole time again.
pub(super) async fn outcome(
    stream: &mut UnixStream,
    shared: &Shared,
    number: u64,
) -> std::io::Result<()> {
    let handle = &shared.handle;
    let status = handle.status();
    let allowed = time_allowed(&shared.policy, status.workers_wanted);
    let started_at_ms = status
        .last_upgrade
        .filter(|u| u.number == number)
        .map(|u| u.started_at_ms);
    let left = || started_at_ms.map(|ms| allowed.saturating_sub(since_unix_ms(ms)));
    let record = follow(
        stream,
        handle.events(),
        handle.upgrade_outcome(number),
        left,
    )
    .await?;
    send(stream, Answer::Upgrade { record }).await
}

/// The time since `ms` after the Unix epoch; zero for a time to come (a clock set back).
fn since_unix_ms(ms: u64) -> Duration {
    let then = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
    SystemTime::now().duration_since(then).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upgrade_is_given_its_preflight_the_handover_and_a_rollout() {
        let policy = crate::Builder::new()
            .env_overrides(crate::EnvOverrides::Ignore)
            .into_config()
            .unwrap()
            .policy;
        // The figure the documentation gives: the defaults and 8 workers.
        assert_eq!(
            time_allowed(&policy, 8),
            Duration::from_secs(30 + 70 + 4 * 60 + 5)
        );
        let slow_start = PolicyConfig {
            start_timeout: Duration::from_secs(90),
            ..policy
        };
        assert_eq!(
            time_allowed(&slow_start, 8),
            Duration::from_secs(90 + 70) + slow_start.time_allowed_for_rollout(8)
        );
        let huge = PolicyConfig {
            start_timeout: Duration::MAX,
            ..policy
        };
        assert_eq!(time_allowed(&huge, 8), Duration::MAX, "saturates");
    }
}
