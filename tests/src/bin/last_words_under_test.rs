//! The fixture (see `tests::fixture`), except that the workers of generation 1 speak on their
//! IPC channel raw, without regiment's worker side: `ready`, then, once the master's drain
//! message arrives, a long run of heartbeats (`LAST_WORDS_KB` kilobytes, 1024 by default) and
//! `drain-abandoned` as the last frame, and exit 0 at once. The master reaps such a worker while
//! its channel still holds most of what it wrote: whether the exit is booked before or after its
//! last words are read shows in the `exited` event.

use std::io::{Read, Write};

use regiment_core::plumbing::{WorkerMessage, encode};
use tests::raw_worker::{spawned_by_a_master, take_channel};

fn main() {
    let raw = spawned_by_a_master()
        && std::env::var(regiment_core::worker_vars::GENERATION)
            .ok()
            .as_deref()
            == Some("1");
    if !raw {
        return tests::fixture::main("v2");
    }
    let mut channel = take_channel();
    channel
        .write_all(&encode(&WorkerMessage::Ready))
        .expect("say ready");
    // The master's only message is the drain: its frame, whatever it says.
    let mut len = [0u8; 4];
    channel
        .read_exact(&mut len)
        .expect("the drain frame's length");
    let mut drain = vec![0u8; u32::from_be_bytes(len) as usize];
    channel.read_exact(&mut drain).expect("the drain frame");

    let kb: usize = std::env::var("LAST_WORDS_KB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let heartbeat = encode(&WorkerMessage::Heartbeat {
        rss: 1 << 20,
        requests: 1,
        in_flight: 1,
        responses_5xx: 0,
        failures: 0,
        latency: None,
    });
    let mut words = Vec::with_capacity((kb << 10) + heartbeat.len());
    while words.len() < kb << 10 {
        words.extend_from_slice(&heartbeat);
    }
    words.extend_from_slice(&encode(&WorkerMessage::DrainAbandoned {
        in_flight: 1,
        connections: 1,
    }));
    channel.write_all(&words).expect("the last words");
    std::process::exit(0);
}
