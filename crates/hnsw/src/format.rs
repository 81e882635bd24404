//! The HNSW index's on-page format: every page and tuple layout, and the
//! only place that knows a byte offset inside one. Readers and writers use
//! the views here (`ElementTuple`, `ElementTupleMut`, `NeighborTuple`,
//! `Meta`) and their named accessors.
//!
//! Block 0 is the metapage (`MetaTuple`); every other page holds element
//! tuples and neighbour tuples, marked by `SPECIAL_MAGIC` in its special
//! space. All integers are little-endian (`pagestore::le`); every header is
//! made of byte arrays (alignment 1), so it is viewed in place wherever
//! its tuple starts.
//!
//! Element tuple: `ElementHeader` (12 bytes: kind = 1, level, flags, heap
//!   TIDs in use, neighbour tuple TID, heap TID slots (0: MAX_PAYLOADS),
//!   reserved), then that many heap TID slots (6 bytes each), then the
//!   vector: dims elements, f32 or binary16 as the metapage's storage
//!   byte says, or a sparse vector's words (`distance::sparse`; their
//!   count varies). The slot count (at most MAX_PAYLOADS) is chosen per
//!   index (per element for sparse vectors) by `payload_slots` so that as
//!   many elements as possible fit a page.
//! Neighbour tuple: `NeighborHeader` (4 bytes: kind = 2, level, slots),
//!   then one block per level (level 0's 2m slots first, then m per upper
//!   level): the level's TIDs (6 each; unused slots hold an invalid TID);
//!   level 0's block then holds per slot its distance key (4 each: the f32
//!   distance from the element with the lowest bit replaced by the slot's
//!   diverse flag), so a link-back decides with a few comparisons instead
//!   of re-running the heuristic over the vectors of the whole list, and
//!   scans touch only the TIDs. Upper levels store TIDs only: their
//!   link-backs are rare (one insert in m reaches level 1) and recompute
//!   distances, and 6-byte slots let four 384-d elements of m = 16 share a
//!   page even when their levels add up to 4 (10-byte slots: 2).
//!
//! An element and its neighbour tuple share a page when they fit, so one
//! page read serves both in the common case.

use crate::{Metric, Storage};
use bytemuck::{Pod, Zeroable};
use distance::Element;
use pagestore::le::{TidLe, U16, U32};
use pagestore::{page, Corrupt, Tid, PAGE_SIZE};
use std::mem::size_of;

pub const META_MAGIC: u32 = 0x5658_484E; // "VXHN"
pub const LAYOUT_VERSION: u32 = 3;
/// In the special space of every data page of the index.
pub const SPECIAL_MAGIC: u16 = 0x5648;
pub(crate) const KIND_ELEMENT: u8 = 1;
pub(crate) const KIND_NEIGHBORS: u8 = 2;
pub(crate) const KIND_CENTER: u8 = 3;

/// Payloads (heap TIDs) one element holds for identical vectors, as
/// pgvector's elements do; a further duplicate becomes an element of its
/// own.
pub const MAX_PAYLOADS: usize = 10;
/// Fewer slots would turn duplicate-heavy data into many small elements.
pub(crate) const MIN_PAYLOAD_SLOTS: usize = 4;

/// Bit 0 of an element's flags: every heap TID is gone (vacuum); searches
/// pass through the element but never return it.
pub(crate) const FLAG_DELETED: u8 = 1;
/// Bit 1 (always with bit 0): VACUUM has repaired every link into the
/// deleted element, so an insert of the same level may take its element and
/// neighbour tuple for a new vector (`reuse::claim`).
pub(crate) const FLAG_FREE: u8 = 2;

/// Free-slot hints in the metapage: levels 0, 1 and 2 each have their
/// own, higher levels (one element in m^3) share the last.
pub const FREE_CLASSES: usize = 4;

/// The most dimensions a sparse vector may have, as for the type.
pub const SPARSE_MAX_DIMS: usize = 1_000_000_000;

/// `Meta::vector_bytes` of sparse vectors: each element's words say.
pub const VARIABLE: usize = 0;

// ---- page ----

/// The special space of a data page.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Special {
    magic: U16,
    unused: [u8; 6],
}
const SPECIAL_SIZE: usize = size_of::<Special>();
const _: () = assert!(SPECIAL_SIZE == 8);

/// Tuple space of an empty data page, less one line pointer, MAXALIGNed
/// down: the largest tuple a page takes.
const fn tuple_space() -> usize {
    (PAGE_SIZE - page::HEADER_SIZE - SPECIAL_SIZE - 4) & !7
}

pub(crate) fn init_index_page(p: &mut [u8]) {
    page::init(p, SPECIAL_SIZE);
    let s: &mut Special =
        bytemuck::from_bytes_mut(page::special_mut(p).expect("a fresh page has its special space"));
    s.magic = U16::new(SPECIAL_MAGIC);
}

pub(crate) fn check_index_page(p: &[u8]) -> Result<(), Corrupt> {
    let s = page::special(p)?;
    if s.len() != SPECIAL_SIZE || bytemuck::from_bytes::<Special>(s).magic.get() != SPECIAL_MAGIC {
        return Err(Corrupt("page is not an hnsw data page".into()));
    }
    Ok(())
}

/// The kind byte of a tuple (`KIND_ELEMENT`, `KIND_NEIGHBORS`), if any.
pub(crate) fn tuple_kind(raw: &[u8]) -> Option<u8> {
    raw.first().copied()
}

