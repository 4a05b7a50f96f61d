//! The fixture (see `tests::fixture`), except that the worker in slot `FLOOD_SLOT` floods its
//! IPC channel: it says `ready` (raw, without regiment's worker side), then writes, as fast as
//! the channel takes them, rounds of valid heartbeats, garbage frames and oversized frames,
//! `FLOOD_MB` megabytes in all (256 by default). It says on stderr how much it wrote, every
//! 16 MB and at the end (`flood: N MB written`), then stays up, silent, without serving.

use std::io::Write;

use regiment_core::plumbing::{WorkerMessage, encode};
use tests::raw_worker::{spawned_by_a_master, take_channel};

fn main() {
    let flooding = spawned_by_a_master()
        && std::env::var(regiment_core::worker_vars::WORKER_ID).ok()
            == std::env::var("FLOOD_SLOT").ok();
    if !flooding {
        return tests::fixture::main("v1");
    }
    // Blocking: the flood goes as fast as the master reads, no faster.
    let mut channel = take_channel();
    let total_mb: usize = std::env::var("FLOOD_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    channel
        .write_all(&encode(&WorkerMessage::Ready))
        .expect("say ready");
    let round = flood_round();
    let mut written = 0usize;
    let mut reported = 0usize;
    while written < total_mb << 20 {
        channel.write_all(&round).expect("flood the channel");
        written += round.len();
        if written >> 24 > reported {
            reported = written >> 24;
            say(&format!("flood: {} MB written\n", written >> 20));
        }
    }
    say(&format!("flood: {total_mb} MB written, done\n"));
    // Stays up: a worker that stopped flooding is still a worker, for the test to find alive.
    loop {
        std::thread::park();
    }
}

/// Writes `line` on stderr in one write: `eprintln!` writes its pieces one by one (stderr is
/// unbuffered), and the master's log lines, on the same pipe, came between `flood: ` and the
/// rest (CI saw `flood: ` then a whole log line, then `16 MB written`).
fn say(line: &str) {
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// About 1 MB of frames: valid heartbeats, frames that are not protocol messages, and one
/// frame of 900 KB, over the limit, with its bytes.
fn flood_round() -> Vec<u8> {
    let mut round = Vec::new();
    let heartbeat = encode(&WorkerMessage::Heartbeat {
        rss: 1 << 20,
        requests: 1,
        in_flight: 0,
        responses_5xx: 0,
        failures: 0,
        latency: None,
    });
    for _ in 0..1000 {
        round.extend_from_slice(&heartbeat);
        round.extend_from_slice(&7u32.to_be_bytes());
        round.extend_from_slice(b"\xff{{{\x00}}");
    }
    // Over the master's frame limit (64 KB): reported, and its bytes skipped as they come.
    let big = 900 * 1024;
    round.extend_from_slice(&(big as u32).to_be_bytes());
    round.resize(round.len() + big, b'x');
    round
}
