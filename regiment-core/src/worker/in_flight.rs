//! The requests a worker has in flight, kept where a thread other than the runtime's can read
//! them: a report taken before the master kills a hung worker lists what it was doing, and
//! its runtime, blocked, cannot be asked.
//!
//! A fixed table of [`CAPACITY`] slots of atomics, written without a lock: a request takes a
//! free slot (one compare-and-swap on the slot its thread freed last, which is nearly always
//! free), writes its method (a code for the nine of RFC 9110, another's name), its path without
//! the query (at most [`MAX_PATH`] bytes), its HTTP version and when it came, and clears the
//! slot when it finishes; never headers, bodies or query strings. A slot's fields are written
//! between two bumps of its sequence number (a seqlock: one writer, the request that holds it),
//! so that a reader, which never waits on a writer, keeps only what it read whole. Requests past
//! the capacity are counted, not listed. What the request path pays for it is measured in
//! BENCHMARKS.md ("Latency buckets and the requests in flight": about 100 instructions, 0.75%
//! of a `hello` request's).
//!
//! Read through [`crate::plumbing::in_flight_requests`], which shows an example.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};

use crate::events::ReportedRequest;

/// How many requests are listed at most; more in flight are counted in
/// [`InFlightSnapshot::unlisted`].
pub const CAPACITY: usize = 256;

/// The longest path kept, in bytes; a longer one is cut at a char boundary and marked `…`.
pub const MAX_PATH: usize = 128;

/// The longest method kept, in bytes (extension methods may be longer; they are cut).
const MAX_METHOD: usize = 16;

const PATH_WORDS: usize = MAX_PATH / 8;
const METHOD_WORDS: usize = MAX_METHOD / 8;

/// The HTTP versions a slot names by number (0: unknown).
const VERSIONS: [&str; 6] = [
    "HTTP/?", "HTTP/0.9", "HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/3",
];

/// A request's HTTP version, as a slot keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionCode(u8);

impl VersionCode {
    /// The code of `version`.
    #[inline]
    pub fn of(version: http::Version) -> Self {
        Self(match version {
            http::Version::HTTP_09 => 1,
            http::Version::HTTP_10 => 2,
            http::Version::HTTP_11 => 3,
            http::Version::HTTP_2 => 4,
            http::Version::HTTP_3 => 5,
            _ => 0,
        })
    }

    fn name(self) -> &'static str {
        VERSIONS
            .get(usize::from(self.0))
            .copied()
            .unwrap_or(VERSIONS[0])
    }
}

/// The methods a slot names by number; 0: another, whose name the slot holds.
const METHODS: [(http::Method, &str); 9] = [
    (http::Method::GET, "GET"),
    (http::Method::POST, "POST"),
    (http::Method::PUT, "PUT"),
    (http::Method::DELETE, "DELETE"),
    (http::Method::HEAD, "HEAD"),
    (http::Method::PATCH, "PATCH"),
    (http::Method::OPTIONS, "OPTIONS"),
    (http::Method::CONNECT, "CONNECT"),
    (http::Method::TRACE, "TRACE"),
];

/// A request's method, as a slot keeps it: the code of one of the nine methods of RFC 9110,
/// or another's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListedMethod {
    /// Its place among the nine, plus one.
    Known(u8),
    /// Another method (an extension's), cut at 16 bytes when written.
    Other(http::Method),
}

impl ListedMethod {
    /// What a slot keeps of `method`: one jump on its variant (the nine carry no data), not a
    /// copy of its name; another method is cloned, its name written with the request. The
    /// clone hands the address of the request that holds it to a call the compiler cannot see
    /// into: on a hot path call [`ListedMethod::known`], and this out of line (in regiment-axum's
    /// `connection_close`, the whole request was copied for it: 52 instructions a request).
    #[inline]
    pub fn of(method: &http::Method) -> Self {
        Self::known(method).unwrap_or_else(|| Self::Other(method.clone()))
    }

    /// [`ListedMethod::of`] for one of the nine only, `None` for another: what a request's
    /// path takes where its address must not escape (the clone of another does escape it).
    #[inline]
    pub fn known(method: &http::Method) -> Option<Self> {
        METHODS
            .iter()
            .position(|(known, _)| method == known)
            .map(|i| Self::Known(i as u8 + 1))
    }
}

