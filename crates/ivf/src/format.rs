//! The IVFFlat index's on-page format: every page and tuple layout, and
//! the only place that knows a byte offset inside one.
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
//!
//! All integers are little-endian (`pagestore::le`); every header is made
//! of byte arrays (alignment 1), so it is viewed in place wherever its
//! tuple starts.

use crate::{Metric, Storage};
use bytemuck::{Pod, Zeroable};
use distance::Element;
use pagestore::le::{TidLe, U16, U32};
use pagestore::page;
use pagestore::{BlockNumber, Corrupt, Tid, PAGE_SIZE};
use std::mem::size_of;

pub const META_MAGIC: u32 = 0x5658_4956; // "VXIV"
pub const LAYOUT_VERSION: u32 = 1;
pub const INVALID_BLOCK: BlockNumber = u32::MAX;
const SPECIAL_MAGIC: u16 = 0x5649;
const KIND_LISTS: u16 = 1;
const KIND_DATA: u16 = 2;

/// The metapage's bytes, after the page header.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct MetaTuple {
    head: page::MetaHead,
    dims: U32,
    lists: U32,
    metric: u8,
    storage: u8,
    unused: [u8; 2],
    list_pages: U32,
    /// What the last VACUUM did (zeros in metapages written before the
    /// field existed: none recorded).
    last_vacuum: page::VacuumRecordLe,
}
const META_SIZE: usize = size_of::<MetaTuple>();
const _: () = assert!(META_SIZE == 72);

/// The special space of every page but the metapage.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Special {
    /// The next page of a list's chain (INVALID_BLOCK at the tail).
    next: U32,
    kind: U16,
    magic: U16,
}
const SPECIAL_SIZE: usize = size_of::<Special>();
const _: () = assert!(SPECIAL_SIZE == 8);

/// The start of a list tuple; its center follows.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ListHeader {
    /// First page of the chain (INVALID_BLOCK when the list is empty).
    start: U32,
    /// Where inserts look first.
    insert: U32,
}
const LIST_HEADER: usize = size_of::<ListHeader>();

