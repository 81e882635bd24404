//! The HNSW index on pages.
//!
//! Block 0 is the metapage; every other page holds element tuples and
//! neighbour tuples, each page marked by `SPECIAL_MAGIC` in its special space.
//!
//! Element tuple (little-endian):
//!   0 kind u8 = 1 | 1 level u8 | 2 flags u8 | 3 payload count u8
//!   4 neighbour tuple TID (6) | 10 payload slots u8 (0: 10) | 11 reserved
//!   12 payloads: that many heap TIDs (6 each), then the vector: dims
//!   elements, f32 or binary16 as the metapage's storage byte says, or a
//!   sparse vector's words (`distance::sparse`; their count varies).
//!   The slot count (at most MAX_PAYLOADS) is chosen per index (per
//!   element for sparse vectors) by `payload_slots` so that as many
//!   elements as possible fit a page.
//! Neighbour tuple: 0 kind u8 = 2 | 1 level u8 | 2 slots u16 |
//!   4 one block per level (level 0's 2m slots first, then m per upper
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

use crate::build::{BuildGraph, MAX_PAYLOADS};
use crate::search::Graph;
use crate::{Metric, Storage};
use pagestore::page;
use pagestore::{Corrupt, PageStore, Tid, PAGE_SIZE};
use std::cell::RefCell;

pub const META_MAGIC: u32 = 0x5658_484E; // "VXHN"
pub const LAYOUT_VERSION: u32 = 3;
/// In the special space of every page of the index.
pub const SPECIAL_MAGIC: u16 = 0x5648;
const SPECIAL_SIZE: usize = 8;
pub(crate) const KIND_ELEMENT: u8 = 1;
pub(crate) const KIND_NEIGHBORS: u8 = 2;
/// The largest element header (all MAX_PAYLOADS slots).
const ELEMENT_HEADER: usize = 12 + 6 * MAX_PAYLOADS;

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
        let pair =
            page::maxalign(12 + 6 * slots + vector_bytes) + page::maxalign(neighbor_len(m, 0)) + 8;
        usable / pair
    };
    let most = per_page(MIN_PAYLOAD_SLOTS);
    let aligned = |s: &usize| storage.element_size() != 4 || s % 2 == 0;
    (MIN_PAYLOAD_SLOTS..=MAX_PAYLOADS)
        .rev()
        .filter(aligned)
        // an element too big to share a page keeps room for itself
        .find(|s| per_page(*s) == most && (most > 0 || element_fits(12 + 6 * s + vector_bytes)))
        .unwrap_or(MIN_PAYLOAD_SLOTS)
}

/// Whether a tuple of `len` bytes fits an empty page.
fn element_fits(len: usize) -> bool {
    len <= (PAGE_SIZE - page::HEADER_SIZE - SPECIAL_SIZE - 4) & !7
}

/// The most dimensions a sparse vector may have, as for the type.
pub const SPARSE_MAX_DIMS: usize = 1_000_000_000;

/// The most non-zeros a sparse vector's element can hold on one page.
pub fn max_sparse_nnz() -> usize {
    let room =
        ((PAGE_SIZE - page::HEADER_SIZE - SPECIAL_SIZE - 4) & !7) - (12 + 6 * MIN_PAYLOAD_SLOTS);
    (room / 4 - distance::sparse::WORDS_HEADER) / 2
}

/// Fewer slots would turn duplicate-heavy data into many small elements.
pub(crate) const MIN_PAYLOAD_SLOTS: usize = 4;
const META_SIZE: usize = 28 + 4 + 4 * FREE_CLASSES;

/// The most dimensions an element can have and still fit on one page.
pub const fn max_dims_for(element_size: usize) -> usize {
    // Tuple space less one line pointer, rounded down to MAXALIGN.
    (((PAGE_SIZE - page::HEADER_SIZE - SPECIAL_SIZE - 4) & !7) - ELEMENT_HEADER) / element_size
}

/// `max_dims_for` f32 elements.
pub const fn max_dims() -> usize {
    max_dims_for(4)
}

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
}

impl Meta {
    /// Bytes of one element's vector on a page; `VARIABLE` for sparse
    /// vectors, whose words say how many there are.
    pub fn vector_bytes(&self) -> usize {
        if self.storage.fixed_length() {
            self.storage.bytes(self.dims as usize)
        } else {
            VARIABLE
        }
    }

