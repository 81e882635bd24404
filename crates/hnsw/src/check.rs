//! Checking an index on pages (`vector_ext_index_check`): every tuple
//! readable and of its kind, every element pointing at a neighbour tuple
//! of its level, every link leading to an element of at least the link's
//! level, the entry point an element of the recorded level, no heap TID
//! held twice. Problems are collected, not raised, so one run reports them
//! all; what a search can reach from the entry point is counted too.

use crate::format::{
    check_index_page, neighbor_level, read_element, tuple_kind, FLAG_FREE, KIND_CENTER,
    KIND_ELEMENT, KIND_NEIGHBORS,
};
use crate::page_graph::{read_links, PageGraph};
use pagestore::{page, PageStore, Problems, Tid};
use std::collections::{HashMap, HashSet};

/// What a check found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub pages: u32,
    pub elements: u64,
    pub deleted_elements: u64,
    /// Deleted elements VACUUM flagged free: inserts may write over them.
    pub free_elements: u64,
    /// Heap TIDs held by live elements.
    pub heap_tids: Vec<Tid>,
    pub links: u64,
    /// All-zero pages (extended, never initialised before a crash): unused.
    pub new_pages: u32,
    /// Live elements no walk from the entry point reaches over the links of
    /// every level (searches descend through them; VACUUM relinks
    /// them; iterative scans still return them). Reported as a problem
    /// too: an ordinary scan cannot find them.
    pub unreachable: u64,
    pub problems: Problems,
}

struct Node {
    level: usize,
    neighbors: Tid,
    deleted: bool,
    /// Links of every level (for reachability).
    links: Vec<Tid>,
}

/// Checks the index in `store`; `between` runs after each page.
pub fn check_index<S: PageStore>(store: &S, mut between: impl FnMut()) -> Report {
    let mut r = Report {
        pages: store.nblocks(),
        ..Default::default()
    };
    let graph = match PageGraph::open(store) {
        Ok(g) => g,
        Err(e) => {
            r.problems.push(format!("metapage: {}", e.0));
            return r;
        }
    };
    let meta = *graph.meta();
    let (m, bytes) = (meta.m as usize, meta.vector_bytes());

    // every element, its heap TIDs, and where neighbour tuples are
    let mut nodes: HashMap<Tid, Node> = HashMap::new();
    let mut neighbor_tuples: HashMap<Tid, usize> = HashMap::new();
    let mut held: HashSet<Tid> = HashSet::new();
    for block in 1..store.nblocks() {
        let read = store.read(block, |p| -> Result<Vec<String>, pagestore::Corrupt> {
            if page::is_new(p) {
                r.new_pages += 1;
                return Ok(Vec::new());
            }
            check_index_page(p)?;
            let mut problems = Vec::new();
            for offset in 1..=page::max_offset(p)? {
                let t = Tid { block, offset };
                let raw = page::item(p, offset)?;
                match tuple_kind(raw) {
                    Some(KIND_ELEMENT) => match read_element(p, t, bytes) {
                        Ok(e) => {
                            let deleted = e.deleted();
                            // free: a deleted element VACUUM gave back
                            r.free_elements += (deleted && e.flags() & FLAG_FREE != 0) as u64;
                            if !deleted {
                                for h in e.heap_tids() {
                                    if !h.is_valid() {
                                        problems.push(format!("element ({block},{offset}) holds an invalid heap TID"));
                                    } else if !held.insert(h) {
                                        problems.push(format!(
                                            "heap TID ({},{}) is held twice (again by ({block},{offset}))",
                                            h.block, h.offset
                                        ));
                                    } else {
                                        r.heap_tids.push(h);
                                    }
                                }
                            }
                            nodes.insert(
                                t,
                                Node {
                                    level: e.level(),
                                    neighbors: e.neighbors(),
                                    deleted,
                                    links: Vec::new(),
                                },
                            );
                        }
                        Err(e) => problems.push(e.0),
                    },
                    Some(KIND_NEIGHBORS) if neighbor_level(raw).is_some() => {
                        neighbor_tuples.insert(t, neighbor_level(raw).expect("checked"));
                    }
                    // read (and checked) when the graph was opened
                    Some(KIND_CENTER) if meta.center != 0 => {}
                    _ => problems.push(format!("tuple ({block},{offset}) is of no known kind")),
                }
            }
            Ok(problems)
        });
        match read {
            Ok(problems) => problems.into_iter().for_each(|p| r.problems.push(p)),
            Err(e) => r.problems.push(format!("page {block}: {}", e.0)),
        }
        between();
    }

    // each element's neighbour tuple and links
    let tids: Vec<Tid> = nodes.keys().copied().collect();
    for t in &tids {
        let (level, nt) = (nodes[t].level, nodes[t].neighbors);
        r.elements += 1;
        r.deleted_elements += nodes[t].deleted as u64;
        if neighbor_tuples.get(&nt) != Some(&level) {
            r.problems.push(format!(
                "element ({},{}) of level {level} points to ({},{}), not a neighbour tuple of its level",
                t.block, t.offset, nt.block, nt.offset
            ));
            continue;
        }
        for l in 0..=level {
            let links = match read_links(store, nt, m, level, l) {
                Ok((_, links)) => links,
                Err(e) => {
                    r.problems.push(e.0);
                    break;
                }
            };
            for link in links.iter().filter(|x| x.tid.is_valid()) {
                r.links += 1;
                match nodes.get(&link.tid) {
                    None => r.problems.push(format!(
                        "element ({},{}) links on level {l} to ({},{}), which is not an element",
                        t.block, t.offset, link.tid.block, link.tid.offset
                    )),
                    Some(n) if n.level < l => r.problems.push(format!(
                        "element ({},{}) links on level {l} to ({},{}) of level {}",
                        t.block, t.offset, link.tid.block, link.tid.offset, n.level
                    )),
                    Some(_) => nodes.get_mut(t).expect("listed").links.push(link.tid),
                }
            }
        }
    }

    // the entry point, and what a walk from it reaches
    match graph.entry_point() {
        None if nodes.values().any(|n| !n.deleted) => r
            .problems
            .push("no entry point, but the index has live elements".into()),
        None => {}
        Some((entry, level)) => match nodes.get(&entry) {
            Some(n) if n.level == level => {
                let mut seen: HashSet<Tid> = HashSet::from([entry]);
                let mut stack = vec![entry];
                while let Some(t) = stack.pop() {
                    for l in &nodes[&t].links {
                        if seen.insert(*l) {
                            stack.push(*l);
                        }
                    }
                }
                r.unreachable = nodes
                    .iter()
                    .filter(|(t, n)| !n.deleted && !seen.contains(t))
                    .count() as u64;
                // a scan cannot return them (only an iterative scan's
                // final sweep does): a problem, which VACUUM repairs
                if r.unreachable > 0 {
                    r.problems.push(format!(
                        "{} live elements cannot be reached from the entry point (vector_ext_index_repair or a VACUUM that removes rows relinks them)",
                        r.unreachable
                    ));
                }
            }
            _ => r.problems.push(format!(
                "the entry point ({},{}) is not an element of level {level}",
                entry.block, entry.offset
            )),
        },
    }
    r.heap_tids.sort();
    r
}
