//! The requests a worker has in flight, kept where a thread other than the runtime's can read
//! them: a report taken before the master kills a hung worker lists what it was doing, and
//! its runtime, blocked, cannot be asked.
//!
//! A fixed slab of [`CAPACITY`] entries behind a mutex held only to copy one entry in or out
//! (no allocation, no call out while held), so that a reader never waits on a runtime thread
//! that is blocked: a runtime thread blocks in the application's code, never holding it.
//! Each entry keeps the method, the path without its query (at most [`MAX_PATH`] bytes), the
//! HTTP version and when the request came; never headers, bodies or query strings. Requests
//! past the capacity are counted, not listed.
//!
//! Read through [`crate::plumbing::in_flight_requests`], which shows an example.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many requests are listed at most; more in flight are counted in
/// [`InFlightSnapshot::unlisted`].
pub const CAPACITY: usize = 256;

/// The longest path kept, in bytes; a longer one is cut at a char boundary and marked `…`.
pub const MAX_PATH: usize = 256;

/// The longest method kept, in bytes (extension methods may be longer; they are cut).
const MAX_METHOD: usize = 16;

/// Where one request is listed, handed back when it finishes: `None` if the slab was full.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(Option<u16>);

#[derive(Clone, Copy)]
struct Entry {
    method: [u8; MAX_METHOD],
    method_len: u8,
    path: [u8; MAX_PATH],
    path_len: u16,
    path_cut: bool,
    version: &'static str,
    started: Option<Instant>,
}

impl Entry {
    const EMPTY: Entry = Entry {
        method: [0; MAX_METHOD],
        method_len: 0,
        path: [0; MAX_PATH],
        path_len: 0,
        path_cut: false,
        version: "",
        started: None,
    };
}

struct Slab {
    /// Which entries hold a request, one bit each.
    used: [u64; CAPACITY / 64],
    entries: [Entry; CAPACITY],
    /// Requests in flight that found the slab full.
    unlisted: u64,
}

/// The registry of one process's requests in flight (see the module docs).
pub(crate) struct InFlightRegistry {
    slab: Mutex<Slab>,
}

impl std::fmt::Debug for InFlightRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlightRegistry").finish_non_exhaustive()
    }
}

