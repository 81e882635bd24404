//! Writing a graph built in memory (`BuildGraph`) onto the pages of an
//! empty index: where every tuple goes (two placement orders, the one
//! taking fewer pages wins), then each page built whole and the pages added
//! in batches (`PageStore::append`).

use crate::build::BuildGraph;
use crate::codec::Codec;
use crate::format::{
    center_tuples, element_len, element_tuple, fits_a_page, init_index_page, most_dims,
    neighbor_len, neighbor_tuple, payload_tid, Link, Meta, FREE_CLASSES,
};
use crate::search::Graph;
use pagestore::page;
use pagestore::{PageStore, Tid, PAGE_SIZE};

/// Nodes encoded per parallel step (`write_graph_in`).
const ENCODE_BATCH: usize = 4096;

/// Pages `write_graph_in` hands the store at a time (128 KB, beside the
/// plan; Postgres logs new pages up to 32 to a WAL record).
pub(crate) const APPEND_PAGES: usize = 16;

/// Bytes per node the writing allocates besides what the graph holds: a
/// placement order (4), the page plan's two TIDs (2 x 8) and two tuple
/// entries (2 x 8), with room for the page boundaries. A build that keeps
/// its graph within maintenance_work_mem counts these too
/// (`BuildGraph::write_bytes`; `writing_stays_within_write_bytes` measures
/// the allocations).
pub const WRITE_BYTES_PER_NODE: usize = 40;

/// Why a graph was not written.
#[derive(Debug)]
pub enum WriteError {
    /// Vectors or elements that do not fit a page (a program limit).
    TooLarge(String),
    /// The allocator had no room for the page plan.
    OutOfMemory,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::TooLarge(s) => f.write_str(s),
            WriteError::OutOfMemory => f.write_str("out of memory for the page plan"),
        }
    }
}

impl From<std::collections::TryReserveError> for WriteError {
    fn from(_: std::collections::TryReserveError) -> Self {
        WriteError::OutOfMemory
    }
}

/// Writes a built graph into an empty store: metapage, then elements with
/// their neighbour tuples. Payloads must be packed TIDs (`tid_payload`).
pub fn write_graph<S: PageStore>(g: &BuildGraph, store: &S) -> Result<Meta, WriteError> {
    write_graph_in(g, store, None, &mut || {})
}