    /// Checks a vector handed to an insert: the index's dimensions, and
    /// for a sparse one its form and that its element fits a page.
    pub fn check_vector(&self, v: &[f32]) -> Result<(), Corrupt> {
        use distance::sparse;
        let (got, fits) = if self.storage.fixed_length() {
            (v.len(), true)
        } else if sparse::valid_words(v) {
            let nnz = (v.len() - sparse::WORDS_HEADER) / 2;
            (sparse::dim_of(v) as usize, nnz <= max_sparse_nnz())
        } else {
            return Err(Corrupt("a malformed sparse vector".into()));
        };
        if got != self.dims as usize {
            return Err(Corrupt(format!(
                "expected {} dimensions, not {got}",
                self.dims
            )));
        }
        if !fits {
            return Err(Corrupt(format!(
                "a sparse vector of more than {} non-zeros",
                max_sparse_nnz()
            )));
        }
        Ok(())
    }

    fn encode(&self) -> [u8; META_SIZE] {
        let mut b = [0u8; META_SIZE];
        b[0..4].copy_from_slice(&META_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
        b[8..12].copy_from_slice(&self.dims.to_le_bytes());
        b[12..14].copy_from_slice(&self.m.to_le_bytes());
        b[14..16].copy_from_slice(&self.ef_construction.to_le_bytes());
        b[16] = self.metric.code();
        b[17] = self.storage.code();
        b[18..24].copy_from_slice(&self.entry.to_bytes());
        b[24..26].copy_from_slice(&self.entry_level.to_le_bytes());
        b[28..32].copy_from_slice(&self.insert_page.to_le_bytes());
        for (i, f) in self.free_page.iter().enumerate() {
            b[32 + 4 * i..36 + 4 * i].copy_from_slice(&f.to_le_bytes());
        }
        b
    }

    /// Writes the metapage contents into block 0's page image.
    pub fn store(&self, p: &mut [u8]) {
        p[page::HEADER_SIZE..page::HEADER_SIZE + META_SIZE].copy_from_slice(&self.encode());
        page::set_contents_len(p, META_SIZE);
    }

    pub fn decode(p: &[u8]) -> Result<Meta, Corrupt> {
        page::check(p)?;
        let b = &p[page::HEADER_SIZE..page::HEADER_SIZE + META_SIZE];
        let magic = u32::from_le_bytes(b[0..4].try_into().expect("4 bytes"));
        if magic != META_MAGIC {
            return Err(Corrupt(
                "metapage does not belong to a vector_ext hnsw index".into(),
            ));
        }
        let version = u32::from_le_bytes(b[4..8].try_into().expect("4 bytes"));
        if version != LAYOUT_VERSION {
            return Err(Corrupt(format!(
                "unsupported hnsw layout version {version} (expected {LAYOUT_VERSION})"
            )));
        }
        let metric = Metric::from_code(b[16])
            .ok_or_else(|| Corrupt(format!("unknown metric code {} in metapage", b[16])))?;
        let storage = Storage::from_code(b[17])
            .ok_or_else(|| Corrupt(format!("unknown storage code {} in metapage", b[17])))?;
        let meta = Meta {
            dims: u32::from_le_bytes(b[8..12].try_into().expect("4 bytes")),
            m: u16::from_le_bytes([b[12], b[13]]),
            ef_construction: u16::from_le_bytes([b[14], b[15]]),
            metric,
            storage,
            entry: Tid::from_bytes(&b[18..24]),
            entry_level: u16::from_le_bytes([b[24], b[25]]),
            insert_page: u32::from_le_bytes(b[28..32].try_into().expect("4 bytes")),
            free_page: std::array::from_fn(|i| {
                u32::from_le_bytes(b[32 + 4 * i..36 + 4 * i].try_into().expect("4 bytes"))
            }),
        };
        if !metric.stores_as(storage) {
            return Err(Corrupt(format!(
                "metapage pairs metric {metric:?} with storage {storage:?}"
            )));
        }
        let most = match storage {
            Storage::Sparse => SPARSE_MAX_DIMS,
            _ => max_dims_for(storage.element_size()),
        };
        if meta.dims == 0 || meta.dims as usize > most || meta.m < 2 {
            return Err(Corrupt(format!(
                "metapage has impossible dims {} or m {}",
                meta.dims, meta.m
            )));
        }
        Ok(meta)
    }
}

fn init_data_page(p: &mut [u8]) {
    page::init(p, SPECIAL_SIZE);
    page::special_mut(p).expect("fresh page")[0..2].copy_from_slice(&SPECIAL_MAGIC.to_le_bytes());
}

fn check_data_page(p: &[u8]) -> Result<(), Corrupt> {
    let s = page::special(p)?;
    if s.len() != SPECIAL_SIZE || u16::from_le_bytes([s[0], s[1]]) != SPECIAL_MAGIC {
        return Err(Corrupt("page is not an hnsw data page".into()));
    }
    Ok(())
}

fn slots(m: usize, level: usize) -> usize {
    2 * m + level * m
}

/// Bytes of the neighbour tuple of an element on `level`.
fn neighbor_len(m: usize, level: usize) -> usize {
    4 + SLOT0 * 2 * m + SLOT_UPPER * level * m
}

/// Bytes per level-0 neighbour slot: the TID and its distance key.
const SLOT0: usize = 10;
/// Bytes per upper-level neighbour slot: the TID.
const SLOT_UPPER: usize = 6;

/// Bytes per slot on `level`.
fn slot_bytes(level: usize) -> usize {
    if level == 0 {
        SLOT0
    } else {
        SLOT_UPPER
    }
}

/// The highest level whose neighbour tuple (2m + level * m slots) still
/// fits an empty page: levels are capped there (for m = 100 at 10, reached
/// with probability 1e-20 per element; m <= 64 never hits it).
pub fn max_level(m: usize) -> usize {
    let room = ((PAGE_SIZE - page::HEADER_SIZE - SPECIAL_SIZE - 4) & !7) - 4;
    let m = m.max(1);
    room.saturating_sub(SLOT0 * 2 * m) / (SLOT_UPPER * m)
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

    fn key(&self) -> [u8; 4] {
        ((self.distance.to_bits() & !1) | self.diverse as u32).to_le_bytes()
    }
}

/// Encodes one level's block of slots (upper levels: the TIDs only).
pub(crate) fn links_bytes(level: usize, links: &[Link]) -> Vec<u8> {
    let mut b = Vec::with_capacity(slot_bytes(level) * links.len());
    for l in links {
        b.extend_from_slice(&l.tid.to_bytes());
    }
    if level == 0 {
        for l in links {
            b.extend_from_slice(&l.key());
        }
    }
    b
}

/// Decodes one level's block of slots. Upper levels store no keys: their
/// links come back with an unknown (NaN) distance, marked diverse.
pub(crate) fn links_from_bytes(level: usize, b: &[u8]) -> Vec<Link> {
    let n = b.len() / slot_bytes(level);
    (0..n)
        .map(|i| {
            let tid = Tid::from_bytes(&b[6 * i..6 * i + 6]);
            if level > 0 {
                return Link {
                    tid,
                    distance: f32::NAN,
                    diverse: true,
                };
            }
            let k = u32::from_le_bytes(b[6 * n + 4 * i..6 * n + 4 * i + 4].try_into().expect("4"));
            Link {
                tid,
                distance: f32::from_bits(k & !1),
                diverse: k & 1 != 0,
            }
        })
        .collect()
}

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

/// Writes a built graph into an empty store: metapage, then elements with
/// their neighbour tuples. Payloads must be packed TIDs (`tid_payload`).
pub fn write_graph<S: PageStore>(g: &BuildGraph, store: &S) -> Result<Meta, String> {
    assert_eq!(store.nblocks(), 0, "write_graph needs an empty store");
    let dims = g.dim();
    let storage = g.params().storage;
    let most = if storage.fixed_length() {
        max_dims_for(storage.element_size())
    } else {
        SPARSE_MAX_DIMS
    };
    if dims > most {
        return Err(format!(
            "vectors of {dims} dimensions do not fit on a page (at most {most})"
        ));
    }
    let m = g.params().m;
    // Pass 1: decide where every tuple goes, for two orders, and keep the
    // one that takes fewer pages.
    let (spread, grouped) = placement_orders(g);
    let plan = {
        let a = plan_pages(g, &spread)?;
        let b = plan_pages(g, &grouped)?;
        if b.pages.len() < a.pages.len() {
            b
        } else {
            a
        }
    };
    let Plan {
        element_tid,
        neighbor_tid,
        pages,
    } = plan;
    store.extend(|_, p| page::init(p, 0));
    // Pass 2: build each page with its final contents and add it, one
    // buffer operation per page.
    let mut image = vec![0u8; PAGE_SIZE];
    let mut links = Vec::new();
    for (i, tuples) in pages.iter().enumerate() {
        init_data_page(&mut image);
        for &(id, is_element) in tuples {
            let (tuple, want) =
                if is_element {
                    (
                        encode_element(g, id, neighbor_tid[id as usize]),
                        element_tid[id as usize],
                    )
                } else {
                    let level = g.level(id);
                    links.clear();
                    for l in 0..=level {
                        let first = links.len();
                        links.extend(g.link_infos(id, l).into_iter().map(
                            |(n, distance, diverse)| Link {
                                tid: element_tid[n as usize],
                                distance,
                                diverse,
                            },
                        ));
                        links.resize(first + if l == 0 { 2 * m } else { m }, Link::EMPTY);
                    }
                    (neighbor_tuple(level, &links), neighbor_tid[id as usize])
                };
            let offset = page::add_item(&mut image, &tuple).expect("placed in pass 1");
            assert_eq!(
                Tid {
                    block: i as u32 + 1,
                    offset
                },
                want,
                "placement"
            );
        }
        store.extend(|b, p| {
            assert_eq!(b, i as u32 + 1, "pages are added in order");
            p.copy_from_slice(&image)
        });
    }
    let current = (!pages.is_empty()).then_some(pages.len() as u32);
    let (entry, entry_level) = match g.entry_point() {
        Some((e, l)) => (element_tid[e as usize], l as u16),
        None => (Tid::INVALID, 0),
    };
    let meta = Meta {
        dims: dims as u32,
        m: m as u16,
        ef_construction: g.params().ef_construction as u16,
        metric: g.params().metric,
        storage,
        entry,
        entry_level,
        insert_page: current.unwrap_or(0),
        free_page: [0; FREE_CLASSES],
    };
    store.write(0, |p| meta.store(p));
    Ok(meta)
}

/// Where pass 1 put every tuple: per node its element's and neighbour
/// tuple's TID, and per data page (block 1 on) its tuples in order.
struct Plan {
    element_tid: Vec<Tid>,
    neighbor_tid: Vec<Tid>,
    pages: Vec<Vec<(u32, bool)>>,
}

/// Lays out the nodes in `order` by filling a scratch page with tuples of
/// the right sizes: an element and its neighbour tuple share a page when
/// both fit.
fn plan_pages(g: &BuildGraph, order: &[u32]) -> Result<Plan, String> {
    let m = g.params().m;
    let mut plan = Plan {
        element_tid: vec![Tid::INVALID; g.len()],
        neighbor_tid: vec![Tid::INVALID; g.len()],
        pages: Vec::new(),
    };
    let pages = &mut plan.pages;
    let mut scratch = vec![0u8; PAGE_SIZE];
    let zeros = vec![0u8; PAGE_SIZE];
    let new_page = |pages: &mut Vec<Vec<(u32, bool)>>, scratch: &mut [u8]| {
        init_data_page(scratch);
        pages.push(Vec::new()); // block pages.len(): the metapage is block 0
    };
    for &id in order {
        let level = g.level(id);
        let (elen, nlen) = (element_len(g, id), neighbor_len(m, level));
        if !element_fits(elen) {
            return Err(format!("an element of {elen} bytes does not fit on a page"));
        }
        let both = page::maxalign(elen) + page::maxalign(nlen) + 8;
        if pages.is_empty() || page::free_space(&scratch) + 4 < both {
            new_page(pages, &mut scratch);
        }
        let block = pages.len() as u32;
        let offset =
            page::add_item(&mut scratch, &zeros[..elen]).expect("element fits an empty page");
        plan.element_tid[id as usize] = Tid { block, offset };
        pages.last_mut().expect("a page").push((id, true));
        let offset = match page::add_item(&mut scratch, &zeros[..nlen]) {
            Some(o) => o,
            None => {
                new_page(pages, &mut scratch);
                page::add_item(&mut scratch, &zeros[..nlen]).expect("fits an empty page")
            }
        };
        plan.neighbor_tid[id as usize] = Tid {
            block: pages.len() as u32,
            offset,
        };
        pages.last_mut().expect("a page").push((id, false));
    }
    Ok(plan)
}

/// Two orders to lay elements out in, both node order within each kind:
/// the elements of upper levels (bigger neighbour tuples) spread evenly
/// among the others, and grouped before them. Which packs tighter depends
/// on the sizes: 384-d f32 elements with m = 16 fit four a page, and two or
/// three upper-level ones on a page left no room for a fourth (with 10-byte
/// upper slots: 25,037 pages grouped, 25,012 spread; with 6-byte slots
/// 25,001 spread, as pgvector's); 384-d binary16 ones fit seven a page only
/// when none is on an upper level, so spread they spoil most pages (15,606
/// pages spread, 14,436 grouped).
pub(crate) fn placement_orders(g: &BuildGraph) -> (Vec<u32>, Vec<u32>) {
    let linked = (0..g.len() as u32).filter(|id| g.is_linked_node(*id));
    let (upper, level0): (Vec<u32>, Vec<u32>) = linked.partition(|id| g.level(*id) > 0);
    let grouped: Vec<u32> = upper.iter().chain(&level0).copied().collect();
    if upper.is_empty() || level0.is_empty() {
        return (grouped.clone(), grouped);
    }
    let mut out = Vec::with_capacity(upper.len() + level0.len());
    let ratio = level0.len() as f64 / upper.len() as f64;
    let (mut u, mut l) = (upper.into_iter().peekable(), level0.into_iter().peekable());
    let mut owed = 0.0;
    while u.peek().is_some() || l.peek().is_some() {
        match u.next() {
            Some(x) => out.push(x),
            None => {
                out.extend(l.by_ref());
                break;
            }
        }
        owed += ratio;
        while owed >= 1.0 {
            match l.next() {
                Some(x) => out.push(x),
                None => break,
            }
            owed -= 1.0;
        }
    }
    (out, grouped)
}

/// Bytes of node `id`'s element tuple.
fn element_len(g: &BuildGraph, id: u32) -> usize {
    12 + 6 * g.payload_slots(id) + g.params().storage.bytes(g.vector(id).len())
}

fn encode_element(g: &BuildGraph, id: u32, neighbors: Tid) -> Vec<u8> {
    let heap: Vec<Tid> = g.payloads(id).into_iter().map(payload_tid).collect();
    let p = g.params();
    let slots = g.payload_slots(id);
    element_tuple(
        g.level(id),
        &heap,
        neighbors,
        g.vector(id),
        p.storage,
        slots,
    )
}

pub(crate) fn element_tuple(
    level: usize,
    heap: &[Tid],
    neighbors: Tid,
    vector: &[f32],
    storage: Storage,
    slots: usize,
) -> Vec<u8> {
    debug_assert!(heap.len() <= slots && slots <= MAX_PAYLOADS);
    let mut b = vec![0u8; 12 + 6 * slots];
    b[0] = KIND_ELEMENT;
    b[1] = level as u8;
    b[3] = heap.len() as u8;
    b[4..10].copy_from_slice(&neighbors.to_bytes());
    b[10] = slots as u8;
    for (i, t) in heap.iter().enumerate() {
        b[12 + 6 * i..18 + 6 * i].copy_from_slice(&t.to_bytes());
    }
    storage.encode(vector, &mut b);
    b
}

/// Adds a heap TID to an element tuple in place; false when it is full or
/// deleted (a VACUUM got there first: the row needs a live element).
pub(crate) fn element_add_heap_tid(raw: &mut [u8], t: Tid) -> bool {
    let n = raw[3] as usize;
    if n >= slots_of(raw) || raw[2] & FLAG_DELETED != 0 {
        return false;
    }
    raw[12 + 6 * n..18 + 6 * n].copy_from_slice(&t.to_bytes());
    raw[3] += 1;
    true
}

/// Points an element tuple at its neighbour tuple.
pub(crate) fn element_set_neighbors(raw: &mut [u8], nt: Tid) {
    raw[4..10].copy_from_slice(&nt.to_bytes());
}

/// The range of a level's slots inside a neighbour tuple.
pub(crate) fn level_slots(m: usize, level: usize) -> std::ops::Range<usize> {
    if level == 0 {
        4..4 + SLOT0 * 2 * m
    } else {
        let start = 4 + SLOT0 * 2 * m + SLOT_UPPER * (level - 1) * m;
        start..start + SLOT_UPPER * m
    }
}

pub(crate) fn init_index_page(p: &mut [u8]) {
    init_data_page(p)
}

pub(crate) fn check_index_page(p: &[u8]) -> Result<(), Corrupt> {
    check_data_page(p)
}

pub(crate) fn slots_for(m: usize, level: usize) -> usize {
    slots(m, level)
}

/// A neighbour tuple from all its slots, level 0's first.
pub(crate) fn neighbor_tuple(level: usize, links: &[Link]) -> Vec<u8> {
    let m = links.len() / (level + 2);
    debug_assert_eq!(slots(m, level), links.len());
    let mut b = Vec::with_capacity(neighbor_len(m, level));
    b.push(KIND_NEIGHBORS);
    b.push(level as u8);
    b.extend_from_slice(&(links.len() as u16).to_le_bytes());
    b.extend_from_slice(&links_bytes(0, &links[..2 * m]));
    for l in 1..=level {
        let start = 2 * m + (l - 1) * m;
        b.extend_from_slice(&links_bytes(l, &links[start..start + m]));
    }
    debug_assert_eq!(b.len(), neighbor_len(m, level));
    b
}

/// Bit 0 of an element's flags: every heap TID is gone (vacuum); searches
/// pass through the element but never return it.
pub(crate) const FLAG_DELETED: u8 = 1;
/// Bit 1 (always with bit 0): VACUUM has repaired every link into the
/// deleted element, so an insert of the same level may take its element and
/// neighbour tuple for a new vector (`insert::claim_free_slot`).
pub(crate) const FLAG_FREE: u8 = 2;

/// Free-slot hints in the metapage: levels 0, 1 and 2 each have their
/// own, higher levels (one element in m^3) share the last.
pub const FREE_CLASSES: usize = 4;

/// Which `Meta::free_page` hint serves elements of `level`.
pub(crate) fn free_class(level: usize) -> usize {
    level.min(FREE_CLASSES - 1)
}

/// An element as `PageGraph::element` reads it.
#[derive(Clone, Debug)]
pub struct ElementInfo {
    pub vector: Vec<f32>,
    pub level: usize,
    pub neighbors: Tid,
    pub deleted: bool,
}

/// An element read from a page.
pub(crate) struct Element<'a> {
    pub(crate) level: usize,
    pub(crate) payload_count: usize,
    pub(crate) raw: &'a [u8],
    /// Where the vector starts in `raw`.
    vector_start: usize,
}

