//! A global allocator that counts what each thread holds, for tests of
//! what a step allocates (install it with
//! `#[global_allocator] static A: testkit::alloc::Counting = testkit::alloc::Counting;`).
//! Counted per thread, so tests running alongside do not count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Bytes this thread holds beyond where `peak_of` started, and the most.
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // try_with: a thread's last frees come after its locals are gone
    let _ = HELD.try_with(|h| {
        let now = h.get() + delta;
        h.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

pub struct Counting;

// SAFETY: every call is passed on to the system allocator unchanged; the
// counting touches only thread-local cells, which do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// `f`'s result and the most bytes this thread held during it beyond what
/// it held before.
pub fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    HELD.with(|h| h.set(0));
    PEAK.with(|p| p.set(0));
    let r = f();
    (r, PEAK.with(|p| p.get()).max(0) as usize)
}
