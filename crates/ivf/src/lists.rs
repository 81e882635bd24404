//! Reading an index on pages: the metapage, the lists (their tuples on the
//! list pages) and the chains of pages each list's items sit on.

pub use crate::format::List;
use crate::format::{
    decode_list, list_blocks, list_center, list_raw, next_block, Meta, INVALID_BLOCK,
};
use pagestore::{BlockNumber, Corrupt, PageStore};

/// Reads the metapage.
pub fn read_meta<S: PageStore>(store: &S) -> Result<Meta, Corrupt> {
    if !store.contains(0) {
        return Err(Corrupt("index has no metapage".into()));
    }
    store.read(0, Meta::decode)
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

/// Calls `f(list, list tuple)` for every list, in order, on the list
/// pages themselves (one read per list page).
fn for_each_list<S: PageStore>(
    store: &S,
    meta: &Meta,
    mut f: impl FnMut(u32, &[u8]),
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
                f(i, list_raw(p, meta.list_tid(i), bytes)?);
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Every list, in order.
pub fn read_lists<S: PageStore>(store: &S, meta: &Meta) -> Result<Vec<List>, Corrupt> {
    let mut out = Vec::with_capacity(meta.lists as usize);
    for_each_list(store, meta, |_, raw| {
        out.push(decode_list(raw, meta.storage))
    })?;
    Ok(out)
}

/// Calls `f(list, start block, center bytes)` for every list, in order
/// (no copy: `Metric::distance_stored` reads the center in place, aligned
/// as it is on a page: items are MAXALIGNed and the center follows an
/// 8-byte header).
pub fn for_each_center<S: PageStore>(
    store: &S,
    meta: &Meta,
    mut f: impl FnMut(u32, BlockNumber, &[u8]),
) -> Result<(), Corrupt> {
    for_each_list(store, meta, |i, raw| {
        f(i, list_blocks(raw).0, list_center(raw))
    })
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
