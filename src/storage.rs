//! `PageStore` on a relation's shared buffers: the one place index pages are
//! locked, changed and WAL-logged.
//!
//! A `read` holds a share lock on one buffer while its closure runs. A
//! `write` is the write guard: exclusive lock, then (for a logged store) a
//! GenericXLog record covering exactly the closure's changes, or no record
//! when the closure changed nothing. `extend` adds a page under the
//! relation extension lock and logs it as a full image. An unlogged store
//! (index builds) only marks buffers dirty; the build logs every page with
//! `log_newpage_range` once it is done.

use pagestore::{BlockNumber, PageStore, PAGE_SIZE};
use pgrx::pg_sys;
use std::cell::Cell;

pub struct BufferStore {
    rel: pg_sys::Relation,
    fork: pg_sys::ForkNumber::Type,
    wal: bool,
    /// Blocks known to exist; refreshed when a link points beyond it.
    known_blocks: Cell<BlockNumber>,
}

const _: () = assert!(PAGE_SIZE == pg_sys::BLCKSZ as usize);

impl BufferStore {
    /// Pages of `rel`'s main fork, every change WAL-logged when the
    /// relation needs WAL (not for unlogged or temporary indexes).
    pub fn logged(rel: pg_sys::Relation) -> Self {
        // SAFETY: rel is an open index relation (callers get it from Postgres).
        let wal = unsafe { relation_needs_wal(rel) };
        Self::new(rel, pg_sys::ForkNumber::MAIN_FORKNUM, wal)
    }

    /// Pages of `rel`'s `fork`, changed without WAL (bulk builds).
    pub fn unlogged(rel: pg_sys::Relation, fork: pg_sys::ForkNumber::Type) -> Self {
        Self::new(rel, fork, false)
    }

    fn new(rel: pg_sys::Relation, fork: pg_sys::ForkNumber::Type, wal: bool) -> Self {
        let store = BufferStore {
            rel,
            fork,
            wal,
            known_blocks: Cell::new(0),
        };
        store.known_blocks.set(store.nblocks());
        store
    }

    pub fn relation(&self) -> pg_sys::Relation {
        self.rel
    }

    /// Writes every page of the fork to WAL as a full image (after an
    /// unlogged build of a relation that needs WAL, or of an init fork).
    pub fn log_all_pages(&self) {
        let n = self.nblocks();
        if n > 0 {
            // SAFETY: rel is open and locked by the caller (index build);
            // every block below n exists and has a standard page layout.
            unsafe { pg_sys::log_newpage_range(self.rel, self.fork, 0, n, true) };
        }
    }

    fn read_buffer(&self, block: BlockNumber) -> pg_sys::Buffer {
        // SAFETY: rel is open; a block beyond the end raises an ERROR in
        // ReadBufferExtended, it does not crash.
        unsafe {
            pg_sys::ReadBufferExtended(
                self.rel,
                self.fork,
                block,
                pg_sys::ReadBufferMode::RBM_NORMAL,
                std::ptr::null_mut(),
            )
        }
    }
}

/// # Safety
/// `rel` must be a valid, open relation.
pub unsafe fn relation_needs_wal(rel: pg_sys::Relation) -> bool {
    // SAFETY: rel is valid per the contract; this is RelationNeedsWAL for
    // the cases an index can be in (permanent, unlogged or temporary).
    unsafe {
        (*(*rel).rd_rel).relpersistence == pg_sys::RELPERSISTENCE_PERMANENT as std::ffi::c_char
    }
}

/// # Safety
/// `buf` must be pinned.
unsafe fn page_bytes<'a>(buf: pg_sys::Buffer) -> &'a mut [u8] {
    // SAFETY: a pinned buffer's page is BLCKSZ bytes of shared memory that
    // stays in place while pinned; callers hold the matching content lock.
    unsafe { std::slice::from_raw_parts_mut(pg_sys::BufferGetPage(buf) as *mut u8, PAGE_SIZE) }
}

impl PageStore for BufferStore {
    fn nblocks(&self) -> BlockNumber {
        // SAFETY: rel is open.
        let n = unsafe { pg_sys::RelationGetNumberOfBlocksInFork(self.rel, self.fork) };
        self.known_blocks.set(n);
        n
    }

    fn contains(&self, block: BlockNumber) -> bool {
        block < self.known_blocks.get() || block < self.nblocks()
    }

    fn read<R>(&self, block: BlockNumber, f: impl FnOnce(&[u8]) -> R) -> R {
        let buf = self.read_buffer(block);
        // SAFETY: buf is pinned; the share lock keeps the page stable while
        // f reads it; the lock and pin are released right after (or by
        // error cleanup if f raises).
        unsafe {
            pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_SHARE as i32);
            let r = f(page_bytes(buf));
            pg_sys::UnlockReleaseBuffer(buf);
            r
        }
    }

    fn write<R>(&self, block: BlockNumber, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let buf = self.read_buffer(block);
        // SAFETY: buf is pinned and exclusively locked while f changes the
        // page. With WAL, f changes GenericXLog's copy of the page and
        // GenericXLogFinish applies it to the buffer and logs the delta in
        // one critical section; without WAL (an index build) the page is
        // changed in place and marked dirty.
        unsafe {
            pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
            let r = if self.wal {
                let state = pg_sys::GenericXLogStart(self.rel);
                let copy = pg_sys::GenericXLogRegisterBuffer(state, buf, 0);
                let copy = std::slice::from_raw_parts_mut(copy as *mut u8, PAGE_SIZE);
                let r = f(copy);
                if copy == &page_bytes(buf)[..] {
                    pg_sys::GenericXLogAbort(state);
                } else {
                    pg_sys::GenericXLogFinish(state);
                }
                r
            } else {
                let r = f(page_bytes(buf));
                pg_sys::MarkBufferDirty(buf);
                r
            };
            pg_sys::UnlockReleaseBuffer(buf);
            r
        }
    }

    fn extend<R>(&self, f: impl FnOnce(BlockNumber, &mut [u8]) -> R) -> R {
        // SAFETY: the extension lock serialises adding blocks; the new
        // buffer is pinned and exclusively locked before the extension lock
        // is released, so nobody else initialises it. Logging as in `write`,
        // with a full image since the page is new.
        unsafe {
            pg_sys::LockRelationForExtension(self.rel, pg_sys::ExclusiveLock as i32);
            let buf = self.read_buffer(pg_sys::InvalidBlockNumber); // P_NEW
            pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
            pg_sys::UnlockRelationForExtension(self.rel, pg_sys::ExclusiveLock as i32);
            let block = pg_sys::BufferGetBlockNumber(buf);
            self.known_blocks
                .set(self.known_blocks.get().max(block + 1));
            let r = if self.wal {
                let state = pg_sys::GenericXLogStart(self.rel);
                let copy = pg_sys::GenericXLogRegisterBuffer(
                    state,
                    buf,
                    pg_sys::GENERIC_XLOG_FULL_IMAGE as i32,
                );
                let copy = std::slice::from_raw_parts_mut(copy as *mut u8, PAGE_SIZE);
                copy.fill(0);
                let r = f(block, copy);
                pg_sys::GenericXLogFinish(state);
                r
            } else {
                let page = page_bytes(buf);
                page.fill(0);
                let r = f(block, page);
                pg_sys::MarkBufferDirty(buf);
                r
            };
            pg_sys::UnlockReleaseBuffer(buf);
            r
        }
    }
}
