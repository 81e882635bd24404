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

use crate::types::varlena::prefetch_lines;
use pagestore::{append_by_extending, BlockNumber, PageStore, Tid, PAGE_SIZE};
use pgrx::pg_sys;
use std::cell::{Cell, RefCell};

pub struct BufferStore {
    rel: pg_sys::Relation,
    fork: pg_sys::ForkNumber::Type,
    wal: bool,
    /// Blocks known to exist; refreshed when a link points beyond it.
    known_blocks: Cell<BlockNumber>,
    /// The relation file, and whether its buffers are shared (not a
    /// temporary relation's local buffers): only shared buffers take
    /// `ReadRecentBuffer` hints.
    node: crate::pg_compat::RelFile,
    shared: bool,
    /// Whether `prefetch` hints are acted on (scans and inserts).
    prefetch: bool,
    /// The relation is being built by this backend alone (ambuild): no
    /// other backend extends it (nor inserts, even under CONCURRENTLY,
    /// before the build commits), so adding a block needs no extension lock.
    building: bool,
    /// VACUUM's buffer access strategy (a small ring of buffers, so that a
    /// pass over the whole index does not evict the working set), or null.
    /// Reads through a strategy take no `ReadRecentBuffer` hints.
    strategy: pg_sys::BufferAccessStrategy,
    /// Whether `append` WAL-logs the pages it writes (`log_appends`).
    log_appends: Cell<bool>,
    /// Blocks `append` wrote and logged, which `log_all_pages` skips (None
    /// once a page among them changed through a buffer).
    appended: Cell<Option<(BlockNumber, BlockNumber)>>,
    /// `append`'s copy of the pages it writes (aligned for direct I/O).
    append_scratch: RefCell<Vec<IoPage>>,
}

/// A page in memory aligned as Postgres aligns pages it reads and writes
/// (PG_IO_ALIGN_SIZE), for writes that bypass shared buffers.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct IoPage([u8; PAGE_SIZE]);

const _: () = assert!(PAGE_SIZE == pg_sys::BLCKSZ as usize);

impl BufferStore {
    /// Pages of `rel`'s main fork, every change WAL-logged when the
    /// relation needs WAL (not for unlogged or temporary indexes).
    pub fn logged(rel: pg_sys::Relation) -> Self {
        // SAFETY: rel is an open index relation (callers get it from Postgres).
        let wal = unsafe { relation_needs_wal(rel) };
        Self::new(rel, pg_sys::ForkNumber::MAIN_FORKNUM, wal)
    }

    /// A logged store that acts on `prefetch` hints (graph searches).
    pub fn with_prefetch(rel: pg_sys::Relation) -> Self {
        let mut store = Self::logged(rel);
        store.prefetch = true;
        store
    }

    /// A logged store reading through VACUUM's buffer access strategy
    /// (`IndexVacuumInfo::strategy`; null reads as `logged` does).
    pub fn for_vacuum(rel: pg_sys::Relation, strategy: pg_sys::BufferAccessStrategy) -> Self {
        let mut store = Self::logged(rel);
        store.strategy = strategy;
        store
    }

    /// Pages of `rel`'s `fork`, changed without WAL, for the build that
    /// creates them (ambuild, ambuildempty) and only for it.
    pub fn unlogged(rel: pg_sys::Relation, fork: pg_sys::ForkNumber::Type) -> Self {
        let mut store = Self::new(rel, fork, false);
        store.building = true;
        store
    }

    /// Pages of `rel`'s main fork changed without WAL by a build's
    /// participants together (the leader and its parallel workers): as
    /// `unlogged`, but adding blocks under the relation extension lock.
    pub fn unlogged_shared(rel: pg_sys::Relation) -> Self {
        Self::new(rel, pg_sys::ForkNumber::MAIN_FORKNUM, false)
    }

    fn new(rel: pg_sys::Relation, fork: pg_sys::ForkNumber::Type, wal: bool) -> Self {
        // SAFETY: rel is an open relation (callers get it from Postgres).
        let (node, shared) = unsafe {
            (
                crate::pg_compat::rel_file(rel),
                (*(*rel).rd_rel).relpersistence != pg_sys::RELPERSISTENCE_TEMP as std::ffi::c_char,
            )
        };
        BufferStore {
            rel,
            fork,
            wal,
            known_blocks: Cell::new(0),
            node,
            shared,
            prefetch: false,
            building: false,
            strategy: std::ptr::null_mut(),
            log_appends: Cell::new(false),
            appended: Cell::new(None),
            append_scratch: RefCell::new(Vec::new()),
        }
    }

    /// Lets `append` (a build writing its graph) WAL-log the pages it
    /// writes as it writes them, when the relation needs WAL: for the
    /// build's last write, after which no page changes. Otherwise the
    /// build logs every page at the end (`log_all_pages`).
    pub fn log_appends(&self, on: bool) {
        self.log_appends.set(on);
    }

