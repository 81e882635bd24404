//! Vacuum (what `ambulkdelete` runs): remove dead heap TIDs and repair the
//! graph around elements that lost all of theirs.
//!
//! Pass 1 visits every data page once (an all-zero one a crash left is
//! initialised, and inserts are pointed at it): dead heap TIDs leave their element,
//! and an element left with none is flagged deleted. Searches still pass
//! through deleted elements (their own links stay intact, so scans running
//! meanwhile keep working) but never return them. Then VACUUM waits for the
//! inserts running (`bulk_delete_waiting`) and lists the deleted elements
//! again (inserts may have taken free ones). Pass 2 reads the pages once
//! more and, for each live element on them (those inserted meanwhile too;
//! they are counted, not kept), replaces every link to a deleted element (not yet free) with the
//! best of the element's remaining links, the deleted neighbour's live
//! links (its 2-hop neighbourhood) and what a search for the element's
//! vector finds on that level, chosen by the same heuristic as inserts; each
//! list is written with a compare-and-swap, so concurrent inserts are not
//! lost. The new neighbours then link back to the element as they would to
//! an insert, so elements keep ways in as their old in-links are deleted.
//! Pass 3 moves the entry point off a deleted element.
//! Pass 4 flags the deleted elements free: nothing live links to them any
//! more, so inserts may write new elements over them (`reuse`); the
//! metapage's hints point at the first page holding one.
//! Pass 5 links back any element no search can reach (`reach`), within the
//! budget, once what passes 1-4 held (the deleted elements) is given back.

use crate::format::{
    element_mut, init_index_page, links_bytes, page_elements, read_element, Link, Meta,
    FLAG_DELETED, FREE_CLASSES,
};
use crate::page_graph::{read_slots, write_slots_if_unchanged, PageGraph};
use crate::reach::Reach;
use crate::search::{search_level_counting, Candidate};
use crate::select::select_neighbors;
use pagestore::{page, Corrupt, PageStore, Tid};
use std::collections::{HashMap, HashSet};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VacuumStats {
    pub heap_tids_removed: u64,
    pub elements_deleted: u64,
    pub links_repaired: u64,
    pub live_elements: u64,
    pub live_heap_tids: u64,
    /// Deleted elements flagged free for inserts to reuse (pass 4).
    pub elements_freed: u64,
    /// Unreachable elements linked back in (pass 5, `reach`).
    pub elements_relinked: u64,
    /// Pass 5 did not run: the bytes it needs are over the budget.
    pub reach_needs: Option<usize>,
    /// All-zero pages a crash left, initialised for inserts (pass 1).
    pub pages_initialised: u64,
}

impl VacuumStats {
    /// What the metapage keeps of this VACUUM, finished at `at`
    /// (TimestampTz).
    pub fn record(&self, at: i64) -> page::VacuumRecord {
        page::VacuumRecord {
            at,
            removed: self.heap_tids_removed,
            remaining: self.live_heap_tids,
            reused: self.elements_freed,
            relinked: self.elements_relinked,
            reach_skipped_bytes: self.reach_needs.unwrap_or(0) as u64,
        }
    }
}

/// Keeps `r` in the metapage as what the last VACUUM did; `later`: `r` is
/// a later index pass of the VACUUM the metapage's record is of, and adds
/// to it.
pub fn record_vacuum<S: PageStore>(
    store: &S,
    r: page::VacuumRecord,
    later: bool,
) -> Result<(), Corrupt> {
    store.write(0, |p| -> Result<(), Corrupt> {
        let mut m = Meta::decode(p)?;
        m.last_vacuum = if later { m.last_vacuum.then(r) } else { r };
        m.store(p);
        Ok(())
    })
}

const RETRIES: usize = 8;

/// One element as pass 1 found it.
struct Seen {
    t: Tid,
    level: usize,
    was_deleted: bool,
    now_deleted: bool,
    /// Freed by an earlier VACUUM (no link leads to it).
    free: bool,
    heap_tids: u64,
}