/// The prefix of `text` that fits in `max` bytes, cut at a char boundary; and whether it was
/// cut.
fn prefix(text: &str, max: usize) -> (&[u8], bool) {
    if text.len() <= max {
        return (text.as_bytes(), false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text.as_bytes()[..end], true)
}

impl InFlightRegistry {
    pub(crate) const fn new() -> Self {
        Self {
            slab: Mutex::new(Slab {
                used: [0; CAPACITY / 64],
                entries: [Entry::EMPTY; CAPACITY],
                unlisted: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slab> {
        // Nothing that can panic runs under the lock; a poisoned one is whole all the same.
        self.slab.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lists a request that came at `started`. `path` must be the path alone: the caller
    /// leaves the query out.
    #[inline]
    pub(crate) fn insert(
        &self,
        method: &str,
        path: &str,
        version: &'static str,
        started: Instant,
    ) -> Ticket {
        let (method, _) = prefix(method, MAX_METHOD);
        let (path, path_cut) = prefix(path, MAX_PATH);
        let mut slab = self.lock();
        let Some(word) = slab.used.iter().position(|w| *w != u64::MAX) else {
            slab.unlisted += 1;
            return Ticket(None);
        };
        let bit = slab.used[word].trailing_ones() as usize;
        slab.used[word] |= 1 << bit;
        let index = word * 64 + bit;
        let entry = &mut slab.entries[index];
        entry.method[..method.len()].copy_from_slice(method);
        entry.method_len = method.len() as u8;
        entry.path[..path.len()].copy_from_slice(path);
        entry.path_len = path.len() as u16;
        entry.path_cut = path_cut;
        entry.version = version;
        entry.started = Some(started);
        Ticket(Some(index as u16))
    }

    /// Takes a request off the list.
    #[inline]
    pub(crate) fn remove(&self, ticket: Ticket) {
        let mut slab = self.lock();
        match ticket.0 {
            Some(index) => {
                let index = usize::from(index);
                slab.used[index / 64] &= !(1 << (index % 64));
            }
            None => slab.unlisted = slab.unlisted.saturating_sub(1),
        }
    }

    /// The requests in flight at `now`, oldest first. Copies the slab under the lock, then
    /// builds the strings once it is released.
    pub(crate) fn snapshot(&self, now: Instant) -> InFlightSnapshot {
        let mut taken = Vec::with_capacity(CAPACITY);
        let unlisted = {
            let slab = self.lock();
            for (word, bits) in slab.used.iter().enumerate() {
                let mut bits = *bits;
                while bits != 0 {
                    let bit = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    taken.push(slab.entries[word * 64 + bit]);
                }
            }
            slab.unlisted
        };
        let mut requests: Vec<InFlightRequest> = taken
            .iter()
            .map(|e| {
                let path = String::from_utf8_lossy(&e.path[..usize::from(e.path_len)]);
                InFlightRequest {
                    method: String::from_utf8_lossy(&e.method[..usize::from(e.method_len)])
                        .into_owned(),
                    path: if e.path_cut {
                        format!("{path}…")
                    } else {
                        path.into_owned()
                    },
                    version: e.version,
                    age: e
                        .started
                        .map_or(Duration::ZERO, |s| now.saturating_duration_since(s)),
                }
            })
            .collect();
        requests.sort_by_key(|r| std::cmp::Reverse(r.age));
        InFlightSnapshot { requests, unlisted }
    }
}

/// The requests a worker had in flight at one instant: see
/// [`crate::plumbing::in_flight_requests`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlightSnapshot {
    /// Listed requests, oldest first, at most [`CAPACITY`].
    pub requests: Vec<InFlightRequest>,
    /// Requests in flight that were not listed: more than [`CAPACITY`] at once.
    pub unlisted: u64,
}

/// One request in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlightRequest {
    /// Its method (`GET`), cut at 16 bytes.
    pub method: String,
    /// Its path, without the query string; cut at [`MAX_PATH`] bytes and marked `…`.
    pub path: String,
    /// Its HTTP version (`HTTP/1.1`, `HTTP/2`).
    pub version: &'static str,
    /// How long it has been in flight.
    pub age: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_requests_until_they_finish_oldest_first() {
        let registry = InFlightRegistry::new();
        let t0 = Instant::now();
        let first = registry.insert("GET", "/a", "HTTP/1.1", t0);
        let second = registry.insert("POST", "/b", "HTTP/2", t0 + Duration::from_millis(5));
        let snapshot = registry.snapshot(t0 + Duration::from_millis(10));
        assert_eq!(
            snapshot.requests,
            [
                InFlightRequest {
                    method: "GET".into(),
                    path: "/a".into(),
                    version: "HTTP/1.1",
                    age: Duration::from_millis(10),
                },
                InFlightRequest {
                    method: "POST".into(),
                    path: "/b".into(),
                    version: "HTTP/2",
                    age: Duration::from_millis(5),
                },
            ]
        );
        registry.remove(first);
        let left = registry.snapshot(t0);
        assert_eq!(left.requests.len(), 1);
        assert_eq!(left.requests[0].path, "/b");
        registry.remove(second);
        assert_eq!(registry.snapshot(t0).requests, []);
    }

    #[test]
    fn past_its_capacity_requests_are_counted_not_listed() {
        let registry = InFlightRegistry::new();
        let now = Instant::now();
        let tickets: Vec<_> = (0..CAPACITY + 3)
            .map(|i| registry.insert("GET", &format!("/{i}"), "HTTP/1.1", now))
            .collect();
        let full = registry.snapshot(now);
        assert_eq!((full.requests.len(), full.unlisted), (CAPACITY, 3));
        for t in tickets {
            registry.remove(t);
        }
        let empty = registry.snapshot(now);
        assert_eq!((empty.requests.len(), empty.unlisted), (0, 0));
        // Entries freed are taken again.
        let t = registry.insert("GET", "/again", "HTTP/1.1", now);
        assert_eq!(registry.snapshot(now).requests[0].path, "/again");
        registry.remove(t);
    }

    #[test]
    fn long_paths_and_methods_are_cut_on_a_char_boundary() {
        let registry = InFlightRegistry::new();
        let now = Instant::now();
        let long = format!("/{}", "é".repeat(MAX_PATH));
        registry.insert("VERYLONGEXTENSIONMETHOD", &long, "HTTP/1.1", now);
        let listed = &registry.snapshot(now).requests[0];
        assert_eq!(listed.method, "VERYLONGEXTENSIO");
        assert!(listed.path.ends_with('…'), "{}", listed.path);
        assert!(listed.path.len() <= MAX_PATH + '…'.len_utf8());
        assert!(!listed.path.contains('\u{FFFD}'), "cut inside a char");
    }
}
