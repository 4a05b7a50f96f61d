//! The master reads every worker's `smaps_rollup` every sampling period: a reading allocates
//! nothing (its buffer is the sampler's, the path is built on the stack). A counting global
//! allocator counts the allocations of this test's thread while it reads.
//!
//! Its own test binary: a crate has one global allocator.

// GlobalAlloc is an unsafe trait; see the SAFETY comments.
#![allow(unsafe_code)]
// regiment-core/clippy.toml keeps the policy from files and processes; this test spawns one.
#![allow(clippy::disallowed_methods)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::process::{Command, Stdio};

use regiment_core::plumbing::MemorySampler;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // try_with: the allocator also runs while thread-locals are torn down.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, that is from the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The allocations `f` makes on this thread.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn readings_of_this_process_and_of_a_child_allocate_nothing() {
    let mut child = Command::new("sleep")
        .arg("600")
        .stdin(Stdio::null())
        .spawn()
        .expect("sleep runs");
    let pids = [std::process::id(), child.id()];
    let mut sampler = MemorySampler::new();
    let mut readings = 0;
    let allocated = allocations_in(|| {
        for _ in 0..100 {
            for pid in pids {
                let memory = sampler.read(pid).expect("a reading");
                assert!(memory.rss > 0);
                readings += 1;
            }
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(readings, 200);
    assert_eq!(allocated, 0, "allocations in 200 readings");
}

#[test]
fn the_counter_sees_the_allocations_of_a_plain_read() {
    // The instrument works: reading the same file the usual way allocates its buffer.
    let allocated = allocations_in(|| {
        let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
        assert!(text.contains("Pss:"));
    });
    assert!(allocated >= 1, "{allocated}");
}
