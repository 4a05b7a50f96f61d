//! The load generator as its own process (`regiment-load --json`), so that it can be pinned
//! to its core and shares nothing with the runner.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use super::cores::Cores;
use super::server::Binaries;
use crate::load::{Measured, Protocol};

/// What every request asks for: `/pid`, which both servers answer with the same handler (the
/// process id as text). `/` is not: under regiment, `hello` formats the worker's slot and
/// generation there (500 more instructions a request, measured with callgrind), work of the
/// application that `plain_axum` does not have, and that would be counted as the engine's.
pub const PATH: &str = "/pid";

/// One load run's settings.
#[derive(Debug, Clone)]
pub struct Load {
    /// Connections open at once.
    pub connections: usize,
    /// How they speak.
    pub protocol: Protocol,
    /// Unmeasured time first.
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
}

/// Runs `load` against `addr` on `cores` and returns its figures.
pub fn run(
    bins: &Binaries,
    cores: &Cores,
    addr: SocketAddr,
    load: &Load,
) -> Result<Measured, String> {
    let protocol = match load.protocol {
        Protocol::KeepAlive => "keep-alive",
        Protocol::NewConnection => "new-connection",
        Protocol::H2 => "h2",
    };
    let out = cores
        .command(&bins.path("regiment-load"))
        .arg(addr.to_string())
        .arg("--path")
        .arg(PATH)
        .arg("--connections")
        .arg(load.connections.to_string())
        .arg("--protocol")
        .arg(protocol)
        .arg("--warmup")
        .arg(format!("{}ms", load.warmup.as_millis()))
        .arg("--duration")
        .arg(format!("{}ms", load.duration.as_millis()))
        .arg("--json")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run regiment-load: {e}"))?;
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "regiment-load printed no figures ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
