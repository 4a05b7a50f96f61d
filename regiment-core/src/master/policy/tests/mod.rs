//! The policy on simulated time: one test per rule (`rules`), and a seeded simulation that
//! checks the rules as invariants over random histories (`simulation`).

// The tests pick a starting instant and read the simulation's knobs from the environment;
// only the policy itself is kept from the clock.
#![allow(clippy::disallowed_methods)]

mod rules;
mod simulation;
mod util;
