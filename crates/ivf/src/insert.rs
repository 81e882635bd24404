//! Inserting one vector (what `aminsert` runs): into the list of the
//! nearest center, on the list's insert page or the first page after it
//! with room; a full tail gets a new page.
//!
//! Each step is one page write (one WAL record in the extension), and any
//! prefix of them leaves a valid index: a new page is linked only once it
//! exists, the list's insert hint only ever names a page of its chain, and
//! an insert that finds the hint stale walks the chain forward. Two
//! backends extending one list at once both add a page; the one that loses
//! the link race leaves its empty page unused.

use crate::format::{
    check_data_page, init_data_page, item_len, item_tuple, list_blocks, list_raw, next_block,
    set_list_blocks, set_next_block, Meta, INVALID_BLOCK,
};
use crate::kmeans::nearest_center;
use crate::lists::{for_each_center, too_many_steps};
use distance::{Element, Query};
use pagestore::{page, BlockNumber, Corrupt, PageStore, Tid};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Into list `list`, on block `block`.
    Into { list: u32, block: BlockNumber },
    /// The metric cannot order this vector (zero vector under cosine).
    NotIndexed,
}

/// Inserts `vector` for heap row `heap`. `centers` may be passed when the
/// caller caches them (they never change after the build).
pub fn insert<S: PageStore>(
    store: &S,
    meta: &Meta,
    centers: Option<&[f32]>,
    vector: Element,
    heap: Tid,
) -> Result<Inserted, Corrupt> {
    let dims = meta.dims as usize;
    if vector.dims() != dims || !meta.metric.compares(vector) {
        return Err(Corrupt(format!(
            "expected {dims} dimensions of {:?}, not {vector:?}",
            meta.storage
        )));
    }
    let Some(v) = meta.metric.prepare(vector) else {
        return Ok(Inserted::NotIndexed);
    };
    let query = Query::new(meta.metric, v.as_element());
    let list = match centers {
        Some(c) => {
            let mut words = Vec::new();
            v.as_element().append_words(&mut words);
            nearest_center(&words, c, meta.metric).0 as u32
        }
        None => {
            // On the list pages themselves, as a scan ranks them.
            let mut best = (0u32, f32::INFINITY);
            let scorer = query.scorer(meta.storage);
            for_each_center(store, meta, |i, _, c| {
                let d = scorer.distance(c);
                if d < best.1 {
                    best = (i, d);
                }
            })?;
            best.0
        }
    };
    let item = item_tuple(heap, v.as_element(), meta.storage);
    let bytes = meta.vector_bytes();
    let lt = meta.list_tid(list);

    let (start, hint) = store.read(lt.block, |p| -> Result<_, Corrupt> {
        Ok(list_blocks(list_raw(p, lt, bytes)?))
    })?;
    let mut b = if hint != INVALID_BLOCK { hint } else { start };
    if b == INVALID_BLOCK {
        // An empty list: its first page.
        let first = store.extend(|nb, p| {
            init_data_page(p);
            page::add_item(p, &item).map(|_| nb)
        });
        let first =
            first.ok_or_else(|| Corrupt("a list item does not fit an empty page".into()))?;
        // Another backend may have started the chain meanwhile: then ours
        // becomes its second page, behind the other's tail.
        let linked = store.write(lt.block, |p| -> Result<Option<BlockNumber>, Corrupt> {
            let raw = page::item_mut(p, lt.offset)?;
            let l = crate::format::decode_list(raw, meta.storage);
            if l.start == INVALID_BLOCK {
                set_list_blocks(raw, first, first);
                Ok(None)
            } else {
                Ok(Some(if l.insert != INVALID_BLOCK {
                    l.insert
                } else {
                    l.start
                }))
            }
        })?;
        match linked {
            None => return Ok(Inserted::Into { list, block: first }),
            Some(other) => {
                append_page(store, other, first)?;
                set_hint(store, lt, bytes, first)?;
                return Ok(Inserted::Into { list, block: first });
            }
        }
    }
    let need = item_len(bytes);
    let mut steps = 0u64;
    loop {
        steps += 1;
        if b == 0 || !store.contains(b) || too_many_steps(store, steps) {
            return Err(Corrupt(format!(
                "list {list} chain leads to block {b}, outside the index or in a loop"
            )));
        }
        // Read first: pages before the tail are usually full.
        let (fits, next) = store.read(b, |p| -> Result<(bool, BlockNumber), Corrupt> {
            Ok((page::fits(p, need), next_block(p)?))
        })?;
        if fits {
            let added = store.write(b, |p| -> Result<bool, Corrupt> {
                check_data_page(p)?;
                Ok(page::add_item(p, &item).is_some())
            })?;
            if added {
                if b != hint {
                    set_hint(store, lt, bytes, b)?;
                }
                return Ok(Inserted::Into { list, block: b });
            }
            continue; // filled meanwhile: look again
        }
        if next != INVALID_BLOCK {
            b = next;
            continue;
        }
        // The tail is full: add a page after it.
        let fresh = store.extend(|nb, p| {
            init_data_page(p);
            nb
        });
        append_page(store, b, fresh)?;
        // Go on from b: its next is now ours or a concurrent one.
    }
}

/// Links `fresh` after the tail of the chain through `from`.
pub(crate) fn append_page<S: PageStore>(
    store: &S,
    mut from: BlockNumber,
    fresh: BlockNumber,
) -> Result<(), Corrupt> {
    for steps in 1.. {
        if too_many_steps(store, steps) {
            break;
        }
        if from == 0 || !store.contains(from) {
            return Err(Corrupt(format!(
                "list chain leads to block {from} outside the index"
            )));
        }
        let next = store.write(from, |p| -> Result<BlockNumber, Corrupt> {
            let next = next_block(p)?;
            if next == INVALID_BLOCK {
                set_next_block(p, fresh)?;
            }
            Ok(next)
        })?;
        if next == INVALID_BLOCK || next == fresh {
            return Ok(());
        }
        from = next;
    }
    Err(Corrupt("list chain has a loop".into()))
}

fn set_hint<S: PageStore>(
    store: &S,
    lt: Tid,
    vector_bytes: usize,
    b: BlockNumber,
) -> Result<(), Corrupt> {
    store.write(lt.block, |p| -> Result<(), Corrupt> {
        list_raw(p, lt, vector_bytes)?;
        let raw = page::item_mut(p, lt.offset)?;
        let (start, insert) = list_blocks(raw);
        if insert != b {
            set_list_blocks(raw, start, b);
        }
        Ok(())
    })
}