// ---- metapage ----

/// The metapage's bytes, after the page header.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct MetaTuple {
    head: page::MetaHead,
    dims: U32,
    m: U16,
    ef_construction: U16,
    metric: u8,
    storage: u8,
    entry: TidLe,
    entry_level: U16,
    /// Bits per dimension of RaBitQ codes (0 in other indexes).
    bits: u8,
    /// The form of the codes' rotation: `ROTATION_BLOCKS` in an index of
    /// codes (0 in other indexes, and in indexes of codes written before
    /// codes were padded to a multiple of 64 dimensions, which are
    /// refused).
    rotation: u8,
    insert_page: U32,
    free_page: [U32; FREE_CLASSES],
    /// The rotation seed of an index of RaBitQ codes (low word first);
    /// zero in every other index, and in metapages written before the
    /// field existed (they end before it, and pages are zeroed there).
    seed: [U32; 2],
    /// The first page of the codes' center (`center_tuples`); 0: the
    /// center is the zero vector.
    center: U32,
    /// What the last VACUUM did (zeros in metapages written before the
    /// field existed: none recorded).
    last_vacuum: page::VacuumRecordLe,
}
const META_SIZE: usize = size_of::<MetaTuple>();

/// Where `MetaTuple::rotation` sits in the metapage (for tests that damage it).
#[cfg(test)]
pub(crate) const META_ROTATION_AT: usize =
    page::HEADER_SIZE + std::mem::offset_of!(MetaTuple, rotation);

/// `MetaTuple::rotation` of an index of codes: dimensions padded to a
/// multiple of 64, Hadamard transforms of blocks (`distance::rabitq::Rotation`).
const ROTATION_BLOCKS: u8 = 1;
const _: () = assert!(META_SIZE == 108);

/// The metapage contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub dims: u32,
    pub m: u16,
    pub ef_construction: u16,
    pub metric: Metric,
    pub storage: Storage,
    pub entry: Tid,
    pub entry_level: u16,
    /// The page new elements go to first (a hint; 0 when there is none).
    pub insert_page: u32,
    /// Per `free_class`, where inserts start looking for a free element
    /// slot (`FLAG_FREE`): no page before it has one (a hint, set by
    /// VACUUM, moved on by inserts; 0 when there is none). Indexes written
    /// before the field existed hold zeros there: no hint.
    pub free_page: [u32; FREE_CLASSES],
    /// The seed of the rotation RaBitQ codes are made with
    /// (`Storage::RaBitQ`; `crate::codec`); 0 for other storages.
    pub seed: u64,
    /// The first of the consecutive pages holding the center codes are
    /// made around (`center_tuples`); 0 when it is the zero vector.
    pub center: u32,
    /// Bits per dimension of RaBitQ codes; 0 for other storages.
    pub bits: u8,
    /// What the last VACUUM that vacuumed the index did.
    pub last_vacuum: page::VacuumRecord,
}

impl Meta {
    /// Bytes of one element's vector on a page; `VARIABLE` for sparse
    /// vectors, whose words say how many there are.
    pub fn vector_bytes(&self) -> usize {
        if self.storage.is_quantized() {
            distance::rabitq::code_bytes(self.dims as usize, self.bits as u32)
        } else if self.storage.fixed_length() {
            self.storage.bytes(self.dims as usize)
        } else {
            VARIABLE
        }
    }

    /// Checks a vector handed to an insert: the index's dimensions, and
    /// for a sparse one its form and that its element fits a page.
    pub fn check_vector(&self, v: Element) -> Result<(), Corrupt> {
        use distance::Storage as S;
        let nnz = match (self.storage, v) {
            (S::F32 | S::F16 | S::RaBitQ, Element::F32(_) | Element::F16(_))
            | (S::Bits, Element::Bits(_)) => 0,
            (S::Sparse, Element::Sparse { v, .. }) if v.indices.len() == v.values.len() => {
                v.indices.len()
            }
            _ => {
                return Err(Corrupt(format!(
                    "a vector the {:?} storage cannot hold",
                    self.storage
                )))
            }
        };
        let got = v.dims();
        if got != self.dims as usize {
            return Err(Corrupt(format!(
                "expected {} dimensions, not {got}",
                self.dims
            )));
        }
        if nnz > max_sparse_nnz() {
            return Err(Corrupt(format!(
                "a sparse vector of more than {} non-zeros",
                max_sparse_nnz()
            )));
        }
        Ok(())
    }

    /// Writes the metapage contents into block 0's page image.
    pub fn store(&self, p: &mut [u8]) {
        let t = MetaTuple {
            head: page::MetaHead::new(META_MAGIC, LAYOUT_VERSION),
            dims: U32::new(self.dims),
            m: U16::new(self.m),
            ef_construction: U16::new(self.ef_construction),
            metric: self.metric.code(),
            storage: self.storage.code(),
            entry: self.entry.into(),
            entry_level: U16::new(self.entry_level),
            bits: self.bits,
            rotation: if self.storage.is_quantized() {
                ROTATION_BLOCKS
            } else {
                0
            },
            insert_page: U32::new(self.insert_page),
            free_page: self.free_page.map(U32::new),
            seed: [
                U32::new(self.seed as u32),
                U32::new((self.seed >> 32) as u32),
            ],
            center: U32::new(self.center),
            last_vacuum: self.last_vacuum.into(),
        };
        page::store_contents(p, &t);
    }

