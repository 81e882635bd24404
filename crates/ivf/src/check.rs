//! Checking an index on pages (`vector_ext_index_check`): the metapage and
//! list pages readable, every list's chain inside the index, without loops
//! and sharing no page with another list, every item well-formed, no heap
//! TID held twice. Problems are collected, not raised. Items are counted
//! by whether their list's center is their nearest (within rounding):
//! builds and inserts put each item in its nearest list, so misplaced
//! items mean damage or a changed metric.

use crate::format::for_each_item;
use crate::lists::{read_lists, read_meta, walk_chain};
use pagestore::{PageStore, Problems, Tid};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub pages: u32,
    pub lists: u32,
    pub items: u64,
    /// Heap TIDs of the items, sorted.
    pub heap_tids: Vec<Tid>,
    /// Items nearer to another list's center than to their own.
    pub misplaced: u64,
    /// Pages no list uses (an extension a crash cut short).
    pub unused_pages: u32,
    pub problems: Problems,
}

/// Checks the index in `store`; `between` runs after each list.
pub fn check_index<S: PageStore>(store: &S, mut between: impl FnMut()) -> Report {
    let mut r = Report {
        pages: store.nblocks(),
        ..Default::default()
    };
    let meta = match read_meta(store) {
        Ok(m) => m,
        Err(e) => {
            r.problems.push(format!("metapage: {}", e.0));
            return r;
        }
    };
    r.lists = meta.lists;
    let lists = match read_lists(store, &meta) {
        Ok(l) => l,
        Err(e) => {
            r.problems.push(format!("list pages: {}", e.0));
            return r;
        }
    };
    let mut owner: HashMap<u32, u32> = HashMap::new();
    let mut held: HashSet<Tid> = HashSet::new();
    let bytes = meta.vector_bytes();
    let mut vector = Vec::with_capacity(meta.dims as usize);
    for (i, list) in lists.iter().enumerate() {
        let mut problems = Vec::new();
        let walked = walk_chain(store, list.start, |b, p| {
            if let Some(other) = owner.insert(b, i as u32) {
                problems.push(format!(
                    "page {b} is in the chains of lists {other} and {i}"
                ));
                return Err(pagestore::Corrupt("shared page".into()));
            }
            for_each_item(p, bytes, |o, heap, v| {
                r.items += 1;
                if !heap.is_valid() || !held.insert(heap) {
                    problems.push(format!(
                        "item ({b},{o}) holds heap TID ({},{}) {}",
                        heap.block,
                        heap.offset,
                        if heap.is_valid() {
                            "held twice"
                        } else {
                            "(invalid)"
                        }
                    ));
                    return;
                }
                r.heap_tids.push(heap);
                let own = meta.metric.distance_stored(meta.storage, &list.center, v);
                vector.clear();
                meta.storage.decode(v, &mut vector);
                let best = lists
                    .iter()
                    .map(|l| meta.metric.distance(&vector, &l.center))
                    .fold(f32::INFINITY, f32::min);
                if own > best + 1e-3 * best.abs().max(1e-3) {
                    r.misplaced += 1;
                }
            })
        });
        for p in problems {
            r.problems.push(p);
        }
        if let Err(e) = walked {
            if e.0 != "shared page" {
                r.problems.push(format!("list {i}: {}", e.0));
            }
        }
        between();
    }
    r.unused_pages = (1 + meta.list_pages..store.nblocks())
        .filter(|b| !owner.contains_key(b))
        .count() as u32;
    r.heap_tids.sort();
    r
}
