//! The memory budget resolved at build, against the memory limit read once then: the
//! [`MemorySettings`] the status shows (the limit always, the budget when one is configured),
//! whose budget's bytes the policy keeps the regiment under.

use super::memory_budget::{Budget, MIB, MemoryBudget};
use super::settings::MemorySettings;
use crate::container::MemoryLimit;
use crate::error::{Error, Result};
use crate::events::{BudgetSource, MemoryBudgetStatus, MemoryLimitStatus};

/// `budget` (given under `option`: `memory_budget` or `REGIMENT_MEMORY_BUDGET`) in bytes
/// against `limit`. Refused: a share outside 1 to 100 percent, and a budget below 1 MB, which
/// even the master alone passes. A fixed budget above the limit is kept, with a warning: it
/// may be meant for the production container, and this machine (a laptop, a CI runner) has
/// less.
pub(super) fn resolve(
    budget: Option<MemoryBudget>,
    option: &'static str,
    limit: &MemoryLimit,
) -> Result<MemorySettings> {
    let limit_status = MemoryLimitStatus {
        bytes: limit.bytes,
        source: limit.source.to_string(),
    };
    let Some(budget) = budget else {
        return Ok(MemorySettings {
            budget: None,
            limit: Some(limit_status),
        });
    };
    let resolved = match budget.0 {
        Budget::Fixed(bytes) => MemoryBudgetStatus {
            bytes,
            source: BudgetSource::Fixed,
        },
        Budget::PercentOfLimit(percent) if (1..=100).contains(&percent) => MemoryBudgetStatus {
            bytes: share(limit.bytes, percent),
            source: BudgetSource::PercentOfLimit { percent },
        },
        Budget::PercentOfLimit(_) => {
            return Err(Error::invalid(
                option,
                budget,
                "a share of the memory limit from 1 to 100 percent \
                 (MemoryBudget::percent_of_limit, REGIMENT_MEMORY_BUDGET=80%)",
            ));
        }
    };
    if resolved.bytes < MIB {
        let expected = match resolved.source {
            BudgetSource::PercentOfLimit { .. } => format!(
                "a share that comes to at least 1 MB of the memory limit ({}, {}): this one is {}",
                shown(limit.bytes),
                limit_status.source,
                shown(resolved.bytes)
            ),
            _ => "a budget of at least 1 MB".to_owned(),
        };
        return Err(Error::invalid(option, budget, expected));
    }
    if resolved.bytes > limit.bytes {
        tracing::warn!(
            target: "regiment",
            "the memory budget ({budget}, `{option}`) is above the memory limit ({}, {}): the \
             kernel's OOM killer acts before the budget can; give a budget below the limit, or \
             a share of it (such as 80%)",
            shown(limit.bytes),
            limit_status.source
        );
    }
    let given = match resolved.source {
        BudgetSource::PercentOfLimit { percent } => format!("{percent}% of the limit"),
        _ => "fixed".to_owned(),
    };
    tracing::info!(
        target: "regiment",
        "memory budget {} ({given}); memory limit {} ({})",
        shown(resolved.bytes),
        shown(limit.bytes),
        limit_status.source
    );
    Ok(MemorySettings {
        budget: Some(resolved),
        limit: Some(limit_status),
    })
}

/// `percent` percent of `bytes`, rounded down (never above `bytes`: no overflow).
fn share(bytes: u64, percent: u8) -> u64 {
    let share = u128::from(bytes) * u128::from(percent) / 100;
    u64::try_from(share).unwrap_or(bytes)
}