/// Removes the heap TIDs `is_dead` names. `between_pages` runs between page
/// visits (the extension checks for interrupts and vacuum delay there).
/// For a store no insert runs on meanwhile; else `bulk_delete_waiting`.
pub fn bulk_delete<S: PageStore>(
    store: &S,
    is_dead: impl Fn(Tid) -> bool,
    between_pages: impl FnMut(),
) -> Result<VacuumStats, Corrupt> {
    bulk_delete_waiting(store, is_dead, between_pages, || {})
}

/// `bulk_delete` while inserts may run: `wait_for_inserts` returns once
/// every insert that had started when it was called has finished (the
/// extension: a lock inserts hold in share mode, taken here exclusively).
/// It is called after pass 1, so that every insert which could have read a
/// deleted element as live has written its links before the repair looks
/// for them, and later inserts see it deleted and never link to it: when
/// VACUUM frees an element, no link leads to it.
pub fn bulk_delete_waiting<S: PageStore>(
    store: &S,
    is_dead: impl Fn(Tid) -> bool,
    between_pages: impl FnMut(),
    wait_for_inserts: impl FnOnce(),
) -> Result<VacuumStats, Corrupt> {
    bulk_delete_within(store, is_dead, usize::MAX, between_pages, wait_for_inserts)
}