    pub fn decode(p: &[u8]) -> Result<Meta, Corrupt> {
        let t: &MetaTuple = page::contents(p)?;
        t.head.check(META_MAGIC, LAYOUT_VERSION, "hnsw")?;
        let (metric, storage) = Metric::from_codes(t.metric, t.storage).map_err(Corrupt)?;
        let meta = Meta {
            dims: t.dims.get(),
            m: t.m.get(),
            ef_construction: t.ef_construction.get(),
            metric,
            storage,
            entry: t.entry.get(),
            entry_level: t.entry_level.get(),
            insert_page: t.insert_page.get(),
            free_page: t.free_page.map(U32::get),
            seed: t.seed[0].get() as u64 | (t.seed[1].get() as u64) << 32,
            center: t.center.get(),
            bits: t.bits,
            last_vacuum: t.last_vacuum.into(),
        };
        if storage == Storage::RaBitQ
            && !distance::rabitq::SUPPORTED_BITS.contains(&(meta.bits as u32))
        {
            return Err(Corrupt(format!("metapage has codes of {} bits", meta.bits)));
        }
        if storage == Storage::RaBitQ && t.rotation != ROTATION_BLOCKS {
            return Err(Corrupt(format!(
                "codes rotated in form {} (written by an earlier development build, \
                 whose codes were padded to a power of two)",
                t.rotation
            )));
        }
        let most = most_dims(storage, meta.bits as u32);
        if meta.dims == 0 || meta.dims as usize > most || meta.m < 2 {
            return Err(Corrupt(format!(
                "metapage has impossible dims {} or m {}",
                meta.dims, meta.m
            )));
        }
        Ok(meta)
    }
}

/// Which `Meta::free_page` hint serves elements of `level`.
pub(crate) fn free_class(level: usize) -> usize {
    level.min(FREE_CLASSES - 1)
}

// ---- sizes ----

/// Heap TID slots per element for vectors of `vector_bytes` in `storage`
/// and this `m`: the most that still fit as many level-0 elements (with
/// their neighbour tuples) on a page as MIN_PAYLOAD_SLOTS would, and an
/// even count for 4-byte elements so the vector starts 4-aligned (read in
/// place, not copied). 384-d binary16 with m = 16: 7 slots, 7 elements a
/// page (10 slots: 6 a page); 384-d f32: 10 slots. Identical vectors
/// beyond the slots become elements of their own.
pub fn payload_slots(storage: Storage, vector_bytes: usize, m: usize) -> usize {
    let usable = PAGE_SIZE - page::HEADER_SIZE - SPECIAL_SIZE;
    let per_page = |slots: usize| {
        let pair = page::maxalign(element_len(slots, vector_bytes))
            + page::maxalign(neighbor_len(m, 0))
            + 8;
        usable / pair
    };
    let most = per_page(MIN_PAYLOAD_SLOTS);
    // 4-byte values start 4-aligned with an even count; a code's levels
    // (after 12 bytes of header, the slots and 16 bytes of factors) start
    // 8-aligned with a count of 2, 6 or 10
    let aligned = |s: &usize| match storage {
        Storage::RaBitQ => s % 4 == 2,
        _ => storage.element_size() != 4 || s.is_multiple_of(2),
    };
    (MIN_PAYLOAD_SLOTS..=MAX_PAYLOADS)
        .rev()
        .filter(aligned)
        // an element too big to share a page keeps room for itself
        .find(|s| per_page(*s) == most && (most > 0 || fits_a_page(element_len(*s, vector_bytes))))
        .unwrap_or(MIN_PAYLOAD_SLOTS)
}

/// Bytes of an element tuple with `slots` heap TID slots and a vector of
/// `vector_bytes`.
pub(crate) fn element_len(slots: usize, vector_bytes: usize) -> usize {
    size_of::<ElementHeader>() + size_of::<TidLe>() * slots + vector_bytes
}

/// Whether a tuple of `len` bytes fits an empty page.
pub(crate) fn fits_a_page(len: usize) -> bool {
    len <= tuple_space()
}

/// The largest element header (all MAX_PAYLOADS slots).
pub(crate) const ELEMENT_HEADER_MAX: usize =
    size_of::<ElementHeader>() + size_of::<TidLe>() * MAX_PAYLOADS;

/// The most dimensions an index of RaBitQ codes takes: as many as the
/// `vector` and `halfvec` types have, with one bit per dimension (a code
/// of 16,000 dimensions takes 2,016 bytes) or four (8,016 bytes: its
/// element, 8,088 bytes, still fits a page).
pub const QUANTIZED_MAX_DIMS: usize = 16_000;

/// The most dimensions vectors in `storage` may have in an index (codes
/// of `bits` per dimension for `Storage::RaBitQ`).
pub fn most_dims(storage: Storage, bits: u32) -> usize {
    match storage {
        Storage::Sparse => SPARSE_MAX_DIMS,
        Storage::RaBitQ => {
            let fits = |d: usize| {
                fits_a_page(element_len(
                    MAX_PAYLOADS,
                    distance::rabitq::code_bytes(d, bits),
                ))
            };
            // codes grow by whole 64-dimension steps
            let mut most = QUANTIZED_MAX_DIMS;
            while !fits(most) {
                most = distance::rabitq::padded_dims(most) - 64;
            }
            most
        }
        _ => max_dims_for(storage.element_size()),
    }
}

/// The most dimensions an element can have and still fit on one page.
pub const fn max_dims_for(element_size: usize) -> usize {
    (tuple_space() - ELEMENT_HEADER_MAX) / element_size
}