    /// Forgets that blocks `append` logged are logged, if `block` is one:
    /// it is about to change through a buffer.
    fn changing(&self, block: BlockNumber) {
        if let Some((lo, hi)) = self.appended.get() {
            if (lo..hi).contains(&block) {
                self.appended.set(None);
            }
        }
    }

    pub fn relation(&self) -> pg_sys::Relation {
        self.rel
    }

    /// Writes every page of the fork to WAL as a full image (after an
    /// unlogged build of a relation that needs WAL, or of an init fork).
    /// Pages `append` logged as it wrote them are skipped; as they were
    /// written past shared buffers, where no checkpoint sees them, the
    /// relation's file is synced to disk first (a checkpoint during the
    /// build would otherwise move crash recovery past their WAL with the
    /// pages not on disk), as Postgres' own index builds do.
    pub fn log_all_pages(&self) {
        let n = self.nblocks();
        let (lo, hi) = self.appended.get().unwrap_or((n, n));
        // SAFETY: rel is open and locked by the caller (index build);
        // every block below n exists and has a standard page layout.
        unsafe {
            if hi > lo {
                pg_sys::smgrimmedsync(pg_sys::RelationGetSmgr(self.rel), self.fork);
            }
            for (from, to) in [(0, lo), (hi, n)] {
                if to > from {
                    pg_sys::log_newpage_range(self.rel, self.fork, from, to, true);
                }
            }
        }
    }

    /// Pins an existing block.
    fn read_buffer(&self, block: BlockNumber) -> pg_sys::Buffer {
        debug_assert!(block != pg_sys::InvalidBlockNumber);
        // SAFETY: rel is open. ReadRecentBuffer pins `recent` only if it
        // still holds this very block (it checks the buffer tag), else
        // returns false; a block beyond the end raises an ERROR in
        // ReadBufferExtended, it does not crash.
        unsafe {
            let hints = self.shared && self.strategy.is_null();
            if hints {
                if let Some(recent) = recent_buffer(
                    crate::pg_compat::rel_file_number(&self.node),
                    self.fork,
                    block,
                ) {
                    if pg_sys::ReadRecentBuffer(self.node, self.fork, block, recent) {
                        // what ReadBuffer would have counted for the hit
                        crate::pg_compat::count_buffer_hit(self.rel);
                        return recent;
                    }
                }
            }
            let buf = pg_sys::ReadBufferExtended(
                self.rel,
                self.fork,
                block,
                pg_sys::ReadBufferMode::RBM_NORMAL,
                self.strategy,
            );
            if hints {
                remember_buffer(
                    crate::pg_compat::rel_file_number(&self.node),
                    self.fork,
                    block,
                    buf,
                );
            }
            buf
        }
    }
}

/// Where this backend last found index blocks in shared buffers, per
/// relation file: `ReadRecentBuffer` then pins one without the buffer
/// mapping lookup (a shared hash table probe under a partition lock, the
/// largest single cost of a graph search). A stale hint costs one failed
/// tag check. Each file's hints are a direct-mapped table of at most
/// `MAX_HINTS` entries (and no more than shared buffers has buffers): a
/// block shares its entry with the blocks `MAX_HINTS` apart, so an index
/// larger than that keeps hints for part of its blocks at a time, and a
/// backend holds at most `RECENT_FILES * MAX_HINTS * 8` bytes (8 MB).
struct RecentBuffers {
    files: Vec<(pg_sys::Oid, pg_sys::ForkNumber::Type, Vec<Hint>)>,
}

/// A block and the buffer it was last found in (buffer 0: none).
#[derive(Clone, Copy, Default)]
struct Hint {
    block: BlockNumber,
    buffer: pg_sys::Buffer,
}

const RECENT_FILES: usize = 4;
/// Entries of one file's hint table (2 GB of blocks without collisions).
const MAX_HINTS: usize = 1 << 18;

thread_local! {
    static RECENT: RefCell<RecentBuffers> = const { RefCell::new(RecentBuffers { files: Vec::new() }) };
}

/// Entries of a file's hint table: a power of two, at most MAX_HINTS and
/// at most the number of shared buffers (more could not all be current).
fn hint_entries() -> usize {
    // SAFETY: NBuffers is set once at server start.
    let buffers = unsafe { pg_sys::NBuffers }.max(1) as usize;
    buffers.next_power_of_two().min(MAX_HINTS)
}

fn recent_buffer(
    file: pg_sys::Oid,
    fork: pg_sys::ForkNumber::Type,
    block: BlockNumber,
) -> Option<pg_sys::Buffer> {
    RECENT.with(|r| {
        let r = r.borrow();
        let (_, _, hints) = r.files.iter().find(|(f, k, _)| *f == file && *k == fork)?;
        let h = hints[block as usize & (hints.len() - 1)];
        (h.buffer != 0 && h.block == block).then_some(h.buffer)
    })
}

