//! Inserting one vector into an index on pages (what `aminsert` runs).
//!
//! Phases: (1) read-only search of every level for neighbours, like the
//! in-memory build; (2) a duplicate joins an element holding the same vector;
//! (3) otherwise the element and its neighbour tuple take the space of a
//! free (vacuumed) element of the same level (`reuse`) or are added, in one
//! page write when they share a page;
//! (4) each chosen neighbour's list gets the new element, and (5) the
//! metapage moves the entry point up when the new element is taller.
//!
//! Every write is one closure on one page, so each is one WAL record in the
//! extension. Lists are recomputed from reads made *before* the write and the
//! write first checks that the list it replaces is unchanged, retrying
//! otherwise: no page is read while another is held exclusively. A crash
//! between writes leaves a valid index with fewer links, never a dangling one
//! (the element exists before anything points to it).

use crate::format::{
    element_mut, element_set_neighbors, element_tuple, free_class, init_index_page, links_bytes,
    neighbor_tuple, payload_slots, read_element, slots_for, Link, Meta,
};
use crate::page_graph::{read_links, write_slots_if_unchanged, PageGraph};
use crate::reuse;
use crate::search::{search_levels, Candidate, Graph};
use crate::select::{link_update, merge_duplicate, random_level, select_neighbors, trim};
use crate::Visited;
use distance::{Element, Query};
use pagestore::{page, Corrupt, PageStore, Tid};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// A new element at this TID.
    Element(Tid),
    /// The heap TID joined the element at this TID (same vector).
    Duplicate(Tid),
    /// The metric cannot order this vector (zero vector under cosine).
    NotIndexed,
}

/// How often a neighbour-list update is retried when a concurrent insert
/// changed the list between our read and our write.
const RETRIES: usize = 8;

pub fn insert<S: PageStore>(
    store: &S,
    vector: Element,
    heap_tid: Tid,
    seed: u64,
) -> Result<Inserted, Corrupt> {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let Scratch {
            visited,
            slots,
            arena,
        } = &mut *scratch;
        visited.clear();
        slots.clear();
        arena.clear();
        insert_with(store, vector, heap_tid, seed, visited, slots, arena)
    })
}

/// Memory an insert needs, kept by the thread between inserts. Allocating
/// and freeing it per insert (hundreds of KB of vectors) lets malloc hand
/// it back to the kernel each time, and the next insert page-faults it all
/// in again, which halved insert throughput (bench/README.md, "Measurements
/// behind design choices").
#[derive(Default)]
struct Scratch {
    visited: Visited<Tid>,
    slots: HashMap<Tid, Option<Slot>>,
    arena: Vec<f32>,
}

/// A live element read into the arena: where its vector starts, its level
/// and its neighbour tuple.
#[derive(Clone, Copy)]
struct Slot {
    start: usize,
    len: usize,
    level: usize,
    neighbors: Tid,
}

