//! The `REGIMENT_*` environment overrides of the [`Builder`] options: one row per variable,
//! giving its name, its parser with its bounds (see [`RegimentVar`]) and the option it sets.

use std::path::PathBuf;

use super::applied_overrides::AppliedOverrides;
use super::builder::{Builder, WorkerCount};
use super::choices::WatchProgram;
use super::regiment_var::RegimentVar;
use super::restart_signals::parse_restart_signals;
use crate::Canary;
use crate::error::Result;
use crate::limits::MAX_WORKERS;
use crate::plumbing::PassedOnVariable;

/// What `REGIMENT_BIND` takes.
const ADDRESSES: &str = "addresses to listen on, HOST:PORT or unix:PATH, comma-separated";

/// A variable, and how its value, once parsed, sets the builder.
struct Override {
    name: &'static str,
    apply: fn(&mut Builder, &RegimentVar) -> Result<()>,
}

/// Rows of `name => |builder, var| assignment`; the assignment parses `var` with `?`.
macro_rules! overrides {
    ($($name:literal => |$b:ident, $v:ident| $set:expr,)*) => {
        &[$(Override {
            name: $name,
            apply: |$b, $v| {
                $set;
                Ok(())
            },
        },)*]
    };
}

/// Every override, in the order they apply.
#[rustfmt::skip]
const OVERRIDES: &[Override] = overrides! {
    "REGIMENT_WORKERS" => |b, v| b.workers =
        WorkerCount::Fixed(v.number_in(1..=MAX_WORKERS, "workers")?),
    "REGIMENT_BIND" => |b, v| {
        b.binds = v.text(ADDRESSES)?.split(',').map(str::trim).filter(|s| !s.is_empty())
            .map(str::to_owned).collect();
        if b.binds.is_empty() {
            return Err(v.refused(ADDRESSES));
        }
    },
    "REGIMENT_DRAIN_TIMEOUT" => |b, v| b.drain_timeout = v.duration()?,
    "REGIMENT_START_TIMEOUT" => |b, v| b.start_timeout = v.duration()?,
    "REGIMENT_MAX_SURGE" => |b, v| b.max_surge =
        Some(v.number(1, "a number of replacements of at least 1")?),
    "REGIMENT_BACKOFF_INITIAL" => |b, v| b.backoff_initial = v.duration()?,
    "REGIMENT_BACKOFF_MAX" => |b, v| b.backoff_max = v.duration()?,
    "REGIMENT_BACKOFF_RESET" => |b, v| b.backoff_reset = v.duration()?,
    "REGIMENT_ROLLOUT_FAILURE_LIMIT" => |b, v| b.rollout_failures =
        v.number(1, "a number of failed starts of at least 1")?,
    // Zero is a valid settle: the rollout completes at once.
    "REGIMENT_ROLLOUT_SETTLE" => |b, v| b.rollout_settle = v.duration_or_zero()?,
    "REGIMENT_ROLLOUT_TIMEOUT" => |b, v| b.rollout_timeout = Some(v.duration()?),
    "REGIMENT_READINESS" => |b, v| b.readiness = v.parsed()?,
    "REGIMENT_RESTART_SIGNAL" => |b, v| b.restart_signals =
        parse_restart_signals(v.name(), v.raw_text("restart signals, such as SIGHUP,SIGUSR1")?)?,
    "REGIMENT_PROCESS_NAME" => |b, v| b.process_name =
        Some(v.text("a name for the workers in ps")?.to_owned()),
    "REGIMENT_HEARTBEAT_INTERVAL" => |b, v| b.heartbeat = v.duration()?,
    "REGIMENT_HEARTBEAT_TIMEOUT" => |b, v| b.heartbeat_timeout = v.duration_or_off()?,
    "REGIMENT_UNRESPONSIVE_GRACE" => |b, v| b.unresponsive_grace = v.duration()?,
    // Zero is valid: no report, the kill at once.
    "REGIMENT_KILL_REPORT_TIMEOUT" => |b, v| b.kill_report_timeout = v.duration_or_zero()?,
    "REGIMENT_CONTROL_SOCKET" => |b, v| b.control_socket =
        Some(PathBuf::from(v.text("a path for the control socket")?)),
    "REGIMENT_WATCH" => |b, v| b.watch_program =
        if v.switch()? { WatchProgram::Reload } else { WatchProgram::Off },
    // Any of them turns the canary on, with the defaults for the others.
    "REGIMENT_CANARY_WORKERS" => |b, v| b.canary.get_or_insert_with(Canary::new).workers =
        v.number(1, "a number of workers of at least 1")?,
    "REGIMENT_CANARY_WINDOW" => |b, v| b.canary.get_or_insert_with(Canary::new).window =
        v.duration()?,
    "REGIMENT_CANARY_MAX_ERROR_RATIO" => |b, v| b.canary.get_or_insert_with(Canary::new)
        .max_error_ratio = v.fraction()?,
    "REGIMENT_CANARY_MIN_REQUESTS" => |b, v| b.canary.get_or_insert_with(Canary::new)
        .min_requests = v.number(0, "a number of requests")?,
    "REGIMENT_WORKER_USER" => |b, v| b.worker_user =
        Some(v.raw_text("a user name or number")?.to_owned()),
    "REGIMENT_WORKER_GROUP" => |b, v| b.worker_group =
        Some(v.raw_text("a group name or number")?.to_owned()),
    "REGIMENT_WORKER_ENV" => |b, v| b.worker_env = v.parsed()?,
    "REGIMENT_ADMIN_BIND" => |b, v| b.admin_bind =
        Some(v.text("an address for the admin endpoints, HOST:PORT or unix:PATH")?.to_owned()),
    "REGIMENT_MEMORY_BUDGET" => |b, v| b.memory_budget = Some(v.parsed()?),
};

/// Applies the variables `lookup` finds set, and notes each in the builder's
/// [`AppliedOverrides`](super::applied_overrides::AppliedOverrides). Each value is checked here, under the variable's own
/// name, so that an error names what the operator actually set; the checks of options
/// together, later, ask the notes which name to give.
pub(super) fn apply(builder: &mut Builder, lookup: &dyn Fn(&str) -> Option<String>) -> Result<()> {
    for row in OVERRIDES {
        if let Some(var) = RegimentVar::lookup(row.name, lookup) {
            (row.apply)(builder, &var)?;
            builder.applied_overrides.record(&var);
        }
    }
    Ok(())
}

/// Notes the variables workers read (regiment-axum's HTTP options) that `lookup` finds set:
/// options set by the environment too, which the start's log names with the others. Their
/// values are checked where they are read.
pub(super) fn note_passed_on_variables(
    applied: &mut AppliedOverrides,
    lookup: &dyn Fn(&str) -> Option<String>,
) {
    for var in PassedOnVariable::ALL {
        if let Some(var) = RegimentVar::lookup(var.name(), lookup) {
            applied.record(&var);
        }
    }
}

/// The names of the variables: README lists them all, and the master knows them as its own.
pub(super) fn names() -> impl Iterator<Item = &'static str> {
    OVERRIDES.iter().map(|row| row.name)
}