/// `1500 MB`, or `0.5 MB` when not a whole number of MB (2^20 bytes).
fn shown(bytes: u64) -> String {
    if bytes.is_multiple_of(MIB) {
        format!("{} MB", bytes / MIB)
    } else {
        format!("{:.1} MB", bytes as f64 / MIB as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::fixtures::fixture;
    use crate::container::{LimitSource, memory_limit_under};
    use crate::test_support::capture_log;

    /// The limit of a container of Kubernetes (cgroup v2): 2900 MB, by its pods' slice.
    fn kubepods() -> MemoryLimit {
        memory_limit_under(&fixture("v2-kubepods"))
    }

    const KUBEPODS: u64 = 3_040_550_912;
    const KUBEPODS_SOURCE: &str = "memory.max of /sys/fs/cgroup/kubepods.slice";

    fn resolved(budget: MemoryBudget, limit: &MemoryLimit) -> MemorySettings {
        resolve(Some(budget), "memory_budget", limit).expect("accepted")
    }

    fn refusal(budget: MemoryBudget, limit: &MemoryLimit) -> String {
        match resolve(Some(budget), "memory_budget", limit) {
            Ok(settings) => panic!("{budget} accepted: {settings:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_limit_is_the_cgroups_with_its_source_budget_or_not() {
        let limit = kubepods();
        let expected = MemoryLimitStatus {
            bytes: KUBEPODS,
            source: KUBEPODS_SOURCE.into(),
        };
        let none = resolve(None, "memory_budget", &limit).unwrap();
        assert_eq!((none.budget, none.limit.as_ref()), (None, Some(&expected)));
        let some = resolved(MemoryBudget::mb(100), &limit);
        assert_eq!(some.limit, Some(expected));
        let machine = memory_limit_under(&fixture("v2-unlimited"));
        let settings = resolve(None, "memory_budget", &machine).unwrap();
        assert_eq!(
            settings.limit.map(|l| (l.bytes, l.source)),
            Some((24_683_772 * 1024, "the machine's memory".into()))
        );
    }

    #[test]
    fn a_share_is_that_percent_of_the_limit() {
        let limit = kubepods();
        let settings = resolved(MemoryBudget::percent_of_limit(80), &limit);
        assert_eq!(
            settings.budget,
            Some(MemoryBudgetStatus {
                bytes: KUBEPODS * 80 / 100,
                source: BudgetSource::PercentOfLimit { percent: 80 },
            })
        );
        let all = resolved(MemoryBudget::percent_of_limit(100), &limit);
        assert_eq!(all.budget.map(|b| b.bytes), Some(KUBEPODS));
        // Whatever the limit, no overflow.
        let huge = MemoryLimit {
            bytes: u64::MAX,
            source: LimitSource::Machine,
        };
        let settings = resolved(MemoryBudget::percent_of_limit(100), &huge);
        assert_eq!(settings.budget.map(|b| b.bytes), Some(u64::MAX));
    }

    #[test]
    fn a_fixed_budget_is_its_size_whatever_the_limit() {
        let settings = resolved(MemoryBudget::mb(1500), &kubepods());
        assert_eq!(
            settings.budget,
            Some(MemoryBudgetStatus {
                bytes: 1500 << 20,
                source: BudgetSource::Fixed,
            })
        );
    }

    #[test]
    fn shares_outside_1_to_100_percent_and_budgets_below_1_mb_are_refused() {
        let limit = kubepods();
        for percent in [0, 101, 255] {
            let e = refusal(MemoryBudget::percent_of_limit(percent), &limit);
            assert_eq!(
                e,
                format!(
                    "invalid value \"{percent}%\" for option `memory_budget`: expected a share \
                     of the memory limit from 1 to 100 percent (MemoryBudget::percent_of_limit, \
                     REGIMENT_MEMORY_BUDGET=80%)"
                )
            );
        }
        let e = refusal(MemoryBudget::mb(0), &limit);
        assert_eq!(
            e,
            "invalid value \"0MB\" for option `memory_budget`: expected a budget of at least 1 MB"
        );
        // 1 % of a 50 MB limit is half a MB.
        let small = MemoryLimit {
            bytes: 50 << 20,
            source: LimitSource::Machine,
        };
        let e = refusal(MemoryBudget::percent_of_limit(1), &small);
        assert!(
            e.contains("`memory_budget`")
                && e.contains("\"1%\"")
                && e.contains("at least 1 MB of the memory limit (50 MB, the machine's memory)")
                && e.contains("this one is 0.5 MB"),
            "{e}"
        );
    }

    /// A budget above the limit cannot act before the OOM killer: kept, since it may be meant
    /// for another machine than this one, but said at build, under the name it was given.
    #[test]
    fn a_fixed_budget_above_the_limit_is_kept_with_a_warning() {
        let limit = kubepods();
        let (settings, log) = capture_log(|| {
            resolve(
                Some(MemoryBudget::mb(4000)),
                "REGIMENT_MEMORY_BUDGET",
                &limit,
            )
            .unwrap()
        });
        assert_eq!(settings.budget.map(|b| b.bytes), Some(4000 << 20));
        assert!(
            log.contains(
                "WARN regiment: the memory budget (4000MB, `REGIMENT_MEMORY_BUDGET`) is above \
                 the memory limit (2899.7 MB, memory.max of /sys/fs/cgroup/kubepods.slice): the \
                 kernel's OOM killer acts before the budget can"
            ),
            "{log}"
        );
        let (_, log) = capture_log(|| resolved(MemoryBudget::mb(2000), &limit));
        assert!(!log.contains("WARN"), "{log}");
    }

    #[test]
    fn the_budget_and_the_limit_are_logged_at_build() {
        let (_, log) = capture_log(|| resolved(MemoryBudget::percent_of_limit(50), &kubepods()));
        assert!(
            log.contains(
                "INFO regiment: memory budget 1449.8 MB (50% of the limit); memory limit \
                 2899.7 MB (memory.max of /sys/fs/cgroup/kubepods.slice)"
            ),
            "{log}"
        );
        let (_, log) = capture_log(|| resolve(None, "memory_budget", &kubepods()).unwrap());
        assert!(!log.contains("memory budget"), "{log}");
    }
}
