//! The regiment's memory in `regiment status`: the sum in use against the budget, where the
//! budget comes from, and the master's own part.
//!
//! ```text
//! memory: 143.2 MiB of 200.0 MiB budget (80% of limit 250.0 MiB, memory.max of /kubepods/pod1/app) · master 4.1 MiB
//! memory: 143.2 MiB of 1.5 GiB budget (fixed; limit 3.0 GiB, memory.max of /kubepods/pod1/app) · master 4.1 MiB
//! memory: 12.1 MiB, no budget (limit 2.1 GiB, the machine's memory) · master 4.1 MiB
//! memory: not read yet, 200.0 MiB budget (80% of limit 250.0 MiB, memory.max of /kubepods/pod1/app)
//! ```

use std::fmt::Write;

use regiment_core::events::{BudgetSource, MemoryLimitStatus, MemoryStatus};

use crate::describe::bytes;
use crate::printable::printable;

/// The `memory:` line, printable; `None` from a master of an earlier build, which says nothing
/// of memory (no limit, no budget, no reading), rather than a line that reads as if none were
/// set.
pub(crate) fn line(m: &MemoryStatus) -> Option<String> {
    let read = m.total > 0 || m.master.is_some();
    if !read && m.budget.is_none() && m.limit.is_none() {
        return None;
    }
    let limit = m.limit.as_ref().map(limit);
    let mut out = String::from("memory: ");
    let _ = match (read, m.budget) {
        (true, Some(b)) => write!(out, "{} of {} budget", bytes(m.total), bytes(b.bytes)),
        (true, None) => write!(out, "{}, no budget", bytes(m.total)),
        (false, Some(b)) => write!(out, "not read yet, {} budget", bytes(b.bytes)),
        (false, None) => write!(out, "not read yet, no budget"),
    };
    let source = match (m.budget.map(|b| b.source), limit) {
        (Some(BudgetSource::PercentOfLimit { percent }), Some(limit)) => {
            Some(format!("{percent}% of limit {limit}"))
        }
        (Some(BudgetSource::PercentOfLimit { percent }), None) => {
            Some(format!("{percent}% of the limit"))
        }
        (Some(BudgetSource::Fixed), Some(limit)) => Some(format!("fixed; limit {limit}")),
        (Some(BudgetSource::Fixed), None) => Some("fixed".into()),
        (None, Some(limit)) => Some(format!("limit {limit}")),
        // A source of a later build: its figure alone.
        (Some(_), limit) => limit.map(|limit| format!("limit {limit}")),
        (None, None) => None,
    };
    if let Some(source) = source {
        let _ = write!(out, " ({source})");
    }
    if let Some(master) = m.master {
        let _ = write!(out, " · master {}", bytes(master.pss));
    }
    Some(printable(&out).into_owned())
}

/// `250.0 MiB, memory.max of /kubepods/pod1/app`.
fn limit(l: &MemoryLimitStatus) -> String {
    format!("{}, {}", bytes(l.bytes), l.source)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn memory(json: serde_json::Value) -> MemoryStatus {
        serde_json::from_value(json).unwrap()
    }

    fn kubepods(bytes: u64) -> serde_json::Value {
        serde_json::json!({"bytes": bytes, "source": "memory.max of /kubepods/pod1/app"})
    }

    #[test]
    fn the_sum_reads_against_the_budget_and_where_the_budget_comes_from() {
        let master = serde_json::json!({"pss": 4_300_000, "uss": 3_000_000});
        let share = memory(serde_json::json!({
            "budget": {"bytes": 200 * MIB, "source": {"kind": "percent-of-limit", "percent": 80}},
            "limit": kubepods(250 * MIB),
            "total": 150_156_083,
            "master": master,
        }));
        assert_eq!(
            line(&share).unwrap(),
            "memory: 143.2 MiB of 200.0 MiB budget (80% of limit 250.0 MiB, memory.max of \
             /kubepods/pod1/app) · master 4.1 MiB"
        );
        let fixed = memory(serde_json::json!({
            "budget": {"bytes": 1500 * MIB, "source": {"kind": "fixed"}},
            "limit": kubepods(3072 * MIB),
            "total": 150_156_083,
            "master": master,
        }));
        assert_eq!(
            line(&fixed).unwrap(),
            "memory: 143.2 MiB of 1.5 GiB budget (fixed; limit 3.0 GiB, memory.max of \
             /kubepods/pod1/app) · master 4.1 MiB"
        );
        let none = memory(serde_json::json!({
            "limit": {"bytes": 2_254_857_830u64, "source": "the machine's memory"},
            "total": 12_687_769,
            "master": master,
        }));
        assert_eq!(
            line(&none).unwrap(),
            "memory: 12.1 MiB, no budget (limit 2.1 GiB, the machine's memory) · master 4.1 MiB"
        );
    }

    /// Before the master's first reading the sum is 0: said so, not shown as a regiment that
    /// holds nothing.
    #[test]
    fn before_the_first_reading_it_says_so() {
        let unread = memory(serde_json::json!({
            "budget": {"bytes": 200 * MIB, "source": {"kind": "percent-of-limit", "percent": 80}},
            "limit": kubepods(250 * MIB),
            "total": 0,
        }));
        assert_eq!(
            line(&unread).unwrap(),
            "memory: not read yet, 200.0 MiB budget (80% of limit 250.0 MiB, memory.max of \
             /kubepods/pod1/app)"
        );
        let unread = memory(serde_json::json!({"limit": kubepods(250 * MIB)}));
        assert_eq!(
            line(&unread).unwrap(),
            "memory: not read yet, no budget (limit 250.0 MiB, memory.max of /kubepods/pod1/app)"
        );
        // A master of an earlier build says nothing of memory: no line.
        assert_eq!(line(&memory(serde_json::json!({}))), None);
    }

    /// The limit's source names a cgroup: a path, which may hold any byte but NUL.
    #[test]
    fn the_limits_source_is_printed_escaped() {
        let odd = memory(serde_json::json!({
            "limit": {"bytes": 250 * MIB, "source": "memory.max of /a\u{1b}[2J"},
            "total": 12_687_769,
        }));
        assert_eq!(
            line(&odd).unwrap(),
            "memory: 12.1 MiB, no budget (limit 250.0 MiB, memory.max of /a\\u{1b}[2J)"
        );
    }
}
