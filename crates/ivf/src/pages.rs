//! The IVFFlat index on pages.
//!
//! Block 0 is the metapage. Blocks 1..=list_pages hold one list tuple per
//! list, in list order, a fixed number per page, so list `i` is found
//! without a search. Every other page belongs to one list's chain.
//!
//! Metapage: magic u32 | version u32 | dims u32 | lists u32 | metric u8 |
//!   storage u8 (0 f32, 1 binary16) | 2 unused | list_pages u32
//! List tuple: start block u32 (first page of the chain, INVALID when the
//!   list is empty) | insert block u32 (where inserts look first) |
//!   center: dims elements in the index's storage
//! List page item: heap TID (6) | 2 unused | vector: dims elements in the
//!   index's storage (unit length for cosine), in the form
//!   `Metric::prepare` gives. Vectors are f32 for vector columns and
//!   binary16 for halfvec ones.
//! Special space (8 bytes): next block u32 (chain pages; INVALID at the
//!   tail) | kind u16 | magic u16.

use crate::{Metric, Storage};
use pagestore::page;
use pagestore::{BlockNumber, Corrupt, PageStore, Tid, PAGE_SIZE};

pub const META_MAGIC: u32 = 0x5658_4956; // "VXIV"
pub const LAYOUT_VERSION: u32 = 1;
pub const INVALID_BLOCK: BlockNumber = u32::MAX;
const SPECIAL_MAGIC: u16 = 0x5649;
const SPECIAL_SIZE: usize = 8;
const KIND_LISTS: u16 = 1;
const KIND_DATA: u16 = 2;
const META_SIZE: usize = 24;
const LIST_HEADER: usize = 8;
pub(crate) const ITEM_HEADER: usize = 8;

/// Tuple space of an empty page, less one line pointer, MAXALIGNed down.
const fn tuple_space() -> usize {
    (PAGE_SIZE - page::HEADER_SIZE - SPECIAL_SIZE - 4) & !7
}

/// The most dimensions a list tuple (and a list item) can have with
/// elements of `element_size` bytes.
pub const fn max_dims_for(element_size: usize) -> usize {
    (tuple_space() - LIST_HEADER) / element_size
}

/// `max_dims_for` f32 elements.
pub const fn max_dims() -> usize {
    max_dims_for(4)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub dims: u32,
    pub lists: u32,
    pub metric: Metric,
    pub storage: Storage,
    pub list_pages: u32,
}

impl Meta {
    /// Bytes of one stored vector (a center or an item's).
    pub fn vector_bytes(&self) -> usize {
        self.storage.bytes(self.dims as usize)
    }

    /// List tuples per list page.
    pub fn lists_per_page(&self) -> u32 {
        let one = page::maxalign(LIST_HEADER + self.vector_bytes()) + 4;
        ((PAGE_SIZE - page::HEADER_SIZE - SPECIAL_SIZE) / one) as u32
    }

    /// Where list `i`'s tuple is.
    pub fn list_tid(&self, i: u32) -> Tid {
        let per = self.lists_per_page();
        Tid {
            block: 1 + i / per,
            offset: (i % per + 1) as u16,
        }
    }