/// `max_dims_for` f32 elements.
pub const fn max_dims() -> usize {
    max_dims_for(4)
}

/// The most non-zeros a sparse vector's element can hold on one page.
pub fn max_sparse_nnz() -> usize {
    let room = tuple_space() - element_len(MIN_PAYLOAD_SLOTS, 0);
    (room / 4 - distance::sparse::WORDS_HEADER) / 2
}

/// Bytes per level-0 neighbour slot: the TID and its distance key.
const SLOT0: usize = size_of::<TidLe>() + size_of::<U32>();
/// Bytes per upper-level neighbour slot: the TID.
const SLOT_UPPER: usize = size_of::<TidLe>();

/// Bytes per slot on `level`.
fn slot_bytes(level: usize) -> usize {
    if level == 0 {
        SLOT0
    } else {
        SLOT_UPPER
    }
}

/// Neighbour slots of an element on `level`: 2m on level 0, m above.
pub(crate) fn slots_for(m: usize, level: usize) -> usize {
    2 * m + level * m
}

/// Bytes of the neighbour tuple of an element on `level`.
pub(crate) fn neighbor_len(m: usize, level: usize) -> usize {
    size_of::<NeighborHeader>() + SLOT0 * 2 * m + SLOT_UPPER * level * m
}

/// The highest level whose neighbour tuple (2m + level * m slots) still
/// fits an empty page: levels are capped there (for m = 100 at 10, reached
/// with probability 1e-20 per element; m <= 64 never hits it).
pub fn max_level(m: usize) -> usize {
    let room = tuple_space() - size_of::<NeighborHeader>();
    let m = m.max(1);
    room.saturating_sub(SLOT0 * 2 * m) / (SLOT_UPPER * m)
}

// ---- element tuples ----

/// The fixed start of an element tuple.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ElementHeader {
    kind: u8,
    level: u8,
    flags: u8,
    /// Heap TID slots in use.
    count: u8,
    neighbors: TidLe,
    /// Heap TID slots (0 in tuples written before the count was recorded,
    /// which all had MAX_PAYLOADS).
    slots: u8,
    reserved: u8,
}
const _: () = assert!(size_of::<ElementHeader>() == 12);

impl ElementHeader {
    fn slots(&self) -> usize {
        match self.slots as usize {
            0 => MAX_PAYLOADS,
            n => n,
        }
    }
}

/// Splits an element tuple into its header and heap TID slots and the rest
/// (the vector), checking the kind and that the slots fit.
fn split_element(raw: &[u8]) -> Option<(&ElementHeader, &[TidLe], &[u8])> {
    let (head, rest) = raw.split_at_checked(size_of::<ElementHeader>())?;
    let head: &ElementHeader = bytemuck::from_bytes(head);
    if head.kind != KIND_ELEMENT || head.slots() > MAX_PAYLOADS {
        return None;
    }
    let (heap, vector) = rest.split_at_checked(size_of::<TidLe>() * head.slots())?;
    Some((head, bytemuck::cast_slice(heap), vector))
}

/// Whether a sparse vector's words (`distance::sparse`: dimensions, then
/// the non-zero count, then indices and values) are as many as their count
/// says.
fn sparse_len_ok(vector: &[u8]) -> bool {
    let Some(count) = vector.get(4..8) else {
        return false;
    };
    let nnz = u32::from_le_bytes(count.try_into().expect("4 bytes")) as usize;
    vector.len() % 4 == 0 && vector.len() / 4 == distance::sparse::words(nnz)
}

/// An element tuple as read from a page.
#[derive(Clone, Copy)]
pub(crate) struct ElementTuple<'a> {
    head: &'a ElementHeader,
    /// The slots in use.
    heap: &'a [TidLe],
    vector: &'a [u8],
}

impl<'a> ElementTuple<'a> {
    /// Reads an element tuple of an index whose vectors take
    /// `vector_bytes` (`Meta::vector_bytes`); None when `raw` is not one.
    pub(crate) fn parse(raw: &'a [u8], vector_bytes: usize) -> Option<Self> {
        let (head, heap, vector) = split_element(raw)?;
        let length_ok = if vector_bytes != VARIABLE {
            vector.len() == vector_bytes
        } else {
            sparse_len_ok(vector)
        };
        let count = head.count as usize;
        (length_ok && count <= heap.len()).then(|| ElementTuple {
            head,
            heap: &heap[..count],
            vector,
        })
    }

    pub(crate) fn level(&self) -> usize {
        self.head.level as usize
    }
    pub(crate) fn flags(&self) -> u8 {
        self.head.flags
    }
    pub(crate) fn deleted(&self) -> bool {
        self.head.flags & FLAG_DELETED != 0
    }
    /// Its neighbour tuple.
    pub(crate) fn neighbors(&self) -> Tid {
        self.head.neighbors.get()
    }
    /// The heap TIDs it stands for.
    pub(crate) fn heap_tids(&self) -> impl Iterator<Item = Tid> + 'a {
        self.heap.iter().map(|t| t.get())
    }
    /// The vector's bytes in the index's storage.
    pub(crate) fn vector(&self) -> &'a [u8] {
        self.vector
    }
}

/// An element tuple being changed in place on a page.
pub(crate) struct ElementTupleMut<'a> {
    head: &'a mut ElementHeader,
    /// Every slot.
    heap: &'a mut [TidLe],
}

