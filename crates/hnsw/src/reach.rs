//! Keeping every element reachable (part of VACUUM).
//!
//! HNSW prunes neighbour lists with a heuristic, so an insert's link-back
//! can drop the last link into some element, and the new element itself may
//! be refused by every neighbour it chose. Such an element can no longer be
//! found by any search. This pass reads the links of every level, walks
//! them from the entry point through live elements (a cluster whose level-0
//! links stay inside it is reached through the upper levels searches
//! descend by; deleted elements are free by now, their links soon
//! overwritten by an insert that reuses them), and links
//! each unreachable live element from its nearest reachable one, taking a
//! free slot or replacing a link whose target has another way in, so that
//! the repair never strands a third element.

use crate::pages::{
    check_index_page, level_slots, links_bytes, read_element, read_links, read_slots,
    write_slots_if_unchanged, Link, PageGraph, FLAG_DELETED,
};
use crate::search::{search, Graph};
use pagestore::{page, Corrupt, PageStore, Tid};
use std::collections::HashMap;

struct Node {
    /// Links of every level.
    links: Vec<Tid>,
    neighbors: Tid,
    level: usize,
    deleted: bool,
}

/// Links every unreachable live element back into the graph; returns how
/// many were relinked. `between` runs after each page read and each repair.
pub fn repair_reachability<S: PageStore>(
    store: &S,
    mut between: impl FnMut(),
) -> Result<u64, Corrupt> {
    let graph = PageGraph::open(store)?;
    let meta = *graph.meta();
    let Some((entry, _)) = graph.entry_point() else {
        return Ok(0);
    };
    let (m, bytes) = (meta.m as usize, meta.vector_bytes());

    let mut nodes: HashMap<Tid, Node> = HashMap::new();
    for block in 1..store.nblocks() {
        let found = store.read(
            block,
            |p| -> Result<Vec<(Tid, usize, bool, Tid)>, Corrupt> {
                if page::is_new(p) {
                    return Ok(Vec::new()); // extended, never initialised
                }
                check_index_page(p)?;
                let mut out = Vec::new();
                for off in 1..=page::max_offset(p)? {
                    if page::item(p, off)?[0] != 1 {
                        continue;
                    }
                    let t = Tid { block, offset: off };
                    let e = read_element(p, t, bytes)?;
                    let nt = Tid::from_bytes(&e.raw[4..10]);
                    out.push((t, e.level, e.raw[2] & FLAG_DELETED != 0, nt));
                }
                Ok(out)
            },
        )?;
        for (t, level, deleted, nt) in found {
            // searches descend through upper levels: a cluster whose level-0
            // links stay inside it is still reached through them
            let mut links = Vec::new();
            for l in 0..=level {
                let (_, tids) = read_slots(store, nt, m, level, l)?;
                links.extend(tids.into_iter().filter(|t| t.is_valid()));
            }
            nodes.insert(
                t,
                Node {
                    links,
                    neighbors: nt,
                    level,
                    deleted,
                },
            );
        }
        between();
    }

    let mut reachable: HashMap<Tid, bool> = nodes.keys().map(|t| (*t, false)).collect();
    mark_from(entry, &nodes, &mut reachable);
    // In-links from reachable elements: a link may only be replaced when its
    // target keeps another one.
    let mut in_degree: HashMap<Tid, u32> = HashMap::new();
    for (t, n) in &nodes {
        if reachable[t] && !n.deleted {
            for l in &n.links {
                *in_degree.entry(*l).or_default() += 1;
            }
        }
    }
    let mut orphans: Vec<Tid> = nodes
        .iter()
        .filter(|(t, n)| !n.deleted && !reachable[*t])
        .map(|(t, _)| *t)
        .collect();
    orphans.sort();

    let mut relinked = 0;
    for u in orphans {
        if reachable[&u] {
            continue; // reached through an earlier repair
        }
        let Some(info) = graph.element(u) else {
            continue;
        };
        let near = search(
            &graph,
            &info.vector,
            meta.ef_construction as usize,
            meta.ef_construction as usize,
        );
        for c in near {
            let r = c.id;
            let Some(rn) = nodes.get(&r) else { continue };
            if r == u || rn.deleted || !reachable.get(&r).copied().unwrap_or(false) {
                continue;
            }
            let (before, links) = read_links(store, rn.neighbors, m, rn.level, 0)?;
            let slots: Vec<Tid> = links.iter().map(|l| l.tid).collect();
            if slots.contains(&u) {
                break; // linked meanwhile
            }
            // A free slot, else the last link whose target has another way in.
            let pos = slots.iter().position(|s| !s.is_valid()).or_else(|| {
                slots.iter().rposition(|s| {
                    in_degree.get(s).copied().unwrap_or(0) >= 2
                        || nodes.get(s).is_some_and(|n| n.deleted)
                })
            });
            let Some(pos) = pos else { continue };
            let replaced = slots[pos];
            let mut updated = links.clone();
            // What keeps u reachable: marked diverse so that link-backs
            // evict other links first (as the build's repair does).
            updated[pos] = Link {
                tid: u,
                distance: c.distance,
                diverse: true,
            };
            let range = level_slots(m, 0);
            if write_slots_if_unchanged(
                store,
                rn.neighbors,
                range,
                &before,
                &links_bytes(0, &updated),
            )? {
                if replaced.is_valid() {
                    *in_degree.entry(replaced).or_default() -= 1;
                }
                *in_degree.entry(u).or_default() += 1;
                if let Some(n) = nodes.get_mut(&r) {
                    match n.links.iter().position(|t| *t == replaced) {
                        Some(i) if replaced.is_valid() => n.links[i] = u,
                        _ => n.links.push(u),
                    }
                }
                mark_from(u, &nodes, &mut reachable);
                relinked += 1;
                break;
            }
        }
        between();
    }
    if let Some(e) = graph.take_error() {
        return Err(e);
    }
    Ok(relinked)
}

fn mark_from(start: Tid, nodes: &HashMap<Tid, Node>, reachable: &mut HashMap<Tid, bool>) {
    let mut stack = vec![start];
    if let Some(r) = reachable.get_mut(&start) {
        *r = true;
    }
    while let Some(t) = stack.pop() {
        let Some(n) = nodes.get(&t) else { continue };
        // VACUUM has freed every deleted element by now: an insert may
        // overwrite its links at any time, so they lead nowhere for long
        if n.deleted && t != start {
            continue;
        }
        for l in &n.links {
            if let Some(r) = reachable.get_mut(l) {
                if !*r {
                    *r = true;
                    stack.push(*l);
                }
            }
        }
    }
}