fn remember_buffer(
    file: pg_sys::Oid,
    fork: pg_sys::ForkNumber::Type,
    block: BlockNumber,
    buffer: pg_sys::Buffer,
) {
    RECENT.with(|r| {
        let mut r = r.borrow_mut();
        let pos = match r
            .files
            .iter()
            .position(|(f, k, _)| *f == file && *k == fork)
        {
            Some(p) => p,
            None => {
                if r.files.len() >= RECENT_FILES {
                    r.files.remove(0);
                }
                r.files
                    .push((file, fork, vec![Hint::default(); hint_entries()]));
                r.files.len() - 1
            }
        };
        let hints = &mut r.files[pos].2;
        let slot = block as usize & (hints.len() - 1);
        hints[slot] = Hint { block, buffer };
    })
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

/// Where the line pointer of tuple `offset` (1-based) sits in a page.
fn line_pointer_at(offset: u16) -> usize {
    pagestore::page::HEADER_SIZE + 4 * (offset as usize).saturating_sub(1)
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

    fn prefetch(&self, items: &[Tid], bytes: usize) {
        // Only shared buffers: a temporary relation's local buffers are not
        // at BufferBlocks.
        if !self.prefetch || !self.shared {
            return;
        }
        // Two overlapping rounds of memory fetches, for the blocks whose
        // buffer this backend remembers (`recent_buffer`; the others are
        // read without): (0) the buffer descriptor and the line pointer,
        // (1) with those arriving, the tuple the line pointer points to.
        // Nothing is pinned: an earlier version pinned every page ahead and
        // kept the pins for the batch, and with hundreds of pins held every
        // pin and unpin went through Postgres's private refcount hash table
        // (measured with pgbench, 100k x 384 at ef_search 56: 1,400-1,626
        // q/s on one client that way, 1,764-2,052 q/s without; two clients
        // 3,281-3,490 against 4,139-4,505).
        // SAFETY: reading the shared-buffer base pointers (set at startup).
        let (descs, blocks) = unsafe {
            (
                pg_sys::BufferDescriptors as *const u8,
                pg_sys::BufferBlocks as *const u8,
            )
        };
        let mut pages = Vec::with_capacity(items.len());
        for t in items {
            if !t.is_valid() {
                continue;
            }
            let Some(b) = recent_buffer(
                crate::pg_compat::rel_file_number(&self.node),
                self.fork,
                t.block,
            ) else {
                continue;
            };
            let i = b as usize - 1;
            let desc = std::mem::size_of::<pg_sys::BufferDescPadded>();
            prefetch_lines(descs.wrapping_add(i * desc) as *const i8, 1);
            let lp = line_pointer_at(t.offset);
            if lp + 4 <= PAGE_SIZE {
                let page = blocks.wrapping_add(i * PAGE_SIZE);
                // the page header and the special space, which every read
                // checks before the tuple
                prefetch_lines(page as *const i8, 1);
                prefetch_lines(page.wrapping_add(PAGE_SIZE - 64) as *const i8, 1);
                prefetch_lines(page.wrapping_add(lp) as *const i8, 1);
                pages.push((page, lp));
            }
        }
        for (page, lp) in pages {
            // SAFETY: an unlocked read of a line pointer in shared buffers
            // (memory mapped for the backend's life; a buffer is at most
            // being refilled with another page): a concurrent change can
            // only make the hint wrong, and the offset is bounded to the
            // page before use.
            let word = unsafe { std::ptr::read_volatile(page.add(lp) as *const u32) };
            let off = (word & 0x7fff) as usize; // lp_off: the low 15 bits
            if off < PAGE_SIZE {
                let len = bytes.min(PAGE_SIZE - off);
                prefetch_lines(page.wrapping_add(off) as *const i8, len);
            }
        }
    }

    fn write<R>(&self, block: BlockNumber, f: impl FnOnce(&mut [u8]) -> R) -> R {
        self.changing(block);
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

    fn init_if_new(&self, block: BlockNumber, init: impl FnOnce(&mut [u8])) -> bool {
        // `extend` adds the block and locks its buffer under the relation
        // extension lock: holding it here, no extension is between the two,
        // so a zero page seen under the buffer lock is one a crash left.
        // SAFETY: the index is open; the lock is released on every path
        // (an ERROR releases heavyweight locks at abort).
        unsafe {
            if !self.building {
                pg_sys::LockRelationForExtension(self.rel, pg_sys::ExclusiveLock as i32);
            }
        }
        let done = self.write(block, |p| {
            let new = pagestore::page::is_new(p);
            if new {
                init(p);
            }
            new
        });
        // SAFETY: taken above.
        unsafe {
            if !self.building {
                pg_sys::UnlockRelationForExtension(self.rel, pg_sys::ExclusiveLock as i32);
            }
        }
        done
    }

    /// In a build (the only backend writing the relation), the pages go to
    /// the relation's file directly, past shared buffers, as btree's build
    /// writes its pages: one write a page instead of a buffer added, zeroed
    /// in the file, filled, and written again, and the build does not evict
    /// shared buffers' working set. With `log_appends` they are WAL-logged
    /// first (full images, the call's pages in one record, up to 32) and
    /// `log_all_pages` syncs the file and skips them.
    fn append(&self, pages: &[u8]) -> BlockNumber {
        if !self.building || self.fork != pg_sys::ForkNumber::MAIN_FORKNUM {
            return append_by_extending(self, pages);
        }
        assert_eq!(pages.len() % PAGE_SIZE, 0, "whole pages");
        let n = pages.len() / PAGE_SIZE;
        let mut scratch = self.append_scratch.borrow_mut();
        let have = scratch.len();
        if have < n {
            if scratch.try_reserve_exact(n - have).is_err() {
                crate::am::out_of_memory(format!(
                    "Failed to allocate {n} pages to write an index's pages."
                ));
            }
            scratch.resize(n, IoPage([0; PAGE_SIZE]));
        }
        for (to, from) in scratch.iter_mut().zip(pages.chunks_exact(PAGE_SIZE)) {
            to.0.copy_from_slice(from);
        }
        // SAFETY: rel is open and locked by its build, which alone writes
        // it (`building`), so no other backend extends the file meanwhile
        // and no buffer holds a block past its end. Each page is a
        // standard index page; log_newpages sets its LSN before it is
        // written, and its checksum is set last, as for a page a buffer
        // writes out.
        unsafe {
            let first = pg_sys::RelationGetNumberOfBlocksInFork(self.rel, self.fork);
            let mut blocks: Vec<BlockNumber> = (first..first + n as BlockNumber).collect();
            let mut images: Vec<*mut std::ffi::c_char> = scratch[..n]
                .iter_mut()
                .map(|p| p.0.as_mut_ptr() as *mut std::ffi::c_char)
                .collect();
            let log = self.log_appends.get() && relation_needs_wal(self.rel);
            if log {
                let mut node = self.node;
                pg_sys::log_newpages(
                    &mut node,
                    self.fork,
                    n as std::ffi::c_int,
                    blocks.as_mut_ptr(),
                    images.as_mut_ptr(),
                    true,
                );
            }
            let smgr = pg_sys::RelationGetSmgr(self.rel);
            for (&block, &image) in blocks.iter().zip(&images) {
                pg_sys::PageSetChecksumInplace(image as pg_sys::Page, block);
                pg_sys::smgrextend(smgr, self.fork, block, image as _, true);
            }
            let end = first + n as BlockNumber;
            self.known_blocks.set(end);
            if log {
                // One range of logged pages: this call's, joined to the
                // last call's when they meet. Pages added otherwise in
                // between (none in a build today) end the old range, which
                // `log_all_pages` then logs again: redundant, never missing.
                let lo = match self.appended.get() {
                    Some((lo, hi)) if hi == first => lo,
                    _ => first,
                };
                self.appended.set(Some((lo, end)));
            }
            first
        }
    }

    /// Checks `blocks` under the extension lock.
    fn extend_if<R>(
        &self,
        blocks: Option<BlockNumber>,
        f: impl FnOnce(BlockNumber, &mut [u8]) -> R,
    ) -> Option<R> {
        // SAFETY: the extension lock (or, in a build, being the only
        // backend that writes the relation) serialises adding blocks; the
        // new buffer is pinned and exclusively locked before the extension
        // lock is released, so nobody else initialises it. Logging as in
        // `write`, with a full image since the page is new.
        unsafe {
            if !self.building {
                pg_sys::LockRelationForExtension(self.rel, pg_sys::ExclusiveLock as i32);
            }
            if let Some(b) = blocks {
                if pg_sys::RelationGetNumberOfBlocksInFork(self.rel, self.fork) != b {
                    if !self.building {
                        pg_sys::UnlockRelationForExtension(self.rel, pg_sys::ExclusiveLock as i32);
                    }
                    return None;
                }
            }
            let buf = pg_sys::ReadBufferExtended(
                self.rel,
                self.fork,
                pg_sys::InvalidBlockNumber, // P_NEW
                pg_sys::ReadBufferMode::RBM_NORMAL,
                std::ptr::null_mut(),
            );
            pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
            if !self.building {
                pg_sys::UnlockRelationForExtension(self.rel, pg_sys::ExclusiveLock as i32);
            }
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
            Some(r)
        }
    }
}
