//! A global allocator that counts, per thread, the allocations made: what a test needs to
//! say that a request path allocates nothing (or how much less), without a clock. Each test
//! runs on its own thread, so tests counting at once do not see each other.
//!
//! Included with `#[path]` by the tests that count (a crate has one global allocator, set where
//! this is included).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::task::{Context, Poll, Waker};

use tower_service::Service;

pub(crate) struct Counting;

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

/// The allocations made on this thread so far.
fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Drives `n` requests through `svc`; returns the allocations they made on this thread.
pub(crate) fn allocations_for<S: Service<R>, R>(
    svc: &mut S,
    mut req: impl FnMut() -> R,
    n: usize,
) -> u64
where
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    let before = allocations();
    for _ in 0..n {
        let r = req();
        assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
        match std::pin::pin!(svc.call(r)).poll(&mut cx) {
            Poll::Ready(res) => drop(res.unwrap()),
            Poll::Pending => panic!("the test service answers at once"),
        }
    }
    allocations() - before
}
