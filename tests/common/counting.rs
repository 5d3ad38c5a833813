// Each test crate that counts uses a different part of this.
#![allow(dead_code)]

//! A global allocator that counts, per thread, the bytes currently
//! allocated and their peak.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static CURRENT: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

/// Counts one allocation or reallocation.
fn call() {
    let _ = CALLS.try_with(|calls| calls.set(calls.get() + 1));
}

fn add(bytes: i64) {
    // `try_with`: a thread being torn down may still free memory.
    let _ = CURRENT.try_with(|current| {
        let now = current.get() + bytes;
        current.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator;
// the counting touches only const-initialised thread-locals without
// destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            call();
            add(layout.size() as i64);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            call();
            add(layout.size() as i64);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            call();
            add(new_size as i64 - layout.size() as i64);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes this thread allocated and has not freed.
pub(crate) fn current() -> i64 {
    CURRENT.with(Cell::get)
}

/// Starts a new peak from the current figure.
pub(crate) fn reset_peak() {
    PEAK.with(|peak| peak.set(current()));
}

/// The most this thread had allocated at once since [`reset_peak`].
pub(crate) fn peak() -> i64 {
    PEAK.with(Cell::get)
}

/// How many allocations and reallocations this thread has made.
pub(crate) fn allocations() -> u64 {
    CALLS.with(Cell::get)
}