impl<'a> ElementTupleMut<'a> {
    /// None when `raw` is not an element tuple (its vector is not checked).
    pub(crate) fn parse(raw: &'a mut [u8]) -> Option<Self> {
        split_element(raw)?;
        let (head, rest) = raw.split_at_mut(size_of::<ElementHeader>());
        let head: &mut ElementHeader = bytemuck::from_bytes_mut(head);
        let slots = head.slots();
        let heap = bytemuck::cast_slice_mut(&mut rest[..size_of::<TidLe>() * slots]);
        (head.count as usize <= slots).then_some(ElementTupleMut { head, heap })
    }

    pub(crate) fn level(&self) -> usize {
        self.head.level as usize
    }
    pub(crate) fn flags(&self) -> u8 {
        self.head.flags
    }
    pub(crate) fn set_flags(&mut self, flags: u8) {
        self.head.flags = flags;
    }
    pub(crate) fn neighbors(&self) -> Tid {
        self.head.neighbors.get()
    }
    pub(crate) fn set_neighbors(&mut self, nt: Tid) {
        self.head.neighbors.set(nt);
    }
    pub(crate) fn heap_count(&self) -> usize {
        self.head.count as usize
    }

    /// Adds a heap TID; false when the slots are full or the element is
    /// deleted (a VACUUM got there first: the row needs a live element).
    pub(crate) fn add_heap_tid(&mut self, t: Tid) -> bool {
        let n = self.heap_count();
        if n >= self.heap.len() || self.head.flags & FLAG_DELETED != 0 {
            return false;
        }
        self.heap[n].set(t);
        self.head.count += 1;
        true
    }

    /// Keeps the heap TIDs `keep` accepts, in order; the freed slots are
    /// zeroed. Returns how many went.
    pub(crate) fn retain_heap_tids(&mut self, mut keep: impl FnMut(Tid) -> bool) -> usize {
        let n = self.heap_count();
        let mut kept = 0;
        for i in 0..n {
            let t = self.heap[i];
            if keep(t.get()) {
                self.heap[kept] = t;
                kept += 1;
            }
        }
        self.heap[kept..n].fill(TidLe::zeroed());
        self.head.count = kept as u8;
        n - kept
    }
}

/// A new element tuple: `heap` in its first of `slots` slots, pointing at
/// neighbour tuple `neighbors`, holding `vector` in stored form
/// (`crate::codec::Codec::encode`).
pub(crate) fn element_tuple(
    level: usize,
    heap: &[Tid],
    neighbors: Tid,
    vector: &[u8],
    slots: usize,
) -> Vec<u8> {
    debug_assert!(heap.len() <= slots && slots <= MAX_PAYLOADS);
    let head = ElementHeader {
        kind: KIND_ELEMENT,
        level: level as u8,
        flags: 0,
        count: heap.len() as u8,
        neighbors: neighbors.into(),
        slots: slots as u8,
        reserved: 0,
    };
    let mut b = Vec::with_capacity(element_len(slots, vector.len()));
    b.extend_from_slice(bytemuck::bytes_of(&head));
    let mut tids = vec![TidLe::zeroed(); slots];
    for (slot, t) in tids.iter_mut().zip(heap) {
        slot.set(*t);
    }
    b.extend_from_slice(bytemuck::cast_slice(&tids));
    b.extend_from_slice(vector);
    b
}

/// Points an element tuple (not yet on a page) at its neighbour tuple and
/// sets its flags.
pub(crate) fn element_set_neighbors(raw: &mut [u8], nt: Tid, flags: u8) {
    let mut e = ElementTupleMut::parse(raw).expect("an element tuple this crate encoded");
    e.set_neighbors(nt);
    e.set_flags(flags);
}

/// Reads the element at `t` of an index whose vectors take `vector_bytes`
/// (`Meta::vector_bytes`) from its page.
pub(crate) fn read_element(
    p: &[u8],
    t: Tid,
    vector_bytes: usize,
) -> Result<ElementTuple<'_>, Corrupt> {
    check_index_page(p)?;
    let raw = page::item(p, t.offset)?;
    ElementTuple::parse(raw, vector_bytes).ok_or_else(|| {
        Corrupt(format!(
            "tuple ({},{}) is not an element of {vector_bytes} vector bytes",
            t.block, t.offset
        ))
    })
}

/// The element tuple at `t` on page `p`, to change in place.
pub(crate) fn element_mut(p: &mut [u8], t: Tid) -> Result<ElementTupleMut<'_>, Corrupt> {
    ElementTupleMut::parse(page::item_mut(p, t.offset)?).ok_or_else(|| {
        Corrupt(format!(
            "tuple ({},{}) is no longer an element",
            t.block, t.offset
        ))
    })
}

/// One element as a page walk sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ElementHead {
    pub(crate) tid: Tid,
    pub(crate) level: usize,
    pub(crate) flags: u8,
    /// Bytes of the element tuple.
    pub(crate) len: usize,
    pub(crate) neighbors: Tid,
}

impl ElementHead {
    pub(crate) fn deleted(&self) -> bool {
        self.flags & FLAG_DELETED != 0
    }
    pub(crate) fn free(&self) -> bool {
        self.flags & FLAG_FREE != 0
    }
}

