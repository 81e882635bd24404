//! Vacuum: drop the items of dead heap rows, page by page, and point each
//! list's insert hint at its first page with room again, so the space is
//! reused. Pages are rewritten in place (items keep their page; nothing
//! refers to an item's offset), one write per page that lost items.
//!
//! A crash between adding a page and linking it into a list's chain
//! (`insert`) leaves a page no chain holds: all zeros, or initialised,
//! maybe with the item of the insert that crashed (its row never
//! committed). The pass finds them, pages below the index's size when
//! no insert was running (`quiesce`, see `bulk_delete_reclaiming`), which
//! no chain reached, and gives each, emptied, to the list with the fewest
//! pages: inserts fill it before they add a page.

use crate::format::{
    for_each_item, init_data_page, item_len, list_blocks, list_raw, remove_items, set_list_blocks,
    Meta, INVALID_BLOCK,
};
use crate::lists::{read_lists, walk_chain};
use pagestore::{page, BlockNumber, Corrupt, PageStore, Tid};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub removed: u64,
    pub remaining: u64,
    pub pages: u64,
    /// Pages no chain held, given to a list.
    pub pages_reclaimed: u64,
}

impl Stats {
    /// What the metapage keeps of this VACUUM, finished at `at`
    /// (TimestampTz).
    pub fn record(&self, at: i64) -> page::VacuumRecord {
        page::VacuumRecord {
            at,
            removed: self.removed,
            remaining: self.remaining,
            reused: self.pages_reclaimed,
            ..Default::default()
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

/// Removes every item whose heap TID `is_dead` says so. `between` runs
/// after each list (interrupt checks). With no insert running (a test's
/// store); see `bulk_delete_reclaiming`.
pub fn bulk_delete<S: PageStore>(
    store: &S,
    meta: &Meta,
    is_dead: impl FnMut(Tid) -> bool,
    between: impl FnMut(),
) -> Result<Stats, Corrupt> {
    bulk_delete_reclaiming(store, meta, is_dead, between, || store.nblocks())
}

/// `bulk_delete`, which also reclaims the pages no chain holds (see the
/// module comment). `quiesce` waits until no insert is running and says
/// how many blocks the index has then, while none runs (the extension
/// takes the lock every insert holds in share mode): every page below that
/// whose insert did not crash is linked by the time the chains are walked,
/// and inserts only ever add pages after it.
pub fn bulk_delete_reclaiming<S: PageStore>(
    store: &S,
    meta: &Meta,
    mut is_dead: impl FnMut(Tid) -> bool,
    mut between: impl FnMut(),
    quiesce: impl FnOnce() -> BlockNumber,
) -> Result<Stats, Corrupt> {
    let bytes = meta.vector_bytes();
    let mut stats = Stats::default();
    let settled = quiesce();
    let lists = read_lists(store, meta)?;
    let mut chained = vec![false; settled as usize];
    let mut lengths = vec![0u64; lists.len()];
    for (i, list) in lists.iter().enumerate() {
        let mut pages: Vec<BlockNumber> = Vec::new();
        walk_chain(store, list.start, |b, _| {
            pages.push(b);
            Ok(())
        })?;
        lengths[i] = pages.len() as u64;
        for &b in &pages {
            if let Some(c) = chained.get_mut(b as usize) {
                *c = true;
            }
        }
        let mut first_with_room = None;
        for b in pages {
            let mut tids = Vec::new();
            store.read(b, |p| for_each_item(p, bytes, |o, t, _| tids.push((o, t))))?;
            let dead: Vec<u16> = tids
                .iter()
                .filter(|(_, t)| is_dead(*t))
                .map(|(o, _)| *o)
                .collect();
            stats.pages += 1;
            let room = if dead.is_empty() {
                stats.remaining += tids.len() as u64;
                store.read(b, |p| page::fits(p, item_len(bytes)))
            } else {
                // Only vacuum removes items and only one vacuum runs per
                // index, so the offsets read above still hold; inserts may
                // only have appended.
                stats.removed += dead.len() as u64;
                stats.remaining += (tids.len() - dead.len()) as u64;
                store.write(b, |p| -> Result<bool, Corrupt> {
                    remove_items(p, &dead)?;
                    Ok(page::fits(p, item_len(bytes)))
                })?
            };
            if room && first_with_room.is_none() {
                first_with_room = Some(b);
            }
        }
        if let Some(b) = first_with_room {
            if b != list.insert {
                let lt = meta.list_tid(i as u32);
                store.write(lt.block, |p| -> Result<(), Corrupt> {
                    list_raw(p, lt, bytes)?;
                    let raw = page::item_mut(p, lt.offset)?;
                    let (start, _) = list_blocks(raw);
                    set_list_blocks(raw, start, b);
                    Ok(())
                })?;
            }
        }
        between();
    }
    // the pages no chain holds, each to the (non-empty) list of the fewest
    for b in meta.list_pages + 1..settled {
        if chained[b as usize] {
            continue;
        }
        let shortest = (0..lists.len())
            .filter(|&i| lists[i].start != INVALID_BLOCK)
            .min_by_key(|&i| lengths[i]);
        let Some(i) = shortest else {
            break; // every list is empty: an insert will start one
        };
        // nothing refers to it: emptied (a crashed insert's item goes; its
        // row never committed) and then linked, each step a whole state
        store.write(b, init_data_page);
        crate::insert::append_page(store, lists[i].start, b)?;
        lengths[i] += 1;
        stats.pages_reclaimed += 1;
    }
    Ok(stats)
}

/// Counts the items of every list (for `amvacuumcleanup` without a
/// preceding bulk delete).
pub fn count<S: PageStore>(store: &S, meta: &Meta) -> Result<Stats, Corrupt> {
    bulk_delete(store, meta, |_| false, || {})
}