/// The name of the method of code `code` (not 0).
fn method_name(code: u8) -> &'static str {
    METHODS
        .get(usize::from(code).wrapping_sub(1))
        .map_or("?", |(_, name)| name)
}

/// Where one request is listed, handed back when it finishes: `None` if the table was full.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(Option<u16>);

/// One request's place in the table. Aligned to a cache line of its own: requests of
/// different threads do not write into each other's lines.
#[repr(align(64))]
struct Slot {
    /// Whether a request holds it: taken by compare-and-swap, given back by a store.
    taken: AtomicBool,
    /// Odd while the fields below are written, bumped twice by each request that takes it.
    seq: AtomicU32,
    /// When the request came, in nanoseconds on [`crate::latency::now_ns`]'s clock, made odd;
    /// 0: no request.
    started: AtomicU64,
    /// The method's code (see [`METHODS`]), the version's code and the path's length
    /// ([`MAX_PATH`] + 1: longer, cut), a byte each.
    shape: AtomicU32,
    /// The method's name, padded with zeros, when it has no code.
    method: [AtomicU64; METHOD_WORDS],
    path: [AtomicU64; PATH_WORDS],
}

impl Slot {
    const fn empty() -> Slot {
        Slot {
            taken: AtomicBool::new(false),
            seq: AtomicU32::new(0),
            started: AtomicU64::new(0),
            shape: AtomicU32::new(0),
            method: [const { AtomicU64::new(0) }; METHOD_WORDS],
            path: [const { AtomicU64::new(0) }; PATH_WORDS],
        }
    }
}

thread_local! {
    /// The slot this thread freed last: where it looks first.
    static HINT: Cell<u16> = const { Cell::new(0) };
}

/// The registry of one process's requests in flight (see the module docs).
pub(crate) struct InFlightRegistry {
    slots: [Slot; CAPACITY],
    /// Requests in flight that found the table full.
    unlisted: AtomicU64,
}

impl std::fmt::Debug for InFlightRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlightRegistry").finish_non_exhaustive()
    }
}

/// Writes `bytes` into `words`, eight to a word (the last one padded with zeros); `bytes` fits.
#[inline(always)]
fn store_bytes(words: &[AtomicU64], bytes: &[u8]) {
    let mut chunks = bytes.chunks_exact(8);
    let mut i = 0;
    for chunk in chunks.by_ref() {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        words[i].store(word, Ordering::Relaxed);
        i += 1;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        words[i].store(short_word(rest), Ordering::Relaxed);
    }
}

/// The 1 to 7 bytes of `rest` as a little-endian word, padded with zeros. Read in two or three
/// overlapping pieces whatever the length, not byte by byte nor by a copy of a variable length
/// (a call out of line): a handful of instructions for the end of every path.
#[inline(always)]
fn short_word(rest: &[u8]) -> u64 {
    let n = rest.len();
    if n >= 4 {
        let low = u32::from_le_bytes(rest[..4].try_into().expect("four bytes"));
        let high = u32::from_le_bytes(rest[n - 4..].try_into().expect("four bytes"));
        u64::from(low) | (u64::from(high) << (8 * (n - 4)))
    } else {
        let (first, middle, last) = (rest[0], rest[n / 2], rest[n - 1]);
        u64::from(first) | (u64::from(middle) << (8 * (n / 2))) | (u64::from(last) << (8 * (n - 1)))
    }
}

/// The first `len` bytes held in `words`.
fn load_bytes(words: &[AtomicU64], len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = words
        .iter()
        .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
        .collect();
    bytes.truncate(len);
    bytes
}

/// What a reader took of one slot.
struct Taken {
    started: u64,
    shape: u32,
    method: Vec<u8>,
    path: Vec<u8>,
}

impl InFlightRegistry {
    pub(crate) const fn new() -> Self {
        Self {
            slots: [const { Slot::empty() }; CAPACITY],
            unlisted: AtomicU64::new(0),
        }
    }

