//! A counting global allocator for the server processes: live heap bytes
//! and blocks (for memory per idle connection) and the bytes and blocks
//! allocated in total (for what a broadcast allocates per delivered
//! message). Counting is off until [`enable`] is called, so the throughput
//! runs pay one well-predicted branch per allocation and no atomic
//! read-modify-write; the sizes counted are those requested, without the
//! system allocator's own overhead.
//!
//! A binary opts in with
//! `#[global_allocator] static A: wscore_compare::counting::Counting = Counting;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering::Relaxed};

/// The allocator; see the module docs.
pub struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Starts counting. Blocks allocated before this are not counted when
/// they are freed either, so the live figures are only meaningful as
/// differences between two [`snapshot`]s taken after it.
pub fn enable() {
    ON.store(true, Relaxed);
}

/// What the allocator has counted so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct Snapshot {
    /// Live heap bytes (allocated minus freed).
    pub live: isize,
    /// Live blocks.
    pub blocks: isize,
    /// Bytes allocated in total (a `realloc` counts its growth).
    pub allocated: u64,
    /// Allocations in total (`alloc` and growing `realloc` calls).
    pub allocations: u64,
}

/// The counters now.
pub fn snapshot() -> Snapshot {
    Snapshot {
        live: LIVE.load(Relaxed),
        blocks: BLOCKS.load(Relaxed),
        allocated: ALLOCATED.load(Relaxed),
        allocations: ALLOCATIONS.load(Relaxed),
    }
}

fn counted_alloc(size: usize) {
    if ON.load(Relaxed) {
        LIVE.fetch_add(size as isize, Relaxed);
        BLOCKS.fetch_add(1, Relaxed);
        ALLOCATED.fetch_add(size as u64, Relaxed);
        ALLOCATIONS.fetch_add(1, Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged and only
// counts the sizes it was asked for.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            counted_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            counted_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        if ON.load(Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Relaxed);
            BLOCKS.fetch_sub(1, Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && ON.load(Relaxed) {
            let growth = new_size as isize - layout.size() as isize;
            LIVE.fetch_add(growth, Relaxed);
            if growth > 0 {
                ALLOCATED.fetch_add(growth as u64, Relaxed);
                ALLOCATIONS.fetch_add(1, Relaxed);
            }
        }
        p
    }
}