/// `write_graph`; codes (an index of codes) are made on `pool`'s threads,
/// `between` running on the caller's thread between batches (the
/// extension checks for interrupts there).
pub fn write_graph_in<S: PageStore>(
    g: &BuildGraph,
    store: &S,
    pool: Option<&rayon::ThreadPool>,
    between: &mut dyn FnMut(),
) -> Result<Meta, WriteError> {
    assert_eq!(store.nblocks(), 0, "write_graph needs an empty store");
    let dims = g.dim();
    let storage = g.params().page_storage();
    let most = most_dims(storage, g.params().quantize.map_or(1, |q| q.bits));
    if dims > most {
        return Err(WriteError::TooLarge(format!(
            "vectors of {dims} dimensions do not fit on a page (at most {most})"
        )));
    }
    let m = g.params().m;
    // Pass 1: count the pages each of two orders takes, then decide where
    // every tuple goes in the one that takes fewer.
    let order = {
        let (spread, grouped) = placement_orders(g)?;
        let count = |order: &[u32]| lay_out(g, order, |_, _| {});
        let (a, b) = (count(&spread)?, count(&grouped)?);
        if b < a {
            (grouped, b)
        } else {
            (spread, a)
        }
    };
    let Plan {
        element_tid,
        neighbor_tid,
        tuples,
        page_ends,
    } = plan_pages(g, &order.0, order.1)?;
    drop(order);
    store.extend(|_, p| page::init(p, 0));
    // codes are made around the center the graph chose (`code_center`)
    let center = g.code_center();
    let codec = g.params().codec(dims, center.clone());
    // every code made before the pages are: on the pool when there is one,
    // unless the graph linked on codes the pages take
    let mut encoded: Vec<Vec<u8>> = Vec::new();
    let linked_on_page_codes = !g.is_empty() && g.page_code(g.len() as u32 - 1).is_some();
    if let (Some(pool), true, false) = (pool, storage.is_quantized(), linked_on_page_codes) {
        use rayon::prelude::*;
        encoded.try_reserve_exact(g.len())?;
        for first in (0..g.len()).step_by(ENCODE_BATCH) {
            let ids = first as u32..(first + ENCODE_BATCH).min(g.len()) as u32;
            let batch: Vec<Vec<u8>> = pool.install(|| {
                ids.into_par_iter()
                    .map(|id| codec.encoded(g.vector(id)))
                    .collect()
            });
            encoded.extend(batch);
            between();
        }
    }
    // Pass 2: build each page with its final contents, and add them
    // `APPEND_PAGES` at a time (`PageStore::append`).
    let mut batch = Vec::new();
    batch.try_reserve_exact(APPEND_PAGES * PAGE_SIZE)?;
    let mut image = vec![0u8; PAGE_SIZE];
    let mut links = Vec::new();
    let mut first = 0;
    for (i, &end) in page_ends.iter().enumerate() {
        init_index_page(&mut image);
        for &(id, is_element) in &tuples[first..end as usize] {
            let (tuple, want) =
                if is_element {
                    (
                        match (g.page_code(id), encoded.get(id as usize)) {
                            (Some(code), _) => element_with(g, code, id, neighbor_tid[id as usize]),
                            (_, Some(code)) => element_with(g, code, id, neighbor_tid[id as usize]),
                            _ => encode_element(g, &codec, id, neighbor_tid[id as usize]),
                        },
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
        batch.extend_from_slice(&image);
        if batch.len() == APPEND_PAGES * PAGE_SIZE || i + 1 == page_ends.len() {
            let pages = (batch.len() / PAGE_SIZE) as u32;
            let at = store.append(&batch);
            assert_eq!(at + pages, i as u32 + 2, "pages are added in order");
            batch.clear();
        }
        first = end as usize;
    }
    let current = (!page_ends.is_empty()).then_some(page_ends.len() as u32);
    // the center's pages follow the graph's (inserts add pages after them)
    let mut center_page = 0;
    for tuple in center.as_deref().map(center_tuples).unwrap_or_default() {
        init_index_page(&mut image);
        page::add_item(&mut image, &tuple).expect("a center tuple fits a page");
        store.extend(|b, p| {
            center_page = if center_page == 0 { b } else { center_page };
            p.copy_from_slice(&image)
        });
    }
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
        seed: g.params().quantize.map_or(0, |q| q.seed),
        bits: g.params().quantize.map_or(0, |q| q.bits as u8),
        center: center_page,
        last_vacuum: Default::default(),
    };
    store.write(0, |p| meta.store(p));
    Ok(meta)
}

/// Where pass 1 put every tuple: per node its element's and neighbour
/// tuple's TID, and the data pages' tuples in order (page i, block i + 1,
/// holds `tuples[page_ends[i - 1]..page_ends[i]]`).
struct Plan {
    element_tid: Vec<Tid>,
    neighbor_tid: Vec<Tid>,
    tuples: Vec<(u32, bool)>,
    page_ends: Vec<u32>,
}

/// The plan of the `pages` data pages `order` takes (`lay_out`).
fn plan_pages(g: &BuildGraph, order: &[u32], pages: usize) -> Result<Plan, WriteError> {
    let tids = || -> Result<Vec<Tid>, WriteError> {
        let mut v = Vec::new();
        v.try_reserve_exact(g.len())?;
        v.resize(g.len(), Tid::INVALID);
        Ok(v)
    };
    let mut plan = Plan {
        element_tid: tids()?,
        neighbor_tid: tids()?,
        tuples: Vec::new(),
        page_ends: Vec::new(),
    };
    plan.tuples.try_reserve_exact(2 * order.len())?;
    plan.page_ends.try_reserve_exact(pages)?;
    lay_out(g, order, |(id, is_element), tid| {
        if tid.offset == 1 && tid.block > 1 {
            plan.page_ends.push(plan.tuples.len() as u32);
        }
        match is_element {
            true => plan.element_tid[id as usize] = tid,
            false => plan.neighbor_tid[id as usize] = tid,
        }
        plan.tuples.push((id, is_element));
    })?;
    if !plan.tuples.is_empty() {
        plan.page_ends.push(plan.tuples.len() as u32);
    }
    Ok(plan)
}

/// Lays out the nodes in `order` by filling a scratch page with tuples of
/// the right sizes (an element and its neighbour tuple share a page when
/// both fit), telling `place` each tuple's (node, is its element) and TID
/// in order; the number of data pages.
fn lay_out(
    g: &BuildGraph,
    order: &[u32],
    mut place: impl FnMut((u32, bool), Tid),
) -> Result<usize, WriteError> {
    let m = g.params().m;
    let mut scratch = vec![0u8; PAGE_SIZE];
    let zeros = vec![0u8; PAGE_SIZE];
    let mut pages = 0u32; // the metapage is block 0
    for &id in order {
        let level = g.level(id);
        let (elen, nlen) = (node_element_len(g, id), neighbor_len(m, level));
        if !fits_a_page(elen) {
            return Err(WriteError::TooLarge(format!(
                "an element of {elen} bytes does not fit on a page"
            )));
        }
        let both = page::maxalign(elen) + page::maxalign(nlen) + 8;
        if pages == 0 || page::free_space(&scratch) + 4 < both {
            init_index_page(&mut scratch);
            pages += 1;
        }
        let offset =
            page::add_item(&mut scratch, &zeros[..elen]).expect("element fits an empty page");
        place(
            (id, true),
            Tid {
                block: pages,
                offset,
            },
        );
        let offset = match page::add_item(&mut scratch, &zeros[..nlen]) {
            Some(o) => o,
            None => {
                init_index_page(&mut scratch);
                pages += 1;
                page::add_item(&mut scratch, &zeros[..nlen]).expect("fits an empty page")
            }
        };
        place(
            (id, false),
            Tid {
                block: pages,
                offset,
            },
        );
    }
    Ok(pages as usize)
}

/// Two orders to lay elements out in, both node order within each kind:
/// the elements of upper levels (bigger neighbour tuples) spread evenly
/// among the others, and grouped before them. Which packs tighter depends
/// on the sizes: 384-d f32 elements with m = 16 fit four a page, and two or
/// three upper-level ones on a page leave no room for a fourth, so spread
/// packs them tighter; 384-d binary16 ones fit seven a page only when none
/// is on an upper level, so spread they spoil most pages and grouped packs
/// tighter (page counts in bench/README.md, "Measurements behind design
/// choices").
pub(crate) fn placement_orders(
    g: &BuildGraph,
) -> Result<(Vec<u32>, Vec<u32>), std::collections::TryReserveError> {
    let linked = || (0..g.len() as u32).filter(|id| g.is_linked_node(*id));
    let upper = || linked().filter(|id| g.level(*id) > 0);
    let level0 = || linked().filter(|id| g.level(*id) == 0);
    let (uppers, level0s) = (upper().count(), level0().count());
    let mut grouped = Vec::new();
    grouped.try_reserve_exact(uppers + level0s)?;
    grouped.extend(upper().chain(level0()));
    let mut out = Vec::new();
    out.try_reserve_exact(uppers + level0s)?;
    if uppers == 0 || level0s == 0 {
        out.extend_from_slice(&grouped);
        return Ok((out, grouped));
    }
    let ratio = level0s as f64 / uppers as f64;
    let (mut u, mut l) = (upper().peekable(), level0().peekable());
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
    Ok((out, grouped))
}

/// Bytes of node `id`'s element tuple.
fn node_element_len(g: &BuildGraph, id: u32) -> usize {
    element_len(g.payload_slots(id), g.page_vector_bytes(id))
}

fn encode_element(g: &BuildGraph, codec: &Codec, id: u32, neighbors: Tid) -> Vec<u8> {
    element_with(g, &codec.encoded(g.vector(id)), id, neighbors)
}

/// Node `id`'s element tuple holding `vector` in stored form.
fn element_with(g: &BuildGraph, vector: &[u8], id: u32, neighbors: Tid) -> Vec<u8> {
    let heap: Vec<Tid> = g.payloads(id).into_iter().map(payload_tid).collect();
    element_tuple(g.level(id), &heap, neighbors, vector, g.payload_slots(id))
}
