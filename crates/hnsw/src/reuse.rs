//! Reusing the space of deleted elements.
//!
//! VACUUM flags an element deleted when its last heap TID goes (pass 1)
//! and then replaces every link into it (pass 2). After that nothing a
//! search starts from leads to it, and `free_deleted` flags it free. An
//! insert whose element has the same level (so the same neighbour tuple
//! size) and the same tuple length then writes its element and neighbour
//! tuple over the free ones (`claim`) instead of adding a page.
//!
//! What may still point at a free element, and why that is harmless:
//! - a scan that read it before it was freed. If it reads the element again
//!   after reuse it sees the new vector and the new heap TIDs; those rows
//!   were inserted after the VACUUM, itself after the scan's snapshot, so
//!   the heap fetch finds them invisible.
//! - no link: VACUUM waits, after flagging elements deleted and before
//!   repairing links, for the inserts then running (any of which may have
//!   read one as live and be linking to it), and lists live elements after
//!   the wait (`vacuum::bulk_delete_waiting`); later inserts see the flag
//!   and never link to a deleted element. An insert that takes a free
//!   element while VACUUM runs is a live element like any other.
//!
//! Crash safety: a claim on one page (element and neighbour tuple together,
//! the common case) is one page write. Otherwise the element is written
//! first, still flagged deleted but holding the new heap TID (so a VACUUM
//! does not free it again and searches do not return it), then the
//! neighbour tuple, then the flag is cleared. A crash in between leaves a
//! deleted element whose heap TID belongs to an aborted row: the next
//! VACUUM removes the TID and frees the element again.

use crate::format::{
    check_index_page, element_mut, element_set_neighbors, free_class, neighbor_level,
    page_elements, ElementHead, ElementTupleMut, FLAG_DELETED, FLAG_FREE, FREE_CLASSES,
};
use pagestore::{page, Corrupt, PageStore, Tid};

/// Pages past its hint an insert reads looking for a free slot before it
/// appends instead (reads of cached pages under a share lock: a few
/// microseconds each; pages of elements as big as a page hold one each).
pub const FREE_SCAN_PAGES: u32 = 32;

/// Where an insert's element went, when a free slot took it, and the
/// hint for the next insert of its class.
pub(crate) struct Claimed {
    pub(crate) element: Option<Tid>,
    pub(crate) hint: u32,
}

/// Looks for a free slot of `level` from the metapage's hint on and writes
/// `element` (whose neighbour TID is overwritten) and `neighbors` over it;
/// `vector_bytes`: `Meta::vector_bytes`.
pub(crate) fn claim<S: PageStore>(
    store: &S,
    vector_bytes: usize,
    start: u32,
    level: usize,
    element: &[u8],
    neighbors: &[u8],
) -> Result<Claimed, Corrupt> {
    let n = store.nblocks();
    if start == 0 || start >= n {
        return Ok(Claimed {
            element: None,
            hint: 0,
        });
    }
    let class = free_class(level);
    let end = n.min(start.saturating_add(FREE_SCAN_PAGES));
    // the hint moves past pages with no free slot of this class left
    let mut hint = start;
    for block in start..end {
        let heads = store.read(block, |p| page_elements(p, block, vector_bytes))?;
        let free = heads.iter().filter(|e| e.free());
        let (candidates, others): (Vec<&ElementHead>, Vec<&ElementHead>) =
            free.partition(|e| e.level == level && e.len == element.len());
        let others = others.iter().any(|e| free_class(e.level) == class);
        for e in candidates {
            let et = e.tid;
            if claim_one(store, et, e.neighbors, level, element, neighbors)? {
                // this page may hold more, and a page before it other
                // levels' free slots of the class
                return Ok(Claimed {
                    element: Some(et),
                    hint,
                });
            }
        }
        if hint == block && !others {
            hint = block + 1;
        }
    }
    Ok(Claimed {
        element: None,
        hint: if hint >= n { 0 } else { hint },
    })
}