impl Element<'_> {
    pub(crate) fn vector(&self) -> &[u8] {
        &self.raw[self.vector_start..]
    }
}

/// Heap TID slots of an element tuple (0 in tuples written before the
/// count was recorded, which all had MAX_PAYLOADS).
fn slots_of(raw: &[u8]) -> usize {
    match raw[10] as usize {
        0 => MAX_PAYLOADS,
        n => n,
    }
}

/// `Meta::vector_bytes` of sparse vectors: each element's words say.
pub const VARIABLE: usize = 0;

/// Reads the element at `t` of an index whose vectors take `vector_bytes`
/// (`Meta::vector_bytes`).
pub(crate) fn read_element(p: &[u8], t: Tid, vector_bytes: usize) -> Result<Element<'_>, Corrupt> {
    check_data_page(p)?;
    let raw = page::item(p, t.offset)?;
    let header = if raw.len() > 12 {
        12 + 6 * slots_of(raw)
    } else {
        0
    };
    let length_ok = |header: usize| {
        if vector_bytes != VARIABLE {
            return raw.len() == header + vector_bytes;
        }
        // a sparse vector's words: their count follows the dimensions
        let words = raw.len().saturating_sub(header) / 4;
        raw.len() >= header + 8
            && raw.len() == header + 4 * words
            && words
                == distance::sparse::words(u32::from_le_bytes(
                    raw[header + 4..header + 8].try_into().expect("4 bytes"),
                ) as usize)
    };
    if header == 0 || slots_of(raw) > MAX_PAYLOADS || raw[0] != KIND_ELEMENT || !length_ok(header) {
        return Err(Corrupt(format!(
            "tuple ({},{}) is not an element of {vector_bytes} vector bytes",
            t.block, t.offset
        )));
    }
    let payload_count = raw[3] as usize;
    if payload_count > slots_of(raw) {
        return Err(Corrupt(format!(
            "element ({},{}) claims {payload_count} heap TIDs",
            t.block, t.offset
        )));
    }
    Ok(Element {
        level: raw[1] as usize,
        payload_count,
        raw,
        vector_start: header,
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
    check_data_page(p)?;
    let mut out = Vec::new();
    for offset in 1..=page::max_offset(p)? {
        if page::item(p, offset)?.first() != Some(&KIND_ELEMENT) {
            continue;
        }
        let tid = Tid { block, offset };
        let e = read_element(p, tid, vector_bytes)?;
        out.push(ElementHead {
            tid,
            level: e.level,
            flags: e.raw[2],
            len: e.raw.len(),
            neighbors: Tid::from_bytes(&e.raw[4..10]),
        });
    }
    Ok(out)
}

/// Read access to an index on pages. Graph callbacks cannot fail, so the
/// first corruption met is kept (the search then sees a dead end) and
/// `take_error` reports it once the search is over.
pub struct PageGraph<'s, S: PageStore> {
    store: &'s S,
    meta: Meta,
    error: RefCell<Option<Corrupt>>,
}