/// The elements of data page `block` (none on an all-zero page a crash
/// left), each checked as `read_element` does.
pub(crate) fn page_elements(
    p: &[u8],
    block: u32,
    vector_bytes: usize,
) -> Result<Vec<ElementHead>, Corrupt> {
    if page::is_new(p) {
        return Ok(Vec::new());
    }
    check_index_page(p)?;
    let mut out = Vec::new();
    for offset in 1..=page::max_offset(p)? {
        let raw = page::item(p, offset)?;
        if tuple_kind(raw) != Some(KIND_ELEMENT) {
            continue;
        }
        let tid = Tid { block, offset };
        let e = read_element(p, tid, vector_bytes)?;
        out.push(ElementHead {
            tid,
            level: e.level(),
            flags: e.flags(),
            len: raw.len(),
            neighbors: e.neighbors(),
        });
    }
    Ok(out)
}

// ---- neighbour tuples ----

/// The fixed start of a neighbour tuple.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct NeighborHeader {
    kind: u8,
    level: u8,
    slots: U16,
}

/// One neighbour slot: a link, its distance from the list's owner and
/// whether the selection heuristic counts it as diverse (the flag rides in
/// the lowest mantissa bit of the stored distance).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    pub tid: Tid,
    pub distance: f32,
    pub diverse: bool,
}

impl Link {
    pub const EMPTY: Link = Link {
        tid: Tid::INVALID,
        distance: 0.0,
        diverse: false,
    };

    fn key(&self) -> U32 {
        U32::new((self.distance.to_bits() & !1) | self.diverse as u32)
    }
}

/// The range of a level's slots inside a neighbour tuple.
pub(crate) fn level_range(m: usize, level: usize) -> std::ops::Range<usize> {
    let start = size_of::<NeighborHeader>();
    if level == 0 {
        start..start + SLOT0 * 2 * m
    } else {
        let start = start + SLOT0 * 2 * m + SLOT_UPPER * (level - 1) * m;
        start..start + SLOT_UPPER * m
    }
}

/// Encodes one level's block of slots (upper levels: the TIDs only).
pub(crate) fn links_bytes(level: usize, links: &[Link]) -> Vec<u8> {
    let mut b = Vec::with_capacity(slot_bytes(level) * links.len());
    for l in links {
        b.extend_from_slice(bytemuck::bytes_of(&TidLe::new(l.tid)));
    }
    if level == 0 {
        for l in links {
            b.extend_from_slice(bytemuck::bytes_of(&l.key()));
        }
    }
    b
}

/// The TIDs of one level's block of slots.
fn block_tids(level: usize, b: &[u8]) -> &[TidLe] {
    let n = b.len() / slot_bytes(level);
    bytemuck::cast_slice(&b[..size_of::<TidLe>() * n])
}

/// Decodes one level's block of slots. Upper levels store no keys: their
/// links come back with an unknown (NaN) distance, marked diverse.
pub(crate) fn links_from_bytes(level: usize, b: &[u8]) -> Vec<Link> {
    let tids = block_tids(level, b);
    if level > 0 {
        return tids
            .iter()
            .map(|t| Link {
                tid: t.get(),
                distance: f32::NAN,
                diverse: true,
            })
            .collect();
    }
    let keys: &[U32] = bytemuck::cast_slice(&b[size_of_val(tids)..]);
    tids.iter()
        .zip(keys)
        .map(|(t, k)| Link {
            tid: t.get(),
            distance: f32::from_bits(k.get() & !1),
            diverse: k.get() & 1 != 0,
        })
        .collect()
}

/// A neighbour tuple from all its slots, level 0's first.
pub(crate) fn neighbor_tuple(level: usize, links: &[Link]) -> Vec<u8> {
    let m = links.len() / (level + 2);
    debug_assert_eq!(slots_for(m, level), links.len());
    let head = NeighborHeader {
        kind: KIND_NEIGHBORS,
        level: level as u8,
        slots: U16::new(links.len() as u16),
    };
    let mut b = Vec::with_capacity(neighbor_len(m, level));
    b.extend_from_slice(bytemuck::bytes_of(&head));
    b.extend_from_slice(&links_bytes(0, &links[..2 * m]));
    for l in 1..=level {
        let start = 2 * m + (l - 1) * m;
        b.extend_from_slice(&links_bytes(l, &links[start..start + m]));
    }
    debug_assert_eq!(b.len(), neighbor_len(m, level));
    b
}

/// The level of a neighbour tuple, or None when `raw` is not one (its
/// size unchecked).
pub(crate) fn neighbor_level(raw: &[u8]) -> Option<usize> {
    let head: &NeighborHeader = bytemuck::from_bytes(raw.get(..size_of::<NeighborHeader>())?);
    (head.kind == KIND_NEIGHBORS).then_some(head.level as usize)
}

/// A neighbour tuple of an index with this `m`, as read from a page.
pub(crate) struct NeighborTuple<'a> {
    raw: &'a [u8],
    m: usize,
    level: usize,
}

impl<'a> NeighborTuple<'a> {
    /// None unless `raw` is a neighbour tuple of the size its level needs.
    pub(crate) fn parse(raw: &'a [u8], m: usize) -> Option<Self> {
        let level = neighbor_level(raw)?;
        (raw.len() == neighbor_len(m, level)).then_some(NeighborTuple { raw, m, level })
    }

    pub(crate) fn level(&self) -> usize {
        self.level
    }

    /// One level's block of slots as stored (for a compare-and-swap).
    pub(crate) fn level_bytes(&self, level: usize) -> &'a [u8] {
        &self.raw[level_range(self.m, level)]
    }

    /// One level's linked TIDs (empty slots left out).
    pub(crate) fn tids(&self, level: usize) -> impl Iterator<Item = Tid> + 'a {
        block_tids(level, self.level_bytes(level))
            .iter()
            .map(|t| t.get())
            .filter(|t| t.is_valid())
    }
}