/// Writes the new element over the free element `et` (neighbour tuple
/// `nt`) if it is still free and of the new one's level and size; false
/// when another insert took it first.
fn claim_one<S: PageStore>(
    store: &S,
    et: Tid,
    nt: Tid,
    level: usize,
    element: &[u8],
    neighbors: &[u8],
) -> Result<bool, Corrupt> {
    let same_page = nt.block == et.block;
    crate::page_graph::inside(store, nt)?;
    let mut e = element.to_vec();
    // on two pages: flagged deleted until the neighbour tuple is written
    element_set_neighbors(&mut e, nt, if same_page { 0 } else { FLAG_DELETED });
    let neighbour_fits =
        |raw: &[u8]| raw.len() == neighbors.len() && neighbor_level(raw) == Some(level);
    let claimed = store.write(et.block, |p| -> Result<bool, Corrupt> {
        check_index_page(p)?;
        if page::max_offset(p)? < et.offset.max(if same_page { nt.offset } else { 0 }) {
            return Ok(false);
        }
        let raw = page::item_mut(p, et.offset)?;
        let same_size = raw.len() == e.len();
        let still_free = same_size
            && ElementTupleMut::parse(raw).is_some_and(|old| {
                old.level() == level && old.flags() & FLAG_FREE != 0 && old.neighbors() == nt
            });
        if !still_free || (same_page && !neighbour_fits(page::item(p, nt.offset)?)) {
            return Ok(false);
        }
        page::item_mut(p, et.offset)?.copy_from_slice(&e);
        if same_page {
            page::item_mut(p, nt.offset)?.copy_from_slice(neighbors);
        }
        Ok(true)
    })?;
    if !claimed || same_page {
        return Ok(claimed);
    }
    store.write(nt.block, |p| -> Result<(), Corrupt> {
        check_index_page(p)?;
        let raw = page::item_mut(p, nt.offset)?;
        if !neighbour_fits(raw) {
            return Err(Corrupt(format!(
                "free element ({},{}) points to ({},{}), not a neighbour tuple of its level",
                et.block, et.offset, nt.block, nt.offset
            )));
        }
        raw.copy_from_slice(neighbors);
        Ok(())
    })?;
    store.write(et.block, |p| -> Result<(), Corrupt> {
        let mut e = element_mut(p, et)?;
        e.set_flags(e.flags() & !FLAG_DELETED);
        Ok(())
    })?;
    Ok(true)
}

/// Flags free every element of `deleted` (TID, level) that is still deleted
/// without heap TIDs and is not the entry point `entry`, unless `is_free`
/// says it was already (then its page is not written); `between_pages`
/// runs after each page. Returns how many it freed and the lowest block
/// holding a free element per `free_class`.
pub(crate) fn free_deleted<S: PageStore>(
    store: &S,
    deleted: &[(Tid, usize)],
    is_free: impl Fn(Tid) -> bool,
    entry: Tid,
    mut between_pages: impl FnMut(),
) -> Result<(u64, [Option<u32>; FREE_CLASSES]), Corrupt> {
    let mut sorted = deleted.to_vec();
    sorted.sort();
    let mut freed = 0;
    let mut lowest = [None; FREE_CLASSES];
    for group in sorted.chunk_by(|a, b| a.0.block == b.0.block) {
        let block = group[0].0.block;
        let mut classes = [false; FREE_CLASSES];
        if group.iter().all(|(t, _)| is_free(*t)) {
            // as they were when listed: the hints need no more
            for &(_, level) in group {
                classes[free_class(level)] = true;
            }
        } else {
            classes = store.write(block, |p| -> Result<[bool; FREE_CLASSES], Corrupt> {
                check_index_page(p)?;
                let mut classes = [false; FREE_CLASSES];
                for &(t, _) in group {
                    if t == entry {
                        continue;
                    }
                    let mut e = element_mut(p, t)?;
                    if e.flags() & FLAG_DELETED != 0 && e.heap_count() == 0 {
                        if e.flags() & FLAG_FREE == 0 {
                            e.set_flags(e.flags() | FLAG_FREE);
                            freed += 1;
                        }
                        classes[free_class(e.level())] = true;
                    }
                }
                Ok(classes)
            })?;
            between_pages();
        }
        for (c, seen) in classes.iter().enumerate() {
            if *seen && lowest[c].is_none() {
                lowest[c] = Some(block);
            }
        }
    }
    Ok((freed, lowest))
}
