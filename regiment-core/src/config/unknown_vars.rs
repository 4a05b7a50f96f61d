//! The `REGIMENT_*` variables of the master's environment that no part of regiment reads: a
//! typo (`REGIMENT_WORKER=4` for `REGIMENT_WORKERS`) would otherwise be ignored without a word,
//! and the master run with an option its operator did not mean.

use crate::plumbing::PassedOnVariable;

/// What regiment's own tests and tools read from their environment, never a master: set by a
/// developer in the shell that runs the tests, they reach every master the tests start, which
/// must not warn about them. `REGIMENT_TEST_VERBOSE` is read by `tests/src/cluster.rs`, the
/// `REGIMENT_SIM_*` knobs by the policy's simulation (`master/policy/tests/simulation`).
const DEVELOPMENT: &[&str] = &[
    "REGIMENT_TEST_VERBOSE",
    "REGIMENT_SIM_SEED",
    "REGIMENT_SIM_STEPS",
    "REGIMENT_SIM_HISTORIES",
];

/// Every `REGIMENT_*` variable some part of regiment reads: the overrides of the options
/// (`overrides.rs`), those workers read (regiment-axum's HTTP options), those the master sets for
/// each worker (the worker contract, [`crate::worker_vars`]) and the development knobs.
fn known() -> impl Iterator<Item = &'static str> {
    super::overrides::names()
        .chain(PassedOnVariable::ALL.iter().map(|v| v.name()))
        .chain(crate::worker_vars::reset_for_workers().filter(|name| name.starts_with(PREFIX)))
        .chain(DEVELOPMENT.iter().copied())
}

const PREFIX: &str = "REGIMENT_";

/// A warning for each variable of `names` (those of an environment) that starts with
/// `REGIMENT_` and that regiment does not read, naming the closest known one when it is close
/// enough to be a typo of it. Values are never shown: a variable may hold a secret.
pub(super) fn unknown_variables<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut unknown: Vec<&str> = names
        .into_iter()
        .filter(|name| name.starts_with(PREFIX) && !known().any(|k| k == *name))
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    unknown
        .into_iter()
        .map(|name| match closest(name) {
            Some(known) => format!(
                "{name} is not a variable regiment reads, and is ignored: did you mean {known}?"
            ),
            None => format!("{name} is not a variable regiment reads, and is ignored"),
        })
        .collect()
}

/// The known name nearest to `name`, if a few edits away: at most a third of what follows
/// the prefix, and at least 2 (a letter missing, two swapped).
fn closest(name: &str) -> Option<&'static str> {
    let most = (name.len().saturating_sub(PREFIX.len()) / 3).max(2);
    known()
        .map(|k| (strsim::levenshtein(name, k), k))
        .filter(|(distance, _)| *distance <= most)
        .min()
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_is_reported_with_the_closest_known_variable() {
        let warnings = unknown_variables(["PATH", "REGIMENT_WORKER", "REGIMENT_WORKERS", "HOME"]);
        assert_eq!(
            warnings,
            [
                "REGIMENT_WORKER is not a variable regiment reads, and is ignored: did you mean \
              REGIMENT_WORKERS?"
            ]
        );
        let warnings = unknown_variables(["REGIMENT_DRAIN_TIMOUT", "REGIMENT_HEADER_READ_TIMOUT"]);
        assert!(
            warnings[0].ends_with("did you mean REGIMENT_DRAIN_TIMEOUT?"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].ends_with("did you mean REGIMENT_HEADER_READ_TIMEOUT?"),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_variable_far_from_every_known_one_is_reported_without_a_guess() {
        assert_eq!(
            unknown_variables(["REGIMENT_DEPLOY_TOKEN"]),
            ["REGIMENT_DEPLOY_TOKEN is not a variable regiment reads, and is ignored"]
        );
    }

    #[test]
    fn every_variable_regiment_reads_is_known() {
        let every = [
            // Overrides of the options, regiment-axum's, the worker contract, development.
            "REGIMENT_WORKERS",
            "REGIMENT_BIND",
            "REGIMENT_CANARY_MIN_REQUESTS",
            "REGIMENT_ADMIN_BIND",
            "REGIMENT_WORKER_ENV",
            "REGIMENT_MEMORY_BUDGET",
            "REGIMENT_HEADER_READ_TIMEOUT",
            "REGIMENT_IDLE_GRACE",
            "REGIMENT_HTTP2_KEEP_ALIVE",
            "REGIMENT_WORKER_ID",
            "REGIMENT_GENERATION",
            "REGIMENT_IPC_FD",
            "REGIMENT_READINESS",
            "REGIMENT_DRAIN_TIMEOUT_MS",
            "REGIMENT_HEARTBEAT_MS",
            "REGIMENT_TEST_VERBOSE",
            "REGIMENT_SIM_SEED",
        ];
        assert_eq!(unknown_variables(every), Vec::<String>::new());
        assert_eq!(
            unknown_variables(["NOT_REGIMENT_WORKER"]),
            Vec::<String>::new()
        );
    }
}
