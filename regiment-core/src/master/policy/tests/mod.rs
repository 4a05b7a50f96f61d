//! The policy on simulated time: one test per rule (`rules`), and a seeded simulation that
//! checks the rules as invariants over random histories (`simulation`).

mod rules;
mod simulation;
mod util;
