//! Options of a supervisor: the [`Builder`], the checked [`Config`] the master runs with, and
//! the `REGIMENT_*` variables of the master's environment that override the options.
//!
//! - `builder.rs`, `worker_options.rs`, `rollout_options.rs`, `kill_report_options.rs`: the
//!   [`Builder`] and its methods;
//!   `canary_options.rs`, `spawn_plan.rs`, `inherited_env.rs`, `choices.rs`: what they take (the defaults are in
//!   [`crate::defaults`]).
//! - `validated.rs`: [`Builder`] to [`Config`], each option checked under its name;
//!   `settings.rs`: [`Config`], grouped for those who take it.
//! - `overrides.rs`: the table of the overrides, variable by variable; `regiment_var.rs`: a
//!   `REGIMENT_*` variable as set, and the parsers of its value; `applied_overrides.rs`: which
//!   options the overrides set, for the errors and the start's log.
//! - `restart_signals.rs`: which signals may start a rolling restart.
//! - `program_path.rs`: the program workers run, resolved once.
//! - `memory_budget.rs`: the [`MemoryBudget`] and the text of its variable;
//!   `budget_resolution.rs`: the budget in bytes, against the memory limit read at build.
//! - `unknown_vars.rs`: the warnings about `REGIMENT_*` variables regiment does not read.

mod applied_overrides;
mod budget_resolution;
mod builder;
mod canary_options;
mod choices;
mod inherited_env;
mod kill_report_options;
mod memory_budget;
mod overrides;
mod program_path;
pub(crate) mod regiment_var;
mod restart_signals;
mod rollout_options;
mod settings;
mod spawn_plan;
mod unknown_vars;
mod validated;
mod worker_options;

#[cfg(test)]
mod overrides_tests;
#[cfg(test)]
mod tests;

pub use builder::Builder;
pub use canary_options::Canary;
pub use choices::{EnvOverrides, WatchProgram};
pub use inherited_env::WorkerEnv;
pub use memory_budget::MemoryBudget;
pub(crate) use program_path::master_path;
pub(crate) use settings::{Config, ListenSettings, MemorySettings, SpawnSettings};
pub use spawn_plan::{BeforeSpawn, SpawnPlan};