impl<'s, S: PageStore> PageGraph<'s, S> {
    pub fn open(store: &'s S) -> Result<Self, Corrupt> {
        if store.nblocks() == 0 {
            return Err(Corrupt("index has no metapage".into()));
        }
        let meta = store.read(0, Meta::decode)?;
        Ok(PageGraph {
            store,
            meta,
            error: RefCell::new(None),
        })
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn take_error(&self) -> Option<Corrupt> {
        self.error.borrow_mut().take()
    }

    fn fail(&self, e: Corrupt) {
        self.error.borrow_mut().get_or_insert(e);
    }

    fn with_page<R>(&self, t: Tid, f: impl FnOnce(&[u8]) -> Result<R, Corrupt>) -> Option<R> {
        if t.block == 0 || !t.is_valid() || !self.store.contains(t.block) {
            self.fail(Corrupt(format!(
                "link to ({},{}) points outside the index",
                t.block, t.offset
            )));
            return None;
        }
        match self.store.read(t.block, f) {
            Ok(r) => Some(r),
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    pub fn store(&self) -> &'s S {
        self.store
    }

    /// An element's vector, level, neighbour tuple and deleted flag.
    pub fn element(&self, t: Tid) -> Option<ElementInfo> {
        let bytes = self.meta.vector_bytes();
        self.with_page(t, |p| {
            let e = read_element(p, t, bytes)?;
            let mut v = Vec::with_capacity(e.vector().len() / self.meta.storage.element_size());
            self.meta.storage.decode(e.vector(), &mut v);
            Ok(ElementInfo {
                vector: v,
                level: e.level,
                neighbors: Tid::from_bytes(&e.raw[4..10]),
                deleted: e.raw[2] & FLAG_DELETED != 0,
            })
        })
    }

    /// A hint that these elements are about to be read.
    pub fn prefetch_elements(&self, ts: &[Tid]) {
        self.store
            .prefetch(ts, ELEMENT_HEADER + self.meta.vector_bytes());
    }

    /// Appends an element's vector to `out`; returns whether the element is
    /// flagged deleted, its level and its neighbour tuple, or None when it
    /// cannot be read.
    pub fn read_vector(&self, t: Tid, out: &mut Vec<f32>) -> Option<(bool, usize, Tid)> {
        let bytes = self.meta.vector_bytes();
        self.with_page(t, |p| {
            let e = read_element(p, t, bytes)?;
            self.meta.storage.decode(e.vector(), out);
            Ok((
                e.raw[2] & FLAG_DELETED != 0,
                e.level,
                Tid::from_bytes(&e.raw[4..10]),
            ))
        })
    }

    /// The heap TIDs an element stands for.
    pub fn heap_tids(&self, t: Tid) -> Vec<Tid> {
        let bytes = self.meta.vector_bytes();
        self.with_page(t, |p| {
            let e = read_element(p, t, bytes)?;
            Ok((0..e.payload_count)
                .map(|i| Tid::from_bytes(&e.raw[12 + 6 * i..18 + 6 * i]))
                .collect())
        })
        .unwrap_or_default()
    }
}

impl<S: PageStore> Graph for PageGraph<'_, S> {
    type Id = Tid;

    fn entry_point(&self) -> Option<(Tid, usize)> {
        self.meta
            .entry
            .is_valid()
            .then_some((self.meta.entry, self.meta.entry_level as usize))
    }

    fn neighbors(&self, id: Tid, level: usize, out: &mut Vec<Tid>) {
        out.clear();
        let bytes = self.meta.vector_bytes();
        let m = self.meta.m as usize;
        let Some((nt, elevel)) = self.with_page(id, |p| {
            let e = read_element(p, id, bytes)?;
            Ok((Tid::from_bytes(&e.raw[4..10]), e.level))
        }) else {
            return;
        };
        if level > elevel {
            return;
        }
        let found = self.with_page(nt, |p| {
            check_data_page(p)?;
            let raw = page::item(p, nt.offset)?;
            if raw.len() != neighbor_len(m, elevel)
                || raw[0] != KIND_NEIGHBORS
                || raw[1] as usize != elevel
            {
                return Err(Corrupt(format!(
                    "tuple ({},{}) is not the neighbour list it should be",
                    nt.block, nt.offset
                )));
            }
            let r = level_slots(m, level);
            let tids = r.start..r.start + 6 * (r.len() / slot_bytes(level));
            Ok(raw[tids]
                .chunks_exact(6)
                .map(Tid::from_bytes)
                .filter(|t| t.is_valid())
                .collect::<Vec<_>>())
        });
        if let Some(f) = found {
            *out = f;
        }
    }

    fn all_nodes(&self, out: &mut Vec<Tid>) {
        out.clear();
        let bytes = self.meta.vector_bytes();
        for block in 1..self.store.nblocks() {
            let read = self.store.read(block, |p| -> Result<(), Corrupt> {
                if page::is_new(p) {
                    return Ok(()); // extended, never initialised (a crash)
                }
                check_index_page(p)?;
                for offset in 1..=page::max_offset(p)? {
                    if page::item(p, offset)?[0] != KIND_ELEMENT {
                        continue;
                    }
                    let t = Tid { block, offset };
                    if read_element(p, t, bytes)?.raw[2] & FLAG_DELETED == 0 {
                        out.push(t);
                    }
                }
                Ok(())
            });
            if let Err(e) = read {
                self.fail(e);
                return;
            }
        }
    }

    fn distances(&self, query: &[f32], ids: &[Tid], out: &mut Vec<f32>) {
        self.prefetch_elements(ids);
        out.clear();
        out.extend(ids.iter().map(|id| self.distance(query, *id)));
    }

    fn distances_flagged(
        &self,
        query: &[f32],
        ids: &[Tid],
        out: &mut Vec<f32>,
        deleted: &mut Vec<bool>,
    ) {
        self.prefetch_elements(ids);
        (out.clear(), deleted.clear());
        for id in ids {
            // an unreadable element counts as deleted: nothing to return
            let (d, gone) = self
                .distance_flagged(query, *id)
                .unwrap_or((f32::INFINITY, true));
            out.push(d);
            deleted.push(gone);
        }
    }

    fn distance(&self, query: &[f32], id: Tid) -> f32 {
        self.distance_flagged(query, id)
            .map_or(f32::INFINITY, |(d, _)| d)
    }
}

impl<S: PageStore> PageGraph<'_, S> {
    /// Distance from the query to element `id`, and whether it is flagged
    /// deleted; None when it cannot be read (the error is kept).
    fn distance_flagged(&self, query: &[f32], id: Tid) -> Option<(f32, bool)> {
        let (metric, storage) = (self.meta.metric, self.meta.storage);
        self.with_page(id, |p| {
            let e = read_element(p, id, self.meta.vector_bytes())?;
            // Tuples are MAXALIGNed and the vector starts at offset 72, so
            // on a page buffer it is read in place.
            let d = metric.distance_stored(storage, query, e.vector());
            Ok((d, e.raw[2] & FLAG_DELETED != 0))
        })
    }
}