    pub fn store(&self, p: &mut [u8]) {
        let mut b = [0u8; META_SIZE];
        b[0..4].copy_from_slice(&META_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
        b[8..12].copy_from_slice(&self.dims.to_le_bytes());
        b[12..16].copy_from_slice(&self.lists.to_le_bytes());
        b[16] = self.metric.code();
        b[17] = self.storage.code();
        b[20..24].copy_from_slice(&self.list_pages.to_le_bytes());
        page::init(p, 0);
        p[page::HEADER_SIZE..page::HEADER_SIZE + META_SIZE].copy_from_slice(&b);
        page::set_contents_len(p, META_SIZE);
    }

    pub fn decode(p: &[u8]) -> Result<Meta, Corrupt> {
        page::check(p)?;
        let b = &p[page::HEADER_SIZE..page::HEADER_SIZE + META_SIZE];
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        if u32_at(0) != META_MAGIC {
            return Err(Corrupt(
                "metapage does not belong to a vector_ext ivfflat index".into(),
            ));
        }
        if u32_at(4) != LAYOUT_VERSION {
            return Err(Corrupt(format!(
                "unsupported ivfflat layout version {} (expected {LAYOUT_VERSION})",
                u32_at(4)
            )));
        }
        let metric = Metric::from_code(b[16])
            .ok_or_else(|| Corrupt(format!("unknown metric code {} in metapage", b[16])))?;
        let storage = Storage::from_code(b[17])
            .ok_or_else(|| Corrupt(format!("unknown storage code {} in metapage", b[17])))?;
        let meta = Meta {
            dims: u32_at(8),
            lists: u32_at(12),
            metric,
            storage,
            list_pages: u32_at(20),
        };
        if !metric.stores_as(storage) || metric.is_sparse() {
            return Err(Corrupt(format!(
                "metapage pairs metric {metric:?} with storage {storage:?}"
            )));
        }
        let most = max_dims_for(storage.element_size());
        if meta.dims == 0 || meta.dims as usize > most || meta.lists == 0 {
            return Err(Corrupt(format!(
                "metapage has impossible dims {} or lists {}",
                meta.dims, meta.lists
            )));
        }
        if meta.list_pages != meta.lists.div_ceil(meta.lists_per_page()) {
            return Err(Corrupt(format!(
                "metapage claims {} list pages for {} lists",
                meta.list_pages, meta.lists
            )));
        }
        Ok(meta)
    }
}

/// Reads the metapage.
pub fn read_meta<S: PageStore>(store: &S) -> Result<Meta, Corrupt> {
    if !store.contains(0) {
        return Err(Corrupt("index has no metapage".into()));
    }
    store.read(0, Meta::decode)
}

fn init_special(p: &mut [u8], kind: u16) {
    page::init(p, SPECIAL_SIZE);
    let s = page::special_mut(p).expect("fresh page");
    s[0..4].copy_from_slice(&INVALID_BLOCK.to_le_bytes());
    s[4..6].copy_from_slice(&kind.to_le_bytes());
    s[6..8].copy_from_slice(&SPECIAL_MAGIC.to_le_bytes());
}

fn check_kind(p: &[u8], kind: u16) -> Result<(), Corrupt> {
    let s = page::special(p)?;
    if s.len() != SPECIAL_SIZE
        || u16::from_le_bytes([s[6], s[7]]) != SPECIAL_MAGIC
        || u16::from_le_bytes([s[4], s[5]]) != kind
    {
        return Err(Corrupt(format!(
            "page is not an ivfflat {} page",
            if kind == KIND_LISTS { "list" } else { "data" }
        )));
    }
    Ok(())
}

pub fn init_list_page(p: &mut [u8]) {
    init_special(p, KIND_LISTS)
}

pub fn init_data_page(p: &mut [u8]) {
    init_special(p, KIND_DATA)
}

pub fn check_data_page(p: &[u8]) -> Result<(), Corrupt> {
    check_kind(p, KIND_DATA)
}

/// The next page of a data page's chain (INVALID_BLOCK at the tail).
pub fn next_block(p: &[u8]) -> Result<BlockNumber, Corrupt> {
    check_data_page(p)?;
    let s = page::special(p)?;
    Ok(u32::from_le_bytes(s[0..4].try_into().expect("4 bytes")))
}

pub fn set_next_block(p: &mut [u8], next: BlockNumber) -> Result<(), Corrupt> {
    check_data_page(p)?;
    page::special_mut(p)?[0..4].copy_from_slice(&next.to_le_bytes());
    Ok(())
}

/// A list's chain and center.
#[derive(Clone, Debug, PartialEq)]
pub struct List {
    pub start: BlockNumber,
    pub insert: BlockNumber,
    pub center: Vec<f32>,
}

pub fn list_tuple(
    start: BlockNumber,
    insert: BlockNumber,
    center: &[f32],
    storage: Storage,
) -> Vec<u8> {
    let mut b = Vec::with_capacity(LIST_HEADER + storage.bytes(center.len()));
    b.extend_from_slice(&start.to_le_bytes());
    b.extend_from_slice(&insert.to_le_bytes());
    storage.encode(center, &mut b);
    b
}

/// The raw list tuple at `t` of an index whose vectors take `vector_bytes`
/// (`Meta::vector_bytes`), checked for its size.
pub fn list_raw(p: &[u8], t: Tid, vector_bytes: usize) -> Result<&[u8], Corrupt> {
    check_kind(p, KIND_LISTS)?;
    let raw = page::item(p, t.offset)?;
    if raw.len() != LIST_HEADER + vector_bytes {
        return Err(Corrupt(format!(
            "list tuple ({},{}) has the wrong size",
            t.block, t.offset
        )));
    }
    Ok(raw)
}

pub fn decode_list(raw: &[u8], storage: Storage) -> List {
    let mut center = Vec::new();
    storage.decode(&raw[LIST_HEADER..], &mut center);
    List {
        start: u32::from_le_bytes(raw[0..4].try_into().expect("4 bytes")),
        insert: u32::from_le_bytes(raw[4..8].try_into().expect("4 bytes")),
        center,
    }
}

/// A list tuple's start and insert blocks, without copying its center.
pub fn list_blocks(raw: &[u8]) -> (BlockNumber, BlockNumber) {
    (
        u32::from_le_bytes(raw[0..4].try_into().expect("4 bytes")),
        u32::from_le_bytes(raw[4..8].try_into().expect("4 bytes")),
    )
}

/// Sets a list tuple's start and insert blocks.
pub fn set_list_blocks(raw: &mut [u8], start: BlockNumber, insert: BlockNumber) {
    raw[0..4].copy_from_slice(&start.to_le_bytes());
    raw[4..8].copy_from_slice(&insert.to_le_bytes());
}

/// Reads list `i`.
pub fn read_list<S: PageStore>(store: &S, meta: &Meta, i: u32) -> Result<List, Corrupt> {
    let t = meta.list_tid(i);
    store.read(t.block, |p| {
        Ok(decode_list(
            list_raw(p, t, meta.vector_bytes())?,
            meta.storage,
        ))
    })
}

/// Every list, in order (one read per list page).
pub fn read_lists<S: PageStore>(store: &S, meta: &Meta) -> Result<Vec<List>, Corrupt> {
    let mut out = Vec::with_capacity(meta.lists as usize);
    let per = meta.lists_per_page();
    for b in 1..=meta.list_pages {
        if !store.contains(b) {
            return Err(Corrupt(format!("list page {b} is missing")));
        }
        store.read(b, |p| -> Result<(), Corrupt> {
            let first = (b - 1) * per;
            for i in first..(first + per).min(meta.lists) {
                let raw = list_raw(p, meta.list_tid(i), meta.vector_bytes())?;
                out.push(decode_list(raw, meta.storage));
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// Calls `f(list, start block, center bytes)` for every list, in order, on
/// the list pages themselves (no copy: `Metric::distance_stored` reads the
/// center in place, aligned as it is on a page: items are MAXALIGNed and
/// the center follows an 8-byte header).
pub fn for_each_center<S: PageStore>(
    store: &S,
    meta: &Meta,
    mut f: impl FnMut(u32, BlockNumber, &[u8]),
) -> Result<(), Corrupt> {
    let per = meta.lists_per_page();
    let bytes = meta.vector_bytes();
    for b in 1..=meta.list_pages {
        if !store.contains(b) {
            return Err(Corrupt(format!("list page {b} is missing")));
        }
        store.read(b, |p| -> Result<(), Corrupt> {
            let first = (b - 1) * per;
            for i in first..(first + per).min(meta.lists) {
                let raw = list_raw(p, meta.list_tid(i), bytes)?;
                let (start, _) = list_blocks(raw);
                f(i, start, &raw[LIST_HEADER..]);
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Bytes of a list item whose vector takes `vector_bytes`.
pub fn item_len(vector_bytes: usize) -> usize {
    ITEM_HEADER + vector_bytes
}

pub fn item_tuple(heap: Tid, vector: &[f32], storage: Storage) -> Vec<u8> {
    let mut b = Vec::with_capacity(item_len(storage.bytes(vector.len())));
    b.extend_from_slice(&heap.to_bytes());
    b.extend_from_slice(&[0, 0]);
    storage.encode(vector, &mut b);
    b
}

/// The items of a data page whose vectors take `vector_bytes`: calls
/// `f(offset, heap TID, vector bytes)`.
pub fn for_each_item(
    p: &[u8],
    vector_bytes: usize,
    mut f: impl FnMut(u16, Tid, &[u8]),
) -> Result<(), Corrupt> {
    check_data_page(p)?;
    let max = page::max_offset(p)?;
    for o in 1..=max {
        let raw = page::item(p, o)?;
        if raw.len() != item_len(vector_bytes) {
            return Err(Corrupt(format!(
                "list item {o} has {} bytes, expected {}",
                raw.len(),
                item_len(vector_bytes)
            )));
        }
        f(o, Tid::from_bytes(&raw[0..6]), &raw[ITEM_HEADER..]);
    }
    Ok(())
}

/// Rebuilds a data page without the items at `dead` (ascending offsets).
pub fn remove_items(p: &mut [u8], dead: &[u16]) -> Result<(), Corrupt> {
    check_data_page(p)?;
    let next = next_block(p)?;
    let max = page::max_offset(p)?;
    let mut keep = Vec::with_capacity(max as usize);
    for o in 1..=max {
        if dead.binary_search(&o).is_err() {
            keep.push(page::item(p, o)?.to_vec());
        }
    }
    init_data_page(p);
    set_next_block(p, next)?;
    for item in &keep {
        page::add_item(p, item).ok_or_else(|| Corrupt("page rebuild overflowed".into()))?;
    }
    Ok(())
}

/// Whether a walk of `steps` pages must have gone round a loop: more steps
/// than twice the index's pages (concurrent inserts may lengthen a chain a
/// little while it is walked). Asks for the page count only past 1024.
pub fn too_many_steps<S: PageStore>(store: &S, steps: u64) -> bool {
    steps > 1024 && steps > 2 * store.nblocks() as u64 + 1024
}

/// Walks a chain from `start`, calling `f(block, page)` on each page;
/// stops with an error on a loop or a block outside the index.
pub fn walk_chain<S: PageStore>(
    store: &S,
    start: BlockNumber,
    mut f: impl FnMut(BlockNumber, &[u8]) -> Result<(), Corrupt>,
) -> Result<(), Corrupt> {
    let mut b = start;
    let mut steps = 0u64;
    while b != INVALID_BLOCK {
        if b == 0 || !store.contains(b) {
            return Err(Corrupt(format!(
                "list chain points to block {b} outside the index"
            )));
        }
        steps += 1;
        if too_many_steps(store, steps) {
            return Err(Corrupt("list chain has a loop".into()));
        }
        b = store.read(b, |p| -> Result<BlockNumber, Corrupt> {
            let next = next_block(p)?;
            f(b, p)?;
            Ok(next)
        })?;
    }
    Ok(())
}