/// The start of a list item; its vector follows.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ItemHeader {
    heap: TidLe,
    unused: [u8; 2],
}
const ITEM_HEADER: usize = size_of::<ItemHeader>();
const _: () = assert!(LIST_HEADER == 8 && ITEM_HEADER == 8);

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
    /// What the last VACUUM that vacuumed the index did.
    pub last_vacuum: page::VacuumRecord,
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
        let t = MetaTuple {
            head: page::MetaHead::new(META_MAGIC, LAYOUT_VERSION),
            dims: U32::new(self.dims),
            lists: U32::new(self.lists),
            metric: self.metric.code(),
            storage: self.storage.code(),
            unused: [0; 2],
            list_pages: U32::new(self.list_pages),
            last_vacuum: self.last_vacuum.into(),
        };
        page::init(p, 0);
        page::store_contents(p, &t);
    }

    pub fn decode(p: &[u8]) -> Result<Meta, Corrupt> {
        let t: &MetaTuple = page::contents(p)?;
        t.head.check(META_MAGIC, LAYOUT_VERSION, "ivfflat")?;
        let (metric, storage) = Metric::from_codes(t.metric, t.storage).map_err(Corrupt)?;
        // RaBitQ codes are hnsw's alone: their size needs a quantizer
        if storage.is_quantized() {
            return Err(Corrupt(
                "metapage names RaBitQ codes, which ivfflat never stores".into(),
            ));
        }
        let meta = Meta {
            dims: t.dims.get(),
            lists: t.lists.get(),
            metric,
            storage,
            list_pages: t.list_pages.get(),
            last_vacuum: t.last_vacuum.into(),
        };
        if metric.is_sparse() {
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

fn init_special(p: &mut [u8], kind: u16) {
    page::init(p, SPECIAL_SIZE);
    let s = page::special_mut(p).expect("fresh page");
    s.copy_from_slice(bytemuck::bytes_of(&Special {
        next: U32::new(INVALID_BLOCK),
        kind: U16::new(kind),
        magic: U16::new(SPECIAL_MAGIC),
    }));
}

fn check_kind(p: &[u8], kind: u16) -> Result<(), Corrupt> {
    let s = page::special(p)?;
    let ok = s.len() == SPECIAL_SIZE && {
        let s: &Special = bytemuck::from_bytes(s);
        s.magic.get() == SPECIAL_MAGIC && s.kind.get() == kind
    };
    if !ok {
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
    Ok(bytemuck::from_bytes::<Special>(page::special(p)?)
        .next
        .get())
}

pub fn set_next_block(p: &mut [u8], next: BlockNumber) -> Result<(), Corrupt> {
    check_data_page(p)?;
    bytemuck::from_bytes_mut::<Special>(page::special_mut(p)?)
        .next
        .set(next);
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
    b.extend_from_slice(bytemuck::bytes_of(&ListHeader {
        start: U32::new(start),
        insert: U32::new(insert),
    }));
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
    storage.decode(list_center(raw), &mut center);
    let (start, insert) = list_blocks(raw);
    List {
        start,
        insert,
        center,
    }
}

/// A list tuple's start and insert blocks, without copying its center.
pub fn list_blocks(raw: &[u8]) -> (BlockNumber, BlockNumber) {
    let h: &ListHeader = bytemuck::from_bytes(&raw[..LIST_HEADER]);
    (h.start.get(), h.insert.get())
}

/// A list tuple's center, as stored.
pub fn list_center(raw: &[u8]) -> &[u8] {
    &raw[LIST_HEADER..]
}

/// Sets a list tuple's start and insert blocks.
pub fn set_list_blocks(raw: &mut [u8], start: BlockNumber, insert: BlockNumber) {
    let h: &mut ListHeader = bytemuck::from_bytes_mut(&mut raw[..LIST_HEADER]);
    h.start.set(start);
    h.insert.set(insert);
}

/// Bytes of a list item whose vector takes `vector_bytes`.
pub fn item_len(vector_bytes: usize) -> usize {
    ITEM_HEADER + vector_bytes
}

pub fn item_tuple(heap: Tid, vector: Element, storage: Storage) -> Vec<u8> {
    let mut b = Vec::with_capacity(item_len(storage.bytes(vector.dims())));
    b.extend_from_slice(bytemuck::bytes_of(&ItemHeader {
        heap: heap.into(),
        unused: [0; 2],
    }));
    storage.encode_element(vector, &mut b);
    b
}

/// A list item's heap TID.
pub fn item_heap(raw: &[u8]) -> Tid {
    bytemuck::from_bytes::<ItemHeader>(&raw[..ITEM_HEADER])
        .heap
        .get()
}

/// Sets a list item's heap TID.
pub fn set_item_heap(raw: &mut [u8], heap: Tid) {
    bytemuck::from_bytes_mut::<ItemHeader>(&mut raw[..ITEM_HEADER])
        .heap
        .set(heap);
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
        f(o, item_heap(raw), &raw[ITEM_HEADER..]);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of layout version 1, written out by hand: a change to any
    /// header here is a change to indexes on disk (bump LAYOUT_VERSION).
    #[test]
    fn tuples_and_pages_are_layout_1() {
        let meta = Meta {
            dims: 3,
            lists: 5,
            metric: Metric::L2,
            storage: Storage::F32,
            list_pages: 1,
            last_vacuum: page::VacuumRecord {
                at: -7,
                reused: 2,
                ..Default::default()
            },
        };
        let mut p = vec![0u8; PAGE_SIZE];
        meta.store(&mut p);
        let b = &p[page::HEADER_SIZE..page::HEADER_SIZE + META_SIZE];
        assert_eq!(b[0..4], META_MAGIC.to_le_bytes());
        assert_eq!(b[4..16], [1, 0, 0, 0, 3, 0, 0, 0, 5, 0, 0, 0]);
        assert_eq!(
            b[16..24],
            [Metric::L2.code(), Storage::F32.code(), 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(b[24..32], (-7i64).to_le_bytes());
        assert_eq!(b[48..56], 2u64.to_le_bytes());
        assert_eq!(Meta::decode(&p).unwrap(), meta);
        // a metapage written before the vacuum record (24 bytes of
        // contents) reads as no VACUUM recorded
        let mut old = p.clone();
        old[page::HEADER_SIZE + 24..page::HEADER_SIZE + META_SIZE].fill(0);
        assert_eq!(
            Meta::decode(&old).unwrap().last_vacuum,
            page::VacuumRecord::default()
        );
        // a storage byte naming hnsw's codes is damage, not a panic
        let mut bad = p.clone();
        bad[page::HEADER_SIZE + 17] = Storage::RaBitQ.code();
        assert!(Meta::decode(&bad).unwrap_err().0.contains("RaBitQ"));

        let list = list_tuple(7, 0x0102_0304, &[2.0], Storage::F32);
        let mut want = vec![7, 0, 0, 0, 4, 3, 2, 1];
        want.extend(2.0f32.to_le_bytes());
        assert_eq!(list, want);
        assert_eq!(list_blocks(&list), (7, 0x0102_0304));

        let heap = Tid {
            block: 9,
            offset: 4,
        };
        let item = item_tuple(heap, Element::F32(&[2.0]), Storage::F32);
        assert_eq!(item[..8], [9, 0, 0, 0, 4, 0, 0, 0]);
        assert_eq!(item_heap(&item), heap);

        init_data_page(&mut p);
        assert_eq!(
            page::special(&p).unwrap(),
            [255, 255, 255, 255, 2, 0, 0x49, 0x56]
        );
        set_next_block(&mut p, 12).unwrap();
        assert_eq!(next_block(&p).unwrap(), 12);
        init_list_page(&mut p);
        assert!(check_data_page(&p)
            .unwrap_err()
            .0
            .contains("not an ivfflat data page"));
    }
}