/// Replaces the bytes of one level's slots in a neighbour tuple if they still
/// equal `before`; false when a concurrent writer changed them first.
pub(crate) fn write_slots_if_unchanged<S: PageStore>(
    store: &S,
    nt: Tid,
    range: std::ops::Range<usize>,
    before: &[u8],
    after: &[u8],
) -> Result<bool, Corrupt> {
    store.write(nt.block, |p| -> Result<bool, Corrupt> {
        check_data_page(p)?;
        let raw = page::item_mut(p, nt.offset)?;
        if raw.len() < range.end || raw[range.clone()] != *before {
            return Ok(false);
        }
        raw[range].copy_from_slice(after);
        Ok(true)
    })
}

/// One level's slots of a neighbour tuple, as raw bytes (for a later
/// `write_slots_if_unchanged`) and as links (empty slots included).
pub(crate) fn read_links<S: PageStore>(
    store: &S,
    nt: Tid,
    m: usize,
    element_level: usize,
    level: usize,
) -> Result<(Vec<u8>, Vec<Link>), Corrupt> {
    store.read(nt.block, |p| -> Result<(Vec<u8>, Vec<Link>), Corrupt> {
        check_data_page(p)?;
        let raw = page::item(p, nt.offset)?;
        if raw.len() != neighbor_len(m, element_level) || raw[0] != KIND_NEIGHBORS {
            return Err(Corrupt(format!(
                "neighbour tuple ({},{}) has the wrong size",
                nt.block, nt.offset
            )));
        }
        let bytes = raw[level_slots(m, level)].to_vec();
        let links = links_from_bytes(level, &bytes);
        Ok((bytes, links))
    })
}

/// `read_links` with the TIDs only.
pub(crate) fn read_slots<S: PageStore>(
    store: &S,
    nt: Tid,
    m: usize,
    element_level: usize,
    level: usize,
) -> Result<(Vec<u8>, Vec<Tid>), Corrupt> {
    let (bytes, links) = read_links(store, nt, m, element_level, level)?;
    Ok((bytes, links.into_iter().map(|l| l.tid).collect()))
}