/// The neighbour tuple at `nt` on page `p` of an index with this `m`,
/// checked to be of `level` when given.
pub(crate) fn read_neighbors(
    p: &[u8],
    nt: Tid,
    m: usize,
    level: Option<usize>,
) -> Result<NeighborTuple<'_>, Corrupt> {
    check_index_page(p)?;
    NeighborTuple::parse(page::item(p, nt.offset)?, m)
        .filter(|n| level.is_none_or(|l| l == n.level()))
        .ok_or_else(|| {
            Corrupt(format!(
                "tuple ({},{}) is not the neighbour list it should be",
                nt.block, nt.offset
            ))
        })
}

// ---- the center of codes ----

/// The start of a center tuple: a run of the center's values.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct CenterHeader {
    kind: u8,
    reserved: [u8; 3],
    /// The index of its first value in the center.
    first: U32,
    /// Values it holds.
    count: U32,
}
const CENTER_HEADER: usize = size_of::<CenterHeader>();

/// Values one center tuple holds at most (one to a page).
pub(crate) const CENTER_PER_PAGE: usize = (tuple_space() - CENTER_HEADER) / 4;

/// The center as tuples, one per page, on consecutive pages from
/// `Meta::center`: an index of codes of d dimensions takes
/// ceil(d / 2,039) such pages (8 for 16,000).
pub(crate) fn center_tuples(center: &[f32]) -> Vec<Vec<u8>> {
    center
        .chunks(CENTER_PER_PAGE)
        .enumerate()
        .map(|(i, chunk)| {
            let head = CenterHeader {
                kind: KIND_CENTER,
                reserved: [0; 3],
                first: U32::new((i * CENTER_PER_PAGE) as u32),
                count: U32::new(chunk.len() as u32),
            };
            let mut b = bytemuck::bytes_of(&head).to_vec();
            chunk
                .iter()
                .for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
            b
        })
        .collect()
}

/// Appends the values of the center tuple on page `p` (block `block`,
/// the `index`th center page) to `out`.
pub(crate) fn read_center_page(
    p: &[u8],
    block: u32,
    index: usize,
    out: &mut Vec<f32>,
) -> Result<(), Corrupt> {
    check_index_page(p)?;
    let bad = || {
        Corrupt(format!(
            "page {block} does not hold part {index} of the center"
        ))
    };
    let raw = page::item(p, 1)?;
    let (head, values) = raw.split_at_checked(CENTER_HEADER).ok_or_else(bad)?;
    let head: &CenterHeader = bytemuck::from_bytes(head);
    let count = head.count.get() as usize;
    if head.kind != KIND_CENTER
        || head.first.get() as usize != index * CENTER_PER_PAGE
        || values.len() != 4 * count
        || count == 0
    {
        return Err(bad());
    }
    out.extend(
        values
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))),
    );
    Ok(())
}

// ---- heap TIDs as build payloads ----

/// A heap TID payload packed as block << 16 | offset.
pub fn payload_tid(payload: u64) -> Tid {
    Tid {
        block: (payload >> 16) as u32,
        offset: payload as u16,
    }
}

