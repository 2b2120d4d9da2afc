//! A counting global allocator: every binary, bench and test that links this crate
//! allocates through it.
//!
//! Each thread counts its own allocations, always: one thread-local increment per
//! allocation, the same cost for both libraries, so the throughput figures are not skewed
//! toward the library that allocates less. Counting per thread keeps a measurement exact
//! while other threads allocate (the test harness runs tests in parallel in one process),
//! and lets measurements nest (see [`Counting`]).

// The only `unsafe` in the crate: `GlobalAlloc` is an unsafe trait. Every method forwards
// to `System` with the caller's arguments unchanged, so `System`'s contract is upheld.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // `const` initialisation and a type without `Drop`: the slot lives in static TLS, so
    // touching it never allocates (which would recurse into the allocator).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Counts heap allocations (`alloc`, `alloc_zeroed` and `realloc` calls) per thread.
pub struct CountingAlloc;

#[inline]
fn note() {
    // `try_with` instead of `with`: never panic inside the allocator, even while a thread
    // is being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as for `dealloc`; `new_size` comes from the caller unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocations made by the calling thread since it started.
pub fn allocations() -> u64 {
    ALLOCATIONS.try_with(Cell::get).unwrap_or(0)
}

/// A measurement window on the calling thread: [`Counting::so_far`] is the number of
/// allocations this thread made since [`Counting::start`]. Windows may nest and overlap.
#[derive(Debug)]
pub struct Counting {
    start: u64,
}

impl Counting {
    /// Opens a window.
    pub fn start() -> Self {
        Counting { start: allocations() }
    }

    /// Allocations this thread made since the window opened.
    pub fn so_far(&self) -> u64 {
        allocations() - self.start
    }
}

/// Runs `f`; returns its result and the allocations the calling thread made inside it.
pub fn count<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let window = Counting::start();
    let r = f();
    (r, window.so_far())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_this_threads_allocations_only_and_windows_nest() {
        let (inner, outer) = {
            let outer = Counting::start();
            let (v, inner) = count(|| vec![1u8; 64]);
            drop(v);
            // Another thread allocates a lot inside this window; none of it is ours.
            let other = std::thread::spawn(|| {
                let vs: Vec<Vec<u8>> = (0..1000).map(|i| std::hint::black_box(vec![i as u8; 32])).collect();
                vs.len()
            });
            assert_eq!(other.join().expect("thread ran"), 1000);
            (inner, outer.so_far())
        };
        assert_eq!(inner, 1, "one fresh Vec is one allocation");
        // Spawning and joining a thread allocates a little on this thread, far below 1000.
        assert!(outer >= inner && outer < 100, "outer window counted {outer}");
    }
}