    /// Takes a free slot: the one this thread freed last if it is free, else the next free one.
    #[inline(always)]
    fn take_slot(&self) -> Option<usize> {
        let hint = usize::from(HINT.get()) % CAPACITY;
        let take = |i: usize| {
            let slot: &Slot = &self.slots[i];
            !slot.taken.load(Ordering::Relaxed)
                && slot
                    .taken
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
        };
        if take(hint) {
            return Some(hint);
        }
        self.take_slot_past(hint, take)
    }

    #[inline(never)]
    fn take_slot_past(&self, hint: usize, take: impl Fn(usize) -> bool) -> Option<usize> {
        (1..CAPACITY)
            .map(|k| (hint + k) % CAPACITY)
            .find(|&i| take(i))
    }

    /// Lists a request that came at `started_ns` (on [`crate::latency::now_ns`]'s clock).
    /// `path` must be the path alone: the caller leaves the query out.
    #[inline(always)]
    pub(crate) fn insert(
        &self,
        method: ListedMethod,
        path: &str,
        version: VersionCode,
        started_ns: u64,
    ) -> Ticket {
        let Some(index) = self.take_slot() else {
            self.unlisted.fetch_add(1, Ordering::Relaxed);
            return Ticket(None);
        };
        // At most MAX_PATH bytes, cut wherever they end: the reader cuts a char left in two.
        let kept = &path.as_bytes()[..path.len().min(MAX_PATH)];
        let slot = &self.slots[index];
        let seq = slot.seq.load(Ordering::Relaxed);
        slot.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        let code = match method {
            ListedMethod::Known(code) => code,
            ListedMethod::Other(other) => {
                Self::store_method_name(slot, other);
                0
            }
        };
        store_bytes(&slot.path, kept);
        // The path's length, MAX_PATH + 1 for a longer one (it fits in a byte).
        let length = path.len().min(MAX_PATH + 1) as u8;
        slot.shape.store(
            u32::from_le_bytes([code, version.0, length, 0]),
            Ordering::Relaxed,
        );
        // Made odd, as 0 means "no request"; the reader clears the bit again.
        slot.started.store(started_ns | 1, Ordering::Relaxed);
        slot.seq.store(seq.wrapping_add(2), Ordering::Release);
        Ticket(Some(index as u16))
    }

    /// Writes the name of a method without a code (cut at [`MAX_METHOD`] bytes) into `slot`,
    /// while its writer holds it. Out of line: the request path rarely takes it.
    #[cold]
    #[inline(never)]
    fn store_method_name(slot: &Slot, method: http::Method) {
        // A method is a token: ASCII, cut anywhere.
        let name = method.as_str().as_bytes();
        for word in &slot.method {
            word.store(0, Ordering::Relaxed);
        }
        store_bytes(&slot.method, &name[..name.len().min(MAX_METHOD)]);
    }