pub fn tid_payload(t: Tid) -> u64 {
    (t.block as u64) << 16 | t.offset as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tid(block: u32, offset: u16) -> Tid {
        Tid { block, offset }
    }

    /// The bytes of layout version 3, written out by hand: a change to any
    /// header here is a change to indexes on disk (bump LAYOUT_VERSION).
    #[test]
    fn element_tuple_bytes_are_layout_3() {
        let raw = element_tuple(
            2,
            &[tid(0x0102_0304, 0x0506)],
            tid(7, 9),
            &1.5f32.to_le_bytes(),
            4,
        );
        let mut want = vec![1, 2, 0, 1, 7, 0, 0, 0, 9, 0, 4, 0];
        want.extend([4, 3, 2, 1, 6, 5]);
        want.extend([0; 18]);
        want.extend(1.5f32.to_le_bytes());
        assert_eq!(raw, want);
        let e = ElementTuple::parse(&raw, 4).unwrap();
        assert_eq!(
            (e.level(), e.neighbors(), e.deleted()),
            (2, tid(7, 9), false)
        );
        assert_eq!(
            e.heap_tids().collect::<Vec<_>>(),
            [tid(0x0102_0304, 0x0506)]
        );
        assert_eq!(e.vector(), 1.5f32.to_le_bytes());
        // a vector of another length, another kind, too many heap TIDs
        assert!(ElementTuple::parse(&raw, 8).is_none());
        let mut other = raw.clone();
        other[0] = KIND_NEIGHBORS;
        assert!(ElementTuple::parse(&other, 4).is_none());
        let mut other = raw.clone();
        other[3] = 5;
        assert!(ElementTuple::parse(&other, 4).is_none());
        assert!(ElementTuple::parse(&raw[..11], 0).is_none());
    }

    #[test]
    fn element_changes_in_place() {
        let mut raw = element_tuple(
            0,
            &[tid(1, 1), tid(1, 2), tid(1, 3)],
            Tid::INVALID,
            &[0u8; 8],
            4,
        );
        let mut e = ElementTupleMut::parse(&mut raw).unwrap();
        assert_eq!(e.retain_heap_tids(|t| t.offset != 2), 1);
        assert!(e.add_heap_tid(tid(2, 1)));
        assert!(e.add_heap_tid(tid(2, 2)));
        assert!(!e.add_heap_tid(tid(2, 3)), "four slots");
        e.set_neighbors(tid(3, 4));
        e.set_flags(FLAG_DELETED);
        let e = ElementTuple::parse(&raw, 8).unwrap();
        assert!(e.deleted());
        assert_eq!(e.neighbors(), tid(3, 4));
        assert_eq!(
            e.heap_tids().collect::<Vec<_>>(),
            [tid(1, 1), tid(1, 3), tid(2, 1), tid(2, 2)]
        );
        let mut raw = raw;
        let mut e = ElementTupleMut::parse(&mut raw).unwrap();
        assert_eq!(e.retain_heap_tids(|_| false), 4);
        assert_eq!(&raw[12..36], &[0; 24], "freed slots are zeroed");
    }

    #[test]
    fn neighbor_tuple_bytes_are_layout_3() {
        let m = 2;
        let link = |b: u32, d: f32, diverse: bool| Link {
            tid: tid(b, 1),
            distance: d,
            diverse,
        };
        // level 1: 4 level-0 slots, 2 level-1 slots
        let links = [
            link(5, 0.5, true),
            link(6, 1.0, false),
            Link::EMPTY,
            Link::EMPTY,
            link(7, 2.0, true),
            Link::EMPTY,
        ];
        let raw = neighbor_tuple(1, &links);
        assert_eq!(raw.len(), neighbor_len(m, 1));
        assert_eq!(raw[..4], [2, 1, 6, 0]);
        assert_eq!(raw[4..10], [5, 0, 0, 0, 1, 0]);
        assert_eq!(raw[16..22], Tid::INVALID.to_bytes());
        assert_eq!(raw[28..32], (0.5f32.to_bits() | 1).to_le_bytes());
        assert_eq!(raw[32..36], 1.0f32.to_bits().to_le_bytes());
        assert_eq!(raw[44..50], [7, 0, 0, 0, 1, 0]);
        let n = NeighborTuple::parse(&raw, m).unwrap();
        assert_eq!(n.level(), 1);
        assert_eq!(n.tids(0).collect::<Vec<_>>(), [tid(5, 1), tid(6, 1)]);
        assert_eq!(n.tids(1).collect::<Vec<_>>(), [tid(7, 1)]);
        assert_eq!(links_from_bytes(0, n.level_bytes(0)), links[..4]);
        let up = links_from_bytes(1, n.level_bytes(1));
        assert_eq!((up[0].tid, up[0].diverse), (tid(7, 1), true));
        assert!(up[0].distance.is_nan());
        assert!(NeighborTuple::parse(&raw, 3).is_none(), "another m");
        assert!(NeighborTuple::parse(&raw[..raw.len() - 1], m).is_none());
    }

    #[test]
    fn metapage_bytes_are_layout_3() {
        let meta = Meta {
            dims: 384,
            m: 16,
            ef_construction: 64,
            metric: Metric::Cosine,
            storage: Storage::F32,
            entry: tid(3, 2),
            entry_level: 4,
            insert_page: 9,
            free_page: [1, 2, 3, 4],
            seed: 0x0102_0304_0506_0708,
            center: 11,
            bits: 0,
            last_vacuum: page::VacuumRecord {
                at: 5,
                removed: 6,
                ..Default::default()
            },
        };
        let mut p = vec![0u8; PAGE_SIZE];
        page::init(&mut p, 0);
        meta.store(&mut p);
        let b = &p[page::HEADER_SIZE..page::HEADER_SIZE + META_SIZE];
        assert_eq!(b[0..4], META_MAGIC.to_le_bytes());
        assert_eq!(b[4..8], 3u32.to_le_bytes());
        assert_eq!(b[8..12], 384u32.to_le_bytes());
        assert_eq!(b[12..16], [16, 0, 64, 0]);
        assert_eq!(b[16..18], [Metric::Cosine.code(), Storage::F32.code()]);
        assert_eq!(b[18..26], [3, 0, 0, 0, 2, 0, 4, 0]);
        assert_eq!(b[28..32], 9u32.to_le_bytes());
        assert_eq!(b[44..48], 4u32.to_le_bytes());
        assert_eq!(b[48..56], 0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(b[56..60], 11u32.to_le_bytes());
        assert_eq!(b[60..68], 5u64.to_le_bytes());
        assert_eq!(b[68..76], 6u64.to_le_bytes());
        assert_eq!(Meta::decode(&p).unwrap(), meta);
        // a metapage written before the vacuum record (60 bytes of
        // contents) reads as no VACUUM recorded
        let mut old = p.clone();
        old[page::HEADER_SIZE + 60..page::HEADER_SIZE + META_SIZE].fill(0);
        let m = Meta::decode(&old).unwrap();
        assert_eq!(m.last_vacuum, page::VacuumRecord::default());
        assert_eq!(m.center, 11);
        // a metapage written before the seed (48 bytes of contents) reads
        // with seed 0
        let mut old = p.clone();
        old[page::HEADER_SIZE + 48..page::HEADER_SIZE + 60].fill(0);
        let m = Meta::decode(&old).unwrap();
        assert_eq!((m.seed, m.center), (0, 0));
        p[page::HEADER_SIZE + 4] = 2;
        assert!(Meta::decode(&p).unwrap_err().0.contains("layout version 2"));
    }
}
