//! Vacuum: drop the items of dead heap rows, page by page, and point each
//! list's insert hint at its first page with room again, so the space is
//! reused. Pages are rewritten in place (items keep their page; nothing
//! refers to an item's offset), one write per page that lost items.

use crate::format::{
    for_each_item, item_len, list_blocks, list_raw, remove_items, set_list_blocks, Meta,
};
use crate::lists::{read_lists, walk_chain};
use pagestore::{page, BlockNumber, Corrupt, PageStore, Tid};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub removed: u64,
    pub remaining: u64,
    pub pages: u64,
}

/// Removes every item whose heap TID `is_dead` says so. `between` runs
/// after each list (interrupt checks).
pub fn bulk_delete<S: PageStore>(
    store: &S,
    meta: &Meta,
    mut is_dead: impl FnMut(Tid) -> bool,
    mut between: impl FnMut(),
) -> Result<Stats, Corrupt> {
    let bytes = meta.vector_bytes();
    let mut stats = Stats::default();
    let lists = read_lists(store, meta)?;
    for (i, list) in lists.iter().enumerate() {
        let mut pages: Vec<BlockNumber> = Vec::new();
        walk_chain(store, list.start, |b, _| {
            pages.push(b);
            Ok(())
        })?;
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
    Ok(stats)
}

/// Counts the items of every list (for `amvacuumcleanup` without a
/// preceding bulk delete).
pub fn count<S: PageStore>(store: &S, meta: &Meta) -> Result<Stats, Corrupt> {
    bulk_delete(store, meta, |_| false, || {})
}
