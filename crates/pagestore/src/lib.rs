//! Index pages in Postgres' own page format, behind a small storage trait.
//!
//! `page` reads and writes the standard layout (24-byte header, line
//! pointers growing up, tuples growing down, special space at the end) with
//! every offset bounds-checked, so a corrupted page yields `Corrupt`, never a
//! panic or an out-of-bounds read. `PageStore` is what index algorithms use;
//! the extension implements it on shared buffers (locking, WAL), and
//! `MemStore` implements it in memory for tests.

#![forbid(unsafe_code)]

pub mod le;
pub mod page;

use std::sync::RwLock;

pub const PAGE_SIZE: usize = 8192;
pub type BlockNumber = u32;

/// A tuple's address: block and 1-based line pointer number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tid {
    pub block: BlockNumber,
    pub offset: u16,
}

impl Tid {
    pub const INVALID: Tid = Tid {
        block: u32::MAX,
        offset: 0,
    };

    pub fn is_valid(self) -> bool {
        self.offset != 0
    }

    /// 6 bytes, little-endian, as stored in index tuples.
    pub fn to_bytes(self) -> [u8; 6] {
        let b = self.block.to_le_bytes();
        let o = self.offset.to_le_bytes();
        [b[0], b[1], b[2], b[3], o[0], o[1]]
    }

    pub fn from_bytes(b: &[u8]) -> Tid {
        Tid {
            block: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            offset: u16::from_le_bytes([b[4], b[5]]),
        }
    }
}

/// What went wrong reading a page: the caller reports it as index corruption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corrupt(pub String);

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an index check found wrong: the first `MAX` problems, and how many
/// in all (a badly damaged index can have one per tuple).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problems {
    pub first: Vec<String>,
    pub count: u64,
}

impl Problems {
    pub const MAX: usize = 20;

    pub fn push(&mut self, p: String) {
        self.count += 1;
        if self.first.len() < Self::MAX {
            self.first.push(p);
        }
    }
}

/// `PageStore::append` done page by page with `extend`: what a store
/// does when it has no faster way. Returns the first page's block number
/// (the store's size when `pages` is empty).
pub fn append_by_extending<S: PageStore + ?Sized>(store: &S, pages: &[u8]) -> BlockNumber {
    assert_eq!(pages.len() % PAGE_SIZE, 0, "whole pages");
    let mut first = None;
    for image in pages.chunks_exact(PAGE_SIZE) {
        let b = store.extend(|b, p| {
            p.copy_from_slice(image);
            b
        });
        first.get_or_insert(b);
    }
    first.unwrap_or_else(|| store.nblocks())
}

/// Page access for index algorithms. Closures keep the page locked only
/// while they run; a `write` is one atomic, logged change.
pub trait PageStore {
    fn nblocks(&self) -> BlockNumber;
    /// Whether `block` exists. Called for every link followed, so a store
    /// whose `nblocks` is costly may answer from a cache and only ask again
    /// for blocks beyond it (the index only grows while it is open).
    fn contains(&self, block: BlockNumber) -> bool {
        block < self.nblocks()
    }
    fn read<R>(&self, block: BlockNumber, f: impl FnOnce(&[u8]) -> R) -> R;
    /// A hint that the tuples at `items` (their first `bytes` bytes) are
    /// about to be read, so their memory can be fetched in parallel.
    fn prefetch(&self, _items: &[Tid], _bytes: usize) {}
    fn write<R>(&self, block: BlockNumber, f: impl FnOnce(&mut [u8]) -> R) -> R;
    /// Adds a zeroed page at the end and lets `f` initialise it.
    fn extend<R>(&self, f: impl FnOnce(BlockNumber, &mut [u8]) -> R) -> R {
        self.extend_if(None, f).expect("an unconditional extension")
    }
    /// Adds finished pages at the end: `pages` holds their images one after
    /// another (whole pages), for a build writing out what it laid out. A
    /// store may write them past its page cache, as Postgres' own index
    /// builds write theirs past shared buffers. Returns the first page's
    /// block number.
    fn append(&self, pages: &[u8]) -> BlockNumber {
        append_by_extending(self, pages)
    }
    /// `extend`, unless the store no longer has `blocks` blocks (another
    /// writer added a page since the caller counted): then None, and the
    /// caller may use that page rather than add one more.
    fn extend_from<R>(
        &self,
        blocks: BlockNumber,
        f: impl FnOnce(BlockNumber, &mut [u8]) -> R,
    ) -> Option<R> {
        self.extend_if(Some(blocks), f)
    }
    /// What `extend` and `extend_from` are: adds a page, if `blocks` is
    /// given only while the store has that many (checked under what
    /// serialises its extensions).
    fn extend_if<R>(
        &self,
        blocks: Option<BlockNumber>,
        f: impl FnOnce(BlockNumber, &mut [u8]) -> R,
    ) -> Option<R>;
    /// Lets `init` initialise `block` if it is still all zeros (a crash
    /// came between adding the page and initialising it), as one write;
    /// true when it did. A store whose `extend` adds the page before it
    /// locks it must make sure no `extend` is under way on the block (the
    /// extension: the relation extension lock), or `init` could take a
    /// page that `extend` then initialises over it.
    fn init_if_new(&self, block: BlockNumber, init: impl FnOnce(&mut [u8])) -> bool {
        self.write(block, |p| {
            let new = page::is_new(p);
            if new {
                init(p);
            }
            new
        })
    }
}

/// Pages in memory, for tests of everything built on `PageStore`.
#[derive(Default)]
pub struct MemStore {
    pages: RwLock<Vec<RwLock<Box<[u8]>>>>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets a test damage a page on purpose.
    pub fn corrupt(&self, block: BlockNumber, f: impl FnOnce(&mut [u8])) {
        self.write(block, f)
    }
}

impl PageStore for MemStore {
    fn nblocks(&self) -> BlockNumber {
        self.pages.read().expect("store lock").len() as BlockNumber
    }

    fn read<R>(&self, block: BlockNumber, f: impl FnOnce(&[u8]) -> R) -> R {
        let pages = self.pages.read().expect("store lock");
        let page = pages[block as usize].read().expect("page lock");
        f(&page)
    }

    fn write<R>(&self, block: BlockNumber, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let pages = self.pages.read().expect("store lock");
        let mut page = pages[block as usize].write().expect("page lock");
        f(&mut page)
    }

    fn extend_if<R>(
        &self,
        blocks: Option<BlockNumber>,
        f: impl FnOnce(BlockNumber, &mut [u8]) -> R,
    ) -> Option<R> {
        let mut pages = self.pages.write().expect("store lock");
        let block = pages.len() as BlockNumber;
        if blocks.is_some_and(|b| b != block) {
            return None;
        }
        pages.push(RwLock::new(vec![0u8; PAGE_SIZE].into_boxed_slice()));
        let mut page = pages[block as usize].write().expect("page lock");
        Some(f(block, &mut page))
    }
}

#[cfg(test)]
mod tests;
