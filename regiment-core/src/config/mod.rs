//! Options of a supervisor: the [`Builder`] with its defaults, the checked [`Config`] the
//! master runs with, and the `REGIMENT_*` environment overrides.
//!
//! - `builder.rs`, `worker_options.rs`, `rollout_options.rs`: the [`Builder`] and its methods;
//!   `spawn_plan.rs`: what they take (the defaults are in [`crate::defaults`]).
//! - `validated.rs`: [`Builder`] to [`Config`], each option checked under its name.
//! - `env.rs`: the table of environment overrides; `env_var.rs`: the parsers of their values;
//!   `from_env.rs`: which options they set, for the errors and the start's log.
//! - `signals.rs`: which signals may start a rolling restart.
//! - `unknown_vars.rs`: the warnings about `REGIMENT_*` variables regiment does not read.
//! - `choices.rs`: the two-way options ([`EnvOverrides`], [`WatchProgram`]).

mod builder;
mod choices;
mod env;
pub(crate) mod env_var;
mod from_env;
mod program_path;
mod restart_signals;
mod rollout_options;
mod spawn_plan;
mod unknown_vars;
mod validated;
mod worker_options;

#[cfg(test)]
mod env_tests;
#[cfg(test)]
mod tests;

pub use builder::Builder;
pub use choices::{EnvOverrides, WatchProgram};
pub use spawn_plan::{BeforeSpawn, SpawnPlan};
pub(crate) use validated::Config;
