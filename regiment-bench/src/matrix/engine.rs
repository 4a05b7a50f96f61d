//! The engine's cost at one worker, in time: plain `axum::serve` against `hello` with one
//! worker, criteria off and on, placed as the bar of the benchmark asks (the generator on one
//! core, the server on the others, when `taskset` can pin; unpinned otherwise), and nothing
//! else, so that many rounds fit in a few minutes. The throughput section measures the same
//! three rows among many others; `regiment-bench/scripts/instructions.sh` counts their
//! instructions.

use super::server::{Criteria, HelloSetup, Server};
use super::{Settings, throughput};

/// Runs the section.
pub fn run(settings: &Settings) -> Result<(String, serde_json::Value), String> {
    let placement = settings
        .placements()
        .pop()
        .ok_or("no placement to measure")?;
    let hello = |criteria| {
        Server::Hello(HelloSetup {
            criteria,
            ..HelloSetup::steady(1)
        })
    };
    let servers = [Server::Plain, hello(Criteria::Off), hello(Criteria::On)];
    let compared = throughput::compare(settings, &placement, &servers, "engine")?;
    Ok((compared.markdown, compared.json))
}