/// `bulk_delete_waiting` whose reachability pass (5) keeps within
/// `budget` bytes (`reach`; the extension: `maintenance_work_mem`).
pub fn bulk_delete_within<S: PageStore>(
    store: &S,
    is_dead: impl Fn(Tid) -> bool,
    budget: usize,
    mut between_pages: impl FnMut(),
    wait_for_inserts: impl FnOnce(),
) -> Result<VacuumStats, Corrupt> {
    let graph = PageGraph::open(store)?;
    let meta = *graph.meta();
    let mut stats = VacuumStats::default();
    // deleted elements not free yet: pass 2 repairs the links into them
    let mut deleted: HashSet<Tid> = HashSet::new();
    // every deleted element, free or not, and its level (pass 4)
    let mut deleted_levels: Vec<(Tid, usize)> = Vec::new();
    // live elements are counted, not kept: pass 2 finds them on the pages
    // again (16 bytes an element was 160 MB at 10M rows)
    let mut live = Live::default();
    let mut newly_deleted = 0;

    // Pass 1
    let mut first_empty = None;
    for block in 1..store.nblocks() {
        if store.read(block, page::is_new) {
            // added and never initialised (a crash): inserts take it again
            if store.init_if_new(block, init_index_page) {
                stats.pages_initialised += 1;
                first_empty.get_or_insert(block);
            }
            between_pages();
            continue;
        }
        let page_result = |p: &mut [u8], write: bool| -> Result<(u64, Vec<Seen>), Corrupt> {
            let heads = page_elements(p, block, meta.vector_bytes())?;
            let mut removed = 0;
            let mut elements = Vec::new();
            for head in heads {
                let t = head.tid;
                let e = read_element(p, t, meta.vector_bytes())?;
                let count = e.heap_tids().count();
                let dead = e.heap_tids().filter(|h| is_dead(*h)).count();
                removed += dead as u64;
                let was_deleted = head.deleted();
                let now_deleted = was_deleted || dead == count;
                if write {
                    let mut e = element_mut(p, t)?;
                    e.retain_heap_tids(|h| !is_dead(h));
                    if now_deleted {
                        e.set_flags(e.flags() | FLAG_DELETED);
                    }
                }
                elements.push(Seen {
                    t,
                    level: head.level,
                    was_deleted,
                    now_deleted,
                    free: head.free(),
                    heap_tids: (count - dead) as u64,
                });
            }
            Ok((removed, elements))
        };
        // Work on a copy first: pages without dead TIDs are not written (no WAL).
        let mut copy = store.read(block, |p| p.to_vec());
        let (mut removed, mut elements) = page_result(&mut copy, false)?;
        if removed > 0 {
            (removed, elements) = store.write(block, |p| page_result(p, true))?;
        }
        stats.heap_tids_removed += removed;
        for e in elements {
            if e.now_deleted {
                if !e.free {
                    deleted.insert(e.t);
                }
                deleted_levels.push((e.t, e.level));
                if !e.was_deleted {
                    newly_deleted += 1;
                }
            } else {
                live.see(e.t, e.level);
                stats.live_heap_tids += e.heap_tids;
            }
        }
        between_pages();
    }
    stats.elements_deleted = newly_deleted;
    stats.live_elements = live.count;

    if !deleted.is_empty() {
        // Elements inserted during pass 1 may link to the ones it deleted:
        // once the inserts running now are done, list the deleted elements
        // again, then repair the live ones, all of them on the pages now.
        // Elements already free need no repair (nothing links to them) and
        // inserts may take them meanwhile: the repair leaves them alone.
        wait_for_inserts();
        (deleted, deleted_levels) = (HashSet::new(), Vec::new());
        for block in 1..store.nblocks() {
            let heads = store.read(block, |p| page_elements(p, block, meta.vector_bytes()))?;
            for e in heads.into_iter().filter(|e| e.deleted()) {
                if !e.free() {
                    deleted.insert(e.tid);
                }
                deleted_levels.push((e.tid, e.level));
            }
            between_pages();
        }
        // Pass 2, page by page
        live = Live::default();
        for block in 1..store.nblocks() {
            let heads = store.read(block, |p| page_elements(p, block, meta.vector_bytes()))?;
            for e in heads.into_iter().filter(|e| !e.deleted()) {
                live.see(e.tid, e.level);
                for l in 0..=e.level {
                    stats.links_repaired +=
                        repair_level(store, &graph, &meta, e.tid, e.level, l, &deleted)?;
                }
            }
            between_pages();
        }
    }

    // Pass 3
    let entry_gone = deleted_levels.iter().any(|(t, _)| *t == meta.entry);
    if entry_gone || (!meta.entry.is_valid() && live.count > 0) {
        let new_entry = live.top;
        store.write(0, |p| -> Result<(), Corrupt> {
            let mut m = Meta::decode(p)?;
            if m.entry == meta.entry {
                (m.entry, m.entry_level) = match new_entry {
                    Some((t, l)) => (t, l as u16),
                    None => (Tid::INVALID, 0),
                };
                m.store(p);
            }
            Ok(())
        })?;
    }
    // Pass 4
    let entry = store.read(0, Meta::decode)?.entry;
    let (freed, lowest) = crate::reuse::free_deleted(
        store,
        &deleted_levels,
        |t| !deleted.contains(&t),
        entry,
        &mut between_pages,
    )?;
    stats.elements_freed = freed;
    // what passes 1-4 held goes before pass 5 takes its budget
    drop((deleted, deleted_levels));
    set_free_hints(store, lowest.map(|b| b.unwrap_or(0)))?;
    if let Some(block) = first_empty {
        store.write(0, |p| -> Result<(), Corrupt> {
            let mut m = Meta::decode(p)?;
            m.insert_page = block;
            m.store(p);
            Ok(())
        })?;
    }
    // Pass 5
    match crate::reach::repair_reachability(store, budget, between_pages)? {
        Reach::Relinked(n) => stats.elements_relinked = n,
        Reach::OverBudget { needs, .. } => stats.reach_needs = Some(needs),
    }
    Ok(stats)
}

/// Live elements seen: how many, and the one on the highest level (the
/// lowest TID among equals), the entry point when the old one goes.
#[derive(Default)]
struct Live {
    count: u64,
    top: Option<(Tid, usize)>,
}

impl Live {
    fn see(&mut self, t: Tid, level: usize) {
        self.count += 1;
        if self
            .top
            .is_none_or(|(top, l)| level > l || (level == l && t < top))
        {
            self.top = Some((t, level));
        }
    }
}