#[cfg(test)]
thread_local! {
    /// Tests turn adoption off to make the orphans `reach` relinks.
    static ADOPTING: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

fn adopting() -> bool {
    #[cfg(test)]
    return ADOPTING.with(|a| a.get());
    #[cfg(not(test))]
    true
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

#[allow(clippy::too_many_arguments)]
fn insert_with<S: PageStore>(
    store: &S,
    vector: Element,
    heap_tid: Tid,
    seed: u64,
    visited: &mut Visited<Tid>,
    slots: &mut HashMap<Tid, Option<Slot>>,
    arena: &mut Vec<f32>,
) -> Result<Inserted, Corrupt> {
    let graph = PageGraph::open(store)?;
    let meta = *graph.meta();
    meta.check_vector(vector)?;
    let Some(mut prepared) = meta.metric.prepare(vector) else {
        return Ok(Inserted::NotIndexed);
    };
    // what the page will hold, so the duplicate check and the distances
    // stored in neighbour slots match later reads
    meta.storage.round_buf(&mut prepared);
    let mut q = Vec::new();
    prepared.as_element().append_words(&mut q);
    let owned = graph.codec().query_of(meta.metric, prepared.as_element());
    let query = owned.query();
    // the element's vector as its page will hold it
    let stored = graph.codec().encoded(&q);
    let m = meta.m as usize;
    let level = random_level(
        seed,
        heap_tid.block.wrapping_mul(65536) ^ heap_tid.offset as u32,
        m,
    );

    // (1) neighbours per level, searched without writing anything
    let found_per_level = search_neighbors(&graph, &query, level, Tid::INVALID, visited)?;

    // (2) an identical vector with room takes the heap TID: checked again
    // under the page lock, since a VACUUM may have deleted the element
    // (and an insert reused its space) since it was read
    if let Some((0, level0)) = found_per_level.last() {
        // the same vector is the same stored bytes (as pgvector compares
        // datums; for codes, the same code and factors: rows are re-ranked
        // by their own vectors, so a rare collision costs nothing)
        let same = |p: &[u8], id: Tid| -> Result<bool, Corrupt> {
            let e = read_element(p, id, meta.vector_bytes())?;
            Ok(!e.deleted() && e.vector() == stored)
        };
        let take = |id: Tid| -> Result<bool, Corrupt> {
            crate::page_graph::inside(store, id)?;
            if !store.read(id.block, |p| same(p, id))? {
                return Ok(false);
            }
            store.write(id.block, |p| -> Result<bool, Corrupt> {
                if !same(p, id)? {
                    return Ok(false);
                }
                Ok(element_mut(p, id)?.add_heap_tid(heap_tid))
            })
        };
        let self_distance = meta.storage.with_view(&stored, |e| query.distance(e));
        if let Some(id) = merge_duplicate(level0, self_distance, take)? {
            return Ok(Inserted::Duplicate(id));
        }
    }

    // Vectors of candidates, read once, for the selection heuristic.
    let mut cache = VectorCache::new(graph.codec().held(&q), slots, arena);
    let chosen = choose_neighbors(&graph, &found_per_level, &mut cache)?;

    // (3) the element and its neighbour tuple, on one page when they fit
    let mut links = vec![Link::EMPTY; slots_for(m, level)];
    let mut first = 0;
    for l in 0..=level {
        if let Some((_, sel)) = chosen.iter().find(|(cl, _)| *cl == l) {
            links[first..first + sel.len()].copy_from_slice(sel);
        }
        first += if l == 0 { 2 * m } else { m };
    }
    let slots = payload_slots(meta.storage, stored.len(), m);
    let element = element_tuple(level, &[heap_tid], Tid::INVALID, &stored, slots);
    let neighbors = neighbor_tuple(level, &links);
    let class = free_class(level);
    let claimed = reuse::claim(
        store,
        meta.vector_bytes(),
        meta.free_page[class],
        level,
        &element,
        &neighbors,
    )?;
    // The insert page as it is now, not as the search began: meanwhile it
    // may have filled up and another insert opened the next one. With the
    // stale hint, concurrent inserts each extended the index and left pages
    // partly empty (`tests::reuse::churn_soak` inserting 40,000 rows from
    // two threads: 12,737 pages where one thread fills 11,251; 11,739 with
    // the fresh hint, 11,280 when `place` also tries the last page).
    let (et, hint, new_insert_page) = match claimed.element {
        Some(et) => (et, meta.insert_page, meta.insert_page),
        None => {
            let hint = store.read(0, Meta::decode)?.insert_page;
            let (et, page) = place(store, hint, &element, &neighbors)?;
            (et, hint, page)
        }
    };

    cache.name_new(et);
    // (4) link back from each chosen neighbour
    link_back_chosen(store, &graph, &chosen, et, &mut cache)?;

    // (5) entry point and the hints, when any changed since the start (the
    // metapage's exclusive lock is not taken for nothing)
    let taller = !meta.entry.is_valid() || level > meta.entry_level as usize;
    if !taller && new_insert_page == hint && claimed.hint == meta.free_page[class] {
        return Ok(Inserted::Element(et));
    }
    // The entry point the links were searched from: none when the graph
    // was empty. Concurrent first inserts all search an empty graph; only
    // the first to reach the metapage may become the entry point with no
    // links, the others link into what is there by then and try again
    // (without this, 10 concurrent inserts into a new index left up to 9
    // elements no search could reach).
    let mut searched_from = meta.entry;
    let mut hints = Some((new_insert_page, claimed.hint));
    // Bounded: only a VACUUM emptying the graph between a relink and the
    // next metapage write sends it round again; an element left unlinked
    // is one VACUUM relinks.
    for _ in 0..RETRIES {
        let unlinked = store.write(0, |p| -> Result<bool, Corrupt> {
            let mut current = Meta::decode(p)?;
            let mut changed = false;
            let unlinked = !searched_from.is_valid() && current.entry.is_valid();
            if !unlinked && (!current.entry.is_valid() || level > current.entry_level as usize) {
                current.entry = et;
                current.entry_level = level as u16;
                changed = true;
            }
            if let Some((insert_page, free_hint)) = hints {
                if insert_page != current.insert_page {
                    current.insert_page = insert_page;
                    changed = true;
                }
                // unless another insert or a VACUUM moved it meanwhile
                if current.free_page[class] == meta.free_page[class]
                    && free_hint != meta.free_page[class]
                {
                    current.free_page[class] = free_hint;
                    changed = true;
                }
            }
            if changed {
                current.store(p);
            }
            Ok(unlinked)
        })?;
        if !unlinked {
            return Ok(Inserted::Element(et));
        }
        hints = None;
        searched_from = relink(store, et, &q, level, visited, &mut cache)?;
    }
    Ok(Inserted::Element(et))
}

type FoundPerLevel = crate::search::FoundPerLevel<Tid>;

/// The neighbours of `q` found on each level it will have (top first), by
/// a read-only search of the graph as it is now; `skip` (the element being
/// linked, when it exists already) is left out.
fn search_neighbors<S: PageStore>(
    graph: &PageGraph<S>,
    q: &Query,
    level: usize,
    skip: Tid,
    visited: &mut Visited<Tid>,
) -> Result<FoundPerLevel, Corrupt> {
    let ef = graph.meta().ef_construction as usize;
    let skip = skip.is_valid().then_some(skip);
    graph.walk(|w| match w.entry_point() {
        Some(entry) => search_levels(w, q, entry, level, ef, skip, visited, true),
        None => Vec::new(),
    })
}

/// Runs the selection heuristic over each level's live candidates.
fn choose_neighbors<S: PageStore>(
    graph: &PageGraph<S>,
    found_per_level: &FoundPerLevel,
    cache: &mut VectorCache,
) -> Result<Vec<(usize, Vec<Link>)>, Corrupt> {
    let meta = graph.meta();
    let m = meta.m as usize;
    let mut chosen: Vec<(usize, Vec<Link>)> = Vec::new();
    for (l, found) in found_per_level {
        let max = if *l == 0 { 2 * m } else { m };
        cache.prefetch(found.iter().map(|c| c.id), graph);
        let mut live: Vec<Candidate<Tid>> = Vec::with_capacity(found.len());
        for c in found {
            if cache.load(c.id, graph)? {
                live.push(*c);
            }
        }
        let (selected, diverse) = select_neighbors(&live, max, *l, |a, b| {
            graph.distance_between(cache.get(a), cache.get(b))
        });
        let links = selected
            .iter()
            .enumerate()
            .map(|(i, t)| Link {
                tid: *t,
                distance: live.iter().find(|c| c.id == *t).map_or(0.0, |c| c.distance),
                diverse: i < diverse,
            })
            .collect();
        chosen.push((*l, links));
    }
    Ok(chosen)
}

/// Links `et` back from each chosen neighbour. When every level-0
/// neighbour refuses the new element (an outlier: each one's list is
/// nearer to itself than to it), no search could reach it; the nearest
/// then takes it in place of its farthest non-diverse link (whose target a
/// diverse link of the same list covers), or of its farthest link when all
/// are diverse.
fn link_back_chosen<S: PageStore>(
    store: &S,
    graph: &PageGraph<S>,
    chosen: &[(usize, Vec<Link>)],
    et: Tid,
    cache: &mut VectorCache,
) -> Result<(), Corrupt> {
    let meta = graph.meta();
    let mut evicted = Vec::new();
    for (l, sel) in chosen {
        evicted.clear();
        let mut accepted = false;
        for n in sel {
            accepted |= link_back(store, graph, meta, n, et, *l, cache, false, &mut evicted)?;
        }
        if *l == 0 && !accepted {
            if let Some(nearest) = sel.first() {
                link_back(
                    store,
                    graph,
                    meta,
                    nearest,
                    et,
                    0,
                    cache,
                    true,
                    &mut evicted,
                )?;
            }
        }
        adopt(store, graph, meta, et, *l, &evicted, cache)?;
    }
    Ok(())
}

/// Links the new element `et` to the elements its neighbours' `level`
/// lists dropped to take it in (`evicted`). A dropped link may have been
/// an element's last way in: without this, inserts alone left elements no
/// search reaches (most rows of an inner-product index of uniform rows,
/// whose interior rows no list keeps; a few at m = 4 under L2), and only a
/// pass over the whole index (`reach`) found them. Each takes an empty
/// slot of `et`'s list, else the place of its farthest non-diverse link
/// to an element not dropped: that link is one this insert made, so its
/// target keeps every way in it had before. Adopted links are
/// non-diverse: the next element to need a slot of the list takes theirs,
/// and adopts them in turn. Distances are measured only for the elements
/// that find room. The cost: about a tenth of insert throughput
/// (bench/README.md, "Inserts that adopt what they evict").
fn adopt<S: PageStore>(
    store: &S,
    graph: &PageGraph<S>,
    meta: &Meta,
    et: Tid,
    level: usize,
    evicted: &[Tid],
    cache: &mut VectorCache,
) -> Result<(), Corrupt> {
    if evicted.is_empty() || !adopting() {
        return Ok(());
    }
    let m = meta.m as usize;
    let (nt, et_level) = store.read(et.block, |p| -> Result<(Tid, usize), Corrupt> {
        let e = read_element(p, et, meta.vector_bytes())?;
        Ok((e.neighbors(), e.level()))
    })?;
    // distances from et, measured only for the elements that find room
    let mut measured: Vec<(Tid, Option<f32>)> = Vec::new();
    for _ in 0..RETRIES {
        let (before, current) = read_links(store, nt, m, et_level, level)?;
        let mut list: Vec<Link> = current
            .iter()
            .copied()
            .filter(|l| l.tid.is_valid())
            .collect();
        // the links adoption may take, the farthest last
        let mut replaceable: Vec<usize> = (0..list.len())
            .filter(|&i| !list[i].diverse && !evicted.contains(&list[i].tid))
            .collect();
        replaceable.sort_by(|&a, &b| list[a].distance.total_cmp(&list[b].distance));
        for &x in evicted {
            let room = list.len() < current.len();
            if !room && replaceable.is_empty() {
                break;
            }
            if x == et || list.iter().any(|l| l.tid == x) {
                continue;
            }
            let distance = match measured.iter().find(|(t, _)| *t == x) {
                Some((_, d)) => *d,
                None => {
                    let d = cache
                        .load(x, graph)?
                        .then(|| graph.distance_between(cache.get(et), cache.get(x)));
                    measured.push((x, d));
                    d
                }
            };
            let Some(distance) = distance else {
                continue; // deleted meanwhile: never linked to
            };
            let link = Link {
                tid: x,
                distance,
                diverse: false,
            };
            if room {
                list.push(link);
            } else {
                let i = replaceable.pop().expect("checked above");
                list[i] = link;
            }
        }
        list.resize(current.len(), Link::EMPTY);
        let after = links_bytes(level, &list);
        if after == before || write_slots_if_unchanged(store, nt, m, level, &before, &after)? {
            return Ok(());
        }
    }
    Ok(())
}

/// Links the placed element `et` (vector `q`, of `level`) into the graph
/// as it is now: it was placed after searching an empty graph, and another
/// insert became the entry point first. Its own lists take the neighbours
/// found (merged with any link made to it meanwhile), and they link back.
/// Returns the entry point searched from.
fn relink<S: PageStore>(
    store: &S,
    et: Tid,
    q: &[f32],
    level: usize,
    visited: &mut Visited<Tid>,
    cache: &mut VectorCache,
) -> Result<Tid, Corrupt> {
    let graph = PageGraph::open(store)?;
    let meta = *graph.meta();
    let m = meta.m as usize;
    let owned = graph.codec().query(meta.metric, q);
    let found_per_level = search_neighbors(&graph, &owned.query(), level, et, visited)?;
    let chosen = choose_neighbors(&graph, &found_per_level, cache)?;
    let nt = store.read(et.block, |p| -> Result<Tid, Corrupt> {
        Ok(read_element(p, et, meta.vector_bytes())?.neighbors())
    })?;
    for (l, sel) in &chosen {
        for _ in 0..RETRIES {
            let (before, current) = read_links(store, nt, m, level, *l)?;
            let mut list: Vec<Link> = current
                .iter()
                .copied()
                .filter(|k| k.tid.is_valid())
                .collect();
            for s in sel {
                if !list.iter().any(|k| k.tid == s.tid) {
                    list.push(*s);
                }
            }
            trim(&mut list, current.len(), *l);
            list.resize(current.len(), Link::EMPTY);
            let after = links_bytes(*l, &list);
            if write_slots_if_unchanged(store, nt, m, *l, &before, &after)? {
                break;
            }
        }
    }
    link_back_chosen(store, &graph, &chosen, et, cache)?;
    Ok(meta.entry)
}

/// Times `place` looks for room on a page another insert added before it
/// adds one regardless.
const PLACE_TRIES: usize = 4;

/// Writes the element and neighbour tuples, on page `hint` when both fit,
/// else on a new page. Returns the element's TID and the page to hint next.
fn place<S: PageStore>(
    store: &S,
    hint: u32,
    element: &[u8],
    neighbors: &[u8],
) -> Result<(Tid, u32), Corrupt> {
    let need = page::maxalign(element.len()) + page::maxalign(neighbors.len()) + 8;
    let write_both = |p: &mut [u8], block: u32| -> Result<Option<Tid>, Corrupt> {
        crate::format::check_index_page(p)?;
        if page::free_space(p) + 4 < need {
            return Ok(None);
        }
        let eo = page::add_item(p, element).expect("checked free space");
        let no = page::add_item(p, neighbors).expect("checked free space");
        element_mut(p, Tid { block, offset: eo })?.set_neighbors(Tid { block, offset: no });
        Ok(Some(Tid { block, offset: eo }))
    };
    if hint != 0 && hint < store.nblocks() {
        if let Some(t) = store.write(hint, |p| write_both(p, hint))? {
            return Ok((t, hint));
        }
    }
    // The last page, which a concurrent insert may just have added; then a
    // new page, unless another insert added one meanwhile: that one is
    // tried first. Two inserts finding the same page full at once (the
    // second waits on the first's page lock, so they do) each added a page
    // and one of the two stayed nearly empty: 12% of the pages of a 1M-row
    // 384-d index built with a parallel worker held one element.
    let mut tries = 0;
    let both = loop {
        let blocks = store.nblocks();
        let last = blocks - 1;
        if last != hint && last != 0 {
            let written = store.write(last, |p| {
                if page::is_new(p) {
                    return Ok(None); // extended, never initialised (a crash)
                }
                write_both(p, last)
            })?;
            if let Some(t) = written {
                return Ok((t, last));
            }
        }
        let init = |b, p: &mut [u8]| {
            init_index_page(p);
            write_both(p, b)
        };
        tries += 1;
        if tries == PLACE_TRIES {
            break store.extend(init)?;
        }
        if let Some(both) = store.extend_from(blocks, init) {
            break both?;
        }
    };
    // elements too big to share a page with their neighbour tuple take two
    if let Some(t) = both {
        return Ok((t, t.block));
    }
    let nt = store.extend(|b, p| {
        init_index_page(p);
        page::add_item(p, neighbors).map(|o| Tid {
            block: b,
            offset: o,
        })
    });
    let nt = nt.ok_or_else(|| Corrupt("neighbour tuple does not fit an empty page".into()))?;
    // written pointing at its neighbour tuple: a crash between the two
    // pages leaves an unused neighbour tuple, never an element without one
    let mut element = element.to_vec();
    element_set_neighbors(&mut element, nt, 0);
    let et = store.extend(|b, p| {
        init_index_page(p);
        page::add_item(p, &element).map(|o| Tid {
            block: b,
            offset: o,
        })
    });
    let et = et.ok_or_else(|| Corrupt("element does not fit an empty page".into()))?;
    Ok((et, nt.block))
}

/// Adds `new` to the level-`level` list of `n`. On level 0, the way the
/// in-memory build does (`BuildGraph::add_link`): from the slots' stored
/// distances and diverse flags, `new` is diverse unless a diverse link
/// nearer to `n` is also nearer to `new`; links `new` now covers lose their
/// flag; an overfull list evicts its farthest non-diverse link. Only the
/// vectors of the diverse links compared with `new` are read, not the whole
/// list's. Upper levels store no distances: a list with room takes `new`,
/// a full one reruns the heuristic over its vectors (`upper_level_victim`).
/// `force` (level 0): `new` stays, in place of another link.
/// Returns whether the list now holds `new`.
#[allow(clippy::too_many_arguments)]
fn link_back<S: PageStore>(
    store: &S,
    graph: &PageGraph<S>,
    meta: &Meta,
    n: &Link,
    new: Tid,
    level: usize,
    cache: &mut VectorCache,
    force: bool,
    evicted: &mut Vec<Tid>,
) -> Result<bool, Corrupt> {
    let m = meta.m as usize;
    // Chosen neighbours were read (and found live) during selection; one
    // deleted since is simply not linked back.
    let Some(Slot {
        level: n_level,
        neighbors: nt,
        ..
    }) = cache.slot(n.tid, graph)?
    else {
        return Ok(false);
    };
    if level > n_level {
        return Err(Corrupt(format!(
            "element ({},{}) is linked on level {level} above its own",
            n.tid.block, n.tid.offset
        )));
    }
    let dq = n.distance;
    for _ in 0..RETRIES {
        let (before, current) = read_links(store, nt, m, n_level, level)?;
        if current.iter().any(|l| l.tid == new) {
            return Ok(true);
        }
        let mut list: Vec<Link> = current
            .iter()
            .copied()
            .filter(|l| l.tid.is_valid())
            .collect();
        if level > 0 {
            // Upper levels store no distance keys. A list with room takes
            // new without reading anything; a full one reruns the selection
            // heuristic over its links and new, and drops the farthest link
            // it does not keep (a deleted one first), or the farthest.
            list.push(Link {
                tid: new,
                distance: dq,
                diverse: true,
            });
            if list.len() > current.len() {
                cache.prefetch(list.iter().map(|l| l.tid), graph);
                let Some(victim) = upper_level_victim(&mut list, n.tid, meta, cache, graph)? else {
                    return Ok(false);
                };
                if list[victim].tid == new {
                    return Ok(false);
                }
                let dropped = list.swap_remove(victim).tid;
                list.resize(current.len(), Link::EMPTY);
                let after = links_bytes(level, &list);
                if write_slots_if_unchanged(store, nt, m, level, &before, &after)? {
                    evicted.push(dropped);
                    return Ok(true);
                }
                continue;
            }
            list.resize(current.len(), Link::EMPTY);
            let after = links_bytes(level, &list);
            if write_slots_if_unchanged(store, nt, m, level, &before, &after)? {
                return Ok(true);
            }
            continue;
        }
        cache.prefetch(list.iter().filter(|l| l.diverse).map(|l| l.tid), graph);
        let from_new = |t: Tid| -> Result<Option<f32>, Corrupt> {
            Ok(cache
                .load(t, graph)?
                .then(|| graph.distance_between(cache.get(new), cache.get(t))))
        };
        if !link_update(&mut list, new, dq, current.len(), level, force, from_new)? {
            return Ok(false);
        }
        list.resize(current.len(), Link::EMPTY);
        let done =
            write_slots_if_unchanged(store, nt, m, level, &before, &links_bytes(level, &list))?;
        if done {
            let kept = |t: &Tid| list.iter().any(|l| l.tid == *t);
            evicted.extend(
                current
                    .iter()
                    .map(|l| l.tid)
                    .filter(|t| t.is_valid() && !kept(t)),
            );
            return Ok(true);
        }
    }
    Ok(false) // persistently contended: the new element keeps its own links
}

/// Which link of an overfull upper-level list (the new one included) to
/// drop: the selection heuristic runs over the links nearest first (each is
/// kept when nearer to the list's owner `owner` than to every link kept
/// before it); the farthest link it does not keep goes, else the farthest.
/// A deleted link counts as farthest and is never kept. None when `owner`
/// cannot be read.
fn upper_level_victim<S: PageStore>(
    list: &mut [Link],
    owner: Tid,
    meta: &Meta,
    cache: &mut VectorCache,
    graph: &PageGraph<S>,
) -> Result<Option<usize>, Corrupt> {
    if !cache.load(owner, graph)? {
        return Ok(None);
    }
    let mut live = vec![false; list.len()];
    for (i, l) in list.iter_mut().enumerate() {
        live[i] = cache.load(l.tid, graph)?;
        l.distance = if live[i] {
            graph.distance_between(cache.get(owner), cache.get(l.tid))
        } else {
            f32::INFINITY
        };
    }
    let mut order: Vec<usize> = (0..list.len()).collect();
    order.sort_by(|a, b| list[*a].distance.total_cmp(&list[*b].distance));
    // the selection heuristic over the live links, nearest first
    let sorted: Vec<Candidate<usize>> = order
        .iter()
        .filter(|i| live[**i])
        .map(|&i| Candidate {
            distance: list[i].distance,
            id: i,
        })
        .collect();
    let (kept, _) = select_neighbors(&sorted, sorted.len(), 1, |a, b| {
        meta.metric
            .distance(cache.get(list[a].tid), cache.get(list[b].tid))
    });
    let victim = order
        .iter()
        .rev()
        .find(|i| !kept.contains(i))
        .or(order.last())
        .copied();
    Ok(victim)
}

/// Adds the existing element `t` (vector `v`) to the `level` lists of
/// `links`, as an insert links back (vacuum, after giving `t` new
/// neighbours, so that they point back at it as in a fresh build).
pub(crate) fn link_back_existing<S: PageStore>(
    store: &S,
    graph: &PageGraph<S>,
    meta: &Meta,
    t: Tid,
    v: &[f32],
    links: &[Link],
    level: usize,
) -> Result<(), Corrupt> {
    let (mut slots, mut arena) = (HashMap::new(), Vec::new());
    let mut cache = VectorCache::new(v.to_vec(), &mut slots, &mut arena);
    cache.name_new(t);
    let mut evicted = Vec::new();
    for n in links {
        link_back(
            store,
            graph,
            meta,
            n,
            t,
            level,
            &mut cache,
            false,
            &mut evicted,
        )?;
    }
    Ok(())
}

/// Element vectors read for the heuristic, each read from its page once.
/// A deleted element is remembered as absent: it is passed through by
/// searches but never linked to.
struct VectorCache<'a> {
    /// Where each element's vector sits in `arena` (None: deleted).
    slots: &'a mut HashMap<Tid, Option<Slot>>,
    arena: &'a mut Vec<f32>,
    new_vector: Vec<f32>,
    new_tid: Tid,
}

impl<'a> VectorCache<'a> {
    fn new(
        new_vector: Vec<f32>,
        slots: &'a mut HashMap<Tid, Option<Slot>>,
        arena: &'a mut Vec<f32>,
    ) -> Self {
        VectorCache {
            slots,
            arena,
            new_vector,
            new_tid: Tid::INVALID,
        }
    }

    /// The new element's TID, once placed, so `get` can answer for it.
    fn name_new(&mut self, t: Tid) {
        self.new_tid = t;
    }

    /// Lets the store fetch the pages of the elements not read yet.
    fn prefetch<S: PageStore>(&self, ts: impl Iterator<Item = Tid>, graph: &PageGraph<S>) {
        let missing: Vec<Tid> = ts
            .filter(|t| *t != self.new_tid && !self.slots.contains_key(t))
            .collect();
        graph.prefetch_elements(&missing);
    }

    /// Reads `t` if needed; false for a deleted element.
    fn load<S: PageStore>(&mut self, t: Tid, graph: &PageGraph<S>) -> Result<bool, Corrupt> {
        if t == self.new_tid {
            return Ok(true);
        }
        if let Some(slot) = self.slots.get(&t) {
            return Ok(slot.is_some());
        }
        let start = self.arena.len();
        let read = graph.read_vector(t, self.arena);
        let slot = match read {
            Ok((false, level, neighbors)) => Some(Slot {
                start,
                len: self.arena.len() - start,
                level,
                neighbors,
            }),
            Ok((true, ..)) => None,
            Err(e) => {
                self.arena.truncate(start);
                return Err(e);
            }
        };
        if slot.is_none() {
            self.arena.truncate(start);
        }
        self.slots.insert(t, slot);
        Ok(slot.is_some())
    }

    /// A vector `load` returned true for.
    fn get(&self, t: Tid) -> &[f32] {
        if t == self.new_tid {
            return &self.new_vector;
        }
        let Slot { start, len, .. } = self.slots[&t].expect("loaded");
        &self.arena[start..start + len]
    }

    /// Reads `t` if needed; its slot when it is live.
    fn slot<S: PageStore>(
        &mut self,
        t: Tid,
        graph: &PageGraph<S>,
    ) -> Result<Option<Slot>, Corrupt> {
        if t == self.new_tid || !self.load(t, graph)? {
            return Ok(None);
        }
        Ok(self.slots[&t])
    }
}

/// Runs `f` with inserts on this thread not adopting evicted elements (as
/// pgvector's inserts), to test what repairs the orphans that leaves.
#[cfg(test)]
pub(crate) fn without_adoption<R>(f: impl FnOnce() -> R) -> R {
    ADOPTING.with(|a| a.set(false));
    let r = f();
    ADOPTING.with(|a| a.set(true));
    r
}
