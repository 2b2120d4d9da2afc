//! A counting global allocator: every binary, bench and test that links this crate
//! allocates through it.
//!
//! Counting is off by default and then costs one relaxed load per allocation, so the
//! throughput figures are not skewed toward the library that allocates less. The drivers
//! switch it on around the calls they want to attribute (see [`Counting`]).

// The only `unsafe` in the crate: `GlobalAlloc` is an unsafe trait. Every method forwards
// to `System` with the caller's arguments unchanged, so `System`'s contract is upheld.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

static ENABLED: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Counts heap allocations (`alloc`, `alloc_zeroed` and `realloc` calls) while enabled.
pub struct CountingAlloc;

#[inline]
fn note() {
    if ENABLED.load(Relaxed) {
        ALLOCATIONS.fetch_add(1, Relaxed);
    }
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

/// The allocations counted so far (only while counting was enabled).
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Relaxed)
}

/// Counting switched on for as long as the guard lives. Not reentrant: the benchmarks are
/// single-threaded and never nest two guards.
#[must_use = "counting stops when the guard is dropped"]
pub struct Counting {
    start: u64,
}

impl Counting {
    /// Starts counting.
    pub fn start() -> Self {
        let start = allocations();
        ENABLED.store(true, Relaxed);
        Counting { start }
    }

    /// Allocations counted since `start`.
    pub fn so_far(&self) -> u64 {
        allocations() - self.start
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        ENABLED.store(false, Relaxed);
    }
}

/// Runs `f` with counting on; returns its result and the allocations it made.
pub fn count<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let guard = Counting::start();
    let r = f();
    let n = guard.so_far();
    drop(guard);
    (r, n)
}