/// Replaces `t`'s links to deleted elements on level `l`; returns how many.
fn repair_level<S: PageStore>(
    store: &S,
    graph: &PageGraph<S>,
    meta: &Meta,
    t: Tid,
    level: usize,
    l: usize,
    deleted: &HashSet<Tid>,
) -> Result<u64, Corrupt> {
    let m = meta.m as usize;
    let info = graph.element(t)?;
    for _ in 0..RETRIES {
        let (before, current) = read_slots(store, info.neighbors, m, level, l)?;
        let gone: Vec<Tid> = current
            .iter()
            .copied()
            .filter(|n| deleted.contains(n))
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        // Candidates: remaining links, plus the live links of each deleted one.
        let mut ids: Vec<Tid> = current
            .iter()
            .copied()
            .filter(|n| n.is_valid() && !deleted.contains(n))
            .collect();
        for d in &gone {
            let di = graph.element(*d)?;
            if l <= di.level {
                let (_, links) = read_slots(store, di.neighbors, m, di.level, l)?;
                ids.extend(
                    links
                        .into_iter()
                        .filter(|n| n.is_valid() && *n != t && !deleted.contains(n)),
                );
            }
        }
        // and, when it lost a quarter of its links or more, what a search
        // for its own vector finds on this level, as an insert would (2-hop
        // neighbours alone let lists drift after heavy churn); the deleted
        // elements it passes through do not count towards its width (it
        // searched twice as wide instead). Losing fewer, the 2-hop
        // neighbours do: a search per element made VACUUM several times
        // slower (bench/README.md, "Measurements behind design choices").
        let had = current.iter().filter(|n| n.is_valid()).count();
        let search_ef = if 4 * gone.len() >= had {
            meta.ef_construction as usize
        } else {
            0
        };
        let query = graph.query_of(&info.vector)?;
        ids.extend(
            graph
                .walk(|w| search_level_counting(w, &query.query(), search_ef, l, true))?
                .into_iter()
                .map(|c| c.id)
                .filter(|n| *n != t && !deleted.contains(n)),
        );
        ids.sort();
        ids.dedup();
        let mut vectors: HashMap<Tid, Vec<f32>> = HashMap::new();
        let mut cands = Vec::new();
        for id in ids {
            let e = graph.element(id)?;
            if !e.deleted && e.level >= l {
                cands.push(Candidate {
                    distance: graph.distance_between(&info.vector, &e.vector),
                    id,
                });
                vectors.insert(id, e.vector);
            }
        }
        cands.sort();
        let (kept, diverse) = select_neighbors(&cands, current.len(), l, |a, b| {
            graph.distance_between(&vectors[&a], &vectors[&b])
        });
        let mut kept: Vec<Link> = kept
            .iter()
            .enumerate()
            .map(|(i, t)| Link {
                tid: *t,
                distance: cands
                    .iter()
                    .find(|c| c.id == *t)
                    .map_or(0.0, |c| c.distance),
                diverse: i < diverse,
            })
            .collect();
        kept.resize(current.len(), Link::EMPTY);
        if write_slots_if_unchanged(store, info.neighbors, m, l, &before, &links_bytes(l, &kept))? {
            // the new neighbours link back, as they would to an insert:
            // without it, elements that lost their in-links to deleted ones
            // get fewer and fewer ways in (`churn_keeps_recall_near_a_fresh_build`)
            let added: Vec<Link> = kept
                .iter()
                .filter(|k| k.tid.is_valid() && !current.contains(&k.tid))
                .copied()
                .collect();
            crate::insert::link_back_existing(store, graph, meta, t, &info.vector, &added, l)?;
            return Ok(gone.len() as u64);
        }
    }
    Ok(0)
}

/// Sets the metapage's free-slot hints.
fn set_free_hints<S: PageStore>(store: &S, hints: [u32; FREE_CLASSES]) -> Result<(), Corrupt> {
    store.write(0, |p| -> Result<(), Corrupt> {
        let mut m = Meta::decode(p)?;
        if m.free_page != hints {
            m.free_page = hints;
            m.store(p);
        }
        Ok(())
    })
}
