//! The fixture (see `tests::fixture`), except that its workers speak raw on their IPC channel:
//! `ready`, then valid heartbeats back to back, each written in two halves, their `requests`
//! counting up, as fast as the channel takes them; they exit at the first word from their
//! master (a drain). A master that tore or lost a frame as it handed its channels over to its
//! new program (an upgrade in place) would read garbage: an `invalid-message` event.

use std::io::{Read, Write};

use regiment_core::plumbing::{WorkerMessage, encode};
use tests::raw_worker::{spawned_by_a_master, take_channel};

fn main() {
    if !spawned_by_a_master() {
        return tests::fixture::main("v1");
    }
    let mut channel = take_channel();
    let reader = channel.try_clone().expect("a second handle on the channel");
    std::thread::spawn(move || {
        // The master writes nothing but drains: the first byte is one.
        let _ = (&reader).read(&mut [0u8; 1]);
        std::process::exit(0);
    });
    channel
        .write_all(&encode(&WorkerMessage::Ready))
        .expect("say ready");
    for requests in 0u64.. {
        let beat = encode(&WorkerMessage::Heartbeat {
            rss: 0,
            requests,
            in_flight: 0,
            responses_5xx: 0,
            failures: 0,
            latency: None,
        });
        // In two writes: a frame's bytes straddle the master's reads.
        let (first, second) = beat.split_at(beat.len() / 2);
        if channel.write_all(first).is_err() || channel.write_all(second).is_err() {
            std::process::exit(0);
        }
        // A stream the master keeps up with, on a loaded machine too.
        if requests % 16 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}