    /// Takes a request off the list.
    #[inline(always)]
    pub(crate) fn remove(&self, ticket: Ticket) {
        match ticket.0 {
            Some(index) => {
                let slot = &self.slots[usize::from(index)];
                slot.started.store(0, Ordering::Relaxed);
                slot.taken.store(false, Ordering::Release);
                HINT.set(index);
            }
            None => {
                self.unlisted.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Reads one slot whole, or `None` if it lists no request (or was rewritten over and over
    /// while read).
    fn read(slot: &Slot) -> Option<Taken> {
        for _ in 0..64 {
            let before = slot.seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let taken = Taken {
                started: slot.started.load(Ordering::Relaxed),
                shape: slot.shape.load(Ordering::Relaxed),
                method: load_bytes(&slot.method, MAX_METHOD),
                path: load_bytes(&slot.path, MAX_PATH),
            };
            fence(Ordering::Acquire);
            if slot.seq.load(Ordering::Relaxed) == before {
                return (taken.started != 0).then_some(taken);
            }
        }
        None
    }

    /// The requests in flight at `now_ns` (on [`crate::latency::now_ns`]'s clock), oldest
    /// first.
    pub(crate) fn snapshot(&self, now_ns: u64) -> InFlightSnapshot {
        let unlisted = self.unlisted.load(Ordering::Relaxed);
        let mut taken: Vec<Taken> = self
            .slots
            .iter()
            .filter(|s| s.taken.load(Ordering::Acquire))
            .filter_map(Self::read)
            .collect();
        taken.sort_by_key(|t| t.started);
        let requests = taken
            .into_iter()
            .map(|t| {
                let [method, version, path_len, _] = t.shape.to_le_bytes();
                let path_len = usize::from(path_len);
                let path = &t.path[..path_len.min(MAX_PATH)];
                // Its low bit set when written (see `insert`): taken off, never later than the start.
                let age_ns = now_ns.saturating_sub(t.started & !1);
                ReportedRequest {
                    method: match method {
                        0 => {
                            let name = t.method.split(|&b| b == 0).next().unwrap_or_default();
                            String::from_utf8_lossy(name).into_owned()
                        }
                        code => method_name(code).to_owned(),
                    },
                    path: if path_len > MAX_PATH {
                        format!("{}…", whole_chars(path))
                    } else {
                        String::from_utf8_lossy(path).into_owned()
                    },
                    version: VersionCode(version).name().to_owned(),
                    age_ms: age_ns / 1_000_000,
                }
            })
            .collect();
        InFlightSnapshot { requests, unlisted }
    }
}

/// The chars of `bytes`, a path cut at [`MAX_PATH`] bytes, up to the one the cut left in two (a
/// path is UTF-8: `http` takes no other).
fn whole_chars(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    let end = std::str::from_utf8(bytes).map_or_else(|e| e.valid_up_to(), |_| bytes.len());
    String::from_utf8_lossy(&bytes[..end])
}

/// The requests a worker had in flight at one instant: see
/// [`crate::plumbing::in_flight_requests`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlightSnapshot {
    /// Listed requests, oldest first, at most [`CAPACITY`]: method, path without the query
    /// (cut at [`MAX_PATH`] bytes and marked `…`), version, age.
    pub requests: Vec<ReportedRequest>,
    /// Requests in flight that were not listed: more than [`CAPACITY`] at once.
    pub unlisted: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTTP_11: VersionCode = VersionCode(3);
    const MS: u64 = 1_000_000;

    fn list(registry: &InFlightRegistry, method: &str, path: &str, started_ns: u64) -> Ticket {
        let method = ListedMethod::of(&method.parse().unwrap());
        registry.insert(method, path, HTTP_11, started_ns)
    }

    #[test]
    fn lists_requests_until_they_finish_oldest_first() {
        let registry = InFlightRegistry::new();
        let t0 = 1_000 * MS;
        let first = list(&registry, "GET", "/a", t0);
        let http2 = VersionCode::of(http::Version::HTTP_2);
        let second = registry.insert(
            ListedMethod::of(&http::Method::POST),
            "/b",
            http2,
            t0 + 5 * MS,
        );
        let snapshot = registry.snapshot(t0 + 10 * MS);
        assert_eq!(
            snapshot.requests,
            [
                ReportedRequest {
                    method: "GET".into(),
                    path: "/a".into(),
                    version: "HTTP/1.1".into(),
                    age_ms: 10,
                },
                ReportedRequest {
                    method: "POST".into(),
                    path: "/b".into(),
                    version: "HTTP/2".into(),
                    age_ms: 5,
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
        let now = 1_000 * MS;
        let tickets: Vec<_> = (0..CAPACITY + 3)
            .map(|i| list(&registry, "GET", &format!("/{i}"), now))
            .collect();
        let full = registry.snapshot(now);
        assert_eq!((full.requests.len(), full.unlisted), (CAPACITY, 3));
        for t in tickets {
            registry.remove(t);
        }
        let empty = registry.snapshot(now);
        assert_eq!((empty.requests.len(), empty.unlisted), (0, 0));
        // Entries freed are taken again.
        let t = list(&registry, "GET", "/again", now);
        assert_eq!(registry.snapshot(now).requests[0].path, "/again");
        registry.remove(t);
    }

    #[test]
    fn long_paths_and_methods_are_cut_on_a_char_boundary() {
        let registry = InFlightRegistry::new();
        let now = 1_000 * MS;
        let long = format!("/{}", "é".repeat(MAX_PATH));
        list(&registry, "VERYLONGEXTENSIONMETHOD", &long, now);
        let listed = &registry.snapshot(now).requests[0];
        assert_eq!(listed.method, "VERYLONGEXTENSIO");
        assert!(listed.path.ends_with('…'), "{}", listed.path);
        assert!(listed.path.len() <= MAX_PATH + '…'.len_utf8());
        assert!(!listed.path.contains('\u{FFFD}'), "cut inside a char");
    }

    #[test]
    fn paths_of_every_length_are_listed_whole_or_cut_and_marked() {
        let registry = InFlightRegistry::new();
        let now = 1_000 * MS;
        for len in 0..=MAX_PATH + 9 {
            // Bytes that differ from one place to the next, so a byte out of place shows.
            let path: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let ticket = list(&registry, "GET", &path, now);
            let listed = registry.snapshot(now).requests.remove(0).path;
            if len <= MAX_PATH {
                assert_eq!(listed, path, "length {len}");
            } else {
                assert_eq!(listed, format!("{}…", &path[..MAX_PATH]), "length {len}");
            }
            registry.remove(ticket);
        }
    }

    #[test]
    fn methods_are_listed_by_name_known_or_not() {
        let registry = InFlightRegistry::new();
        let now = 1_000 * MS;
        let names = [
            "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "CONNECT", "TRACE",
            "PROPFIND", "M", "GET2",
        ];
        for (i, name) in names.into_iter().enumerate() {
            let method: http::Method = name.parse().unwrap();
            let known = matches!(ListedMethod::of(&method), ListedMethod::Known(_));
            assert_eq!(known, i < 9, "{name}: the nine by code, the others by name");
            // Each in the slot the one before freed: a shorter name or a code wins over what
            // the one before left there.
            let ticket = list(&registry, name, "/", now);
            assert_eq!(registry.snapshot(now).requests[0].method, name);
            registry.remove(ticket);
        }
    }

    /// Requests taking and freeing slots on several threads while another reads: every entry
    /// read is one request's, whole (its method and path written by the same request).
    #[test]
    fn a_reader_sees_only_whole_entries_while_writers_rewrite_them() {
        const WRITERS: u32 = 3;
        let registry = InFlightRegistry::new();
        let now = 1_000 * MS;
        let enough = AtomicBool::new(false);
        let writers_left = AtomicU32::new(WRITERS);
        // Each writer keeps one request listed at all times: the next is listed before the
        // last is taken off.
        let write = |writer: u32| {
            let mut listed = None;
            for round in 0..2_000_000u32 {
                if enough.load(Ordering::Relaxed) {
                    break;
                }
                let n = writer * 10_000_000 + round;
                let path = format!("/{n}/{}", "x".repeat((n % 90) as usize));
                let method = format!("M{}", n % 1000);
                let ticket = list(&registry, &method, &path, now);
                if let Some(last) = listed.replace(ticket) {
                    registry.remove(last);
                }
            }
            if let Some(last) = listed {
                registry.remove(last);
            }
            writers_left.fetch_sub(1, Ordering::Relaxed);
        };
        let read = || {
            let mut seen = 0;
            // Until enough entries are checked, or the writers are done.
            while seen < 2_000 && writers_left.load(Ordering::Relaxed) > 0 {
                for r in registry.snapshot(now).requests {
                    let n: u32 = r.path[1..].split('/').next().unwrap().parse().unwrap();
                    assert_eq!(r.method, format!("M{}", n % 1000), "{r:?}");
                    assert_eq!(r.path, format!("/{n}/{}", "x".repeat((n % 90) as usize)));
                    seen += 1;
                }
            }
            enough.store(true, Ordering::Relaxed);
            seen
        };
        let seen = std::thread::scope(|scope| {
            for writer in 0..WRITERS {
                scope.spawn(move || write(writer));
            }
            scope.spawn(read).join().unwrap()
        });
        assert!(
            seen >= 2_000,
            "only {seen} entries read while the writers wrote"
        );
        assert_eq!(registry.snapshot(now).requests, []);
    }
}
