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
//! each unreachable live element from a reachable one (its own neighbours,
//! orphans relinked before it that share a neighbour with it, then the
//! nearest a search finds), taking a free slot or replacing a non-diverse
//! link whose target has another way in, so that the repair never strands
//! a third element nor takes a link a search needs.

use crate::format::{links_bytes, page_elements, Link};
use crate::page_graph::{read_links, read_slots, write_slots_if_unchanged, PageGraph};
use crate::search::Candidate;
use pagestore::{Corrupt, PageStore, Tid};
use std::collections::{HashMap, HashSet};

/// Orphans relinked earlier in a run, per shared neighbour, that an orphan
/// tries as hosts (as the build's repair does).
const SIBLING_HOSTS: usize = 4;

/// Passes over the orphans left (each can use the hosts the previous made).
const REPAIR_PASSES: usize = 8;

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
        let found = store.read(block, |p| page_elements(p, block, bytes))?;
        for e in found {
            let (t, level, deleted, nt) = (e.tid, e.level, e.deleted(), e.neighbors);
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

    let (mut reachable, mut in_degree, mut orphans) = survey(&nodes, entry);

    // An element reachable before the repair hosts one repair link at most
    // (as in the build): evicting links from those flooded the lists of
    // inner-product hubs with orphans and cost a sixth of the recall
    // (bench/README.md, "Measurements behind design choices"). The orphans left hang off orphans relinked before them
    // that share a neighbour with them (under inner product most orphans
    // link to the same few long vectors, whose lists have no room).
    let natural = reachable.clone();
    let mut gateway_used: HashSet<Tid> = HashSet::new();
    // per element, the orphans linking to it that this run has relinked
    // (the latest few are tried as hosts by the others)
    let mut relinked_by: HashMap<Tid, Vec<Tid>> = HashMap::new();
    let mut relinked = 0;
    // Passes until one links nothing more; then one last pass in which the
    // elements reachable before the repair may host more than one link
    // (an orphan no other host takes stays reachable rather than not).
    let mut capped = true;
    for _ in 0..REPAIR_PASSES {
        let before = relinked;
        for &u in &orphans {
            if reachable[&u] {
                continue; // reached through an earlier repair
            }
            let info = graph.element(u)?;
            let own: Vec<Tid> = nodes[&u]
                .links
                .iter()
                .copied()
                .filter(|t| nodes.contains_key(t))
                .collect();
            let near = |hosts: &mut dyn Iterator<Item = Tid>| -> Result<_, Corrupt> {
                let mut c: Vec<Candidate<Tid>> = hosts
                    .filter(|t| *t != u)
                    .map(|t| {
                        Ok(Candidate {
                            distance: graph.distance(&info.vector, t)?,
                            id: t,
                        })
                    })
                    .collect::<Result<_, Corrupt>>()?;
                c.sort();
                c.dedup_by_key(|c| c.id);
                Ok(c)
            };
            // its own reachable neighbours, then the nearest elements a
            // search finds (each such link is another way into a region cut
            // off), then orphans relinked before it
            let mut done = false;
            let mut searched = None;
            for stage in 0..3 {
                let hosts = match stage {
                    0 => near(&mut own.iter().copied())?,
                    1 => {
                        if searched.is_none() {
                            let ef = meta.ef_construction as usize;
                            searched = Some(graph.search(&info.vector, ef, ef)?);
                        }
                        searched.clone().unwrap_or_default()
                    }
                    _ => near(
                        &mut own
                            .iter()
                            .copied()
                            .chain(own.iter().flat_map(|n| {
                                let r = relinked_by.get(n).map_or(&[][..], |r| &r[..]);
                                // all of them in the last pass
                                let few = if capped { SIBLING_HOSTS } else { r.len() };
                                r[r.len().saturating_sub(few)..].iter().copied()
                            }))
                            .filter(|t| natural.get(t) != Some(&true)),
                    )?,
                };
                for c in &hosts {
                    let first = natural.get(&c.id) == Some(&true);
                    if first && capped && gateway_used.contains(&c.id) {
                        continue;
                    }
                    if try_link(store, &mut nodes, &mut reachable, &mut in_degree, m, c, u)? {
                        done = true;
                        if first {
                            gateway_used.insert(c.id);
                        }
                        break;
                    }
                }
                if done {
                    break;
                }
            }
            if done {
                relinked += 1;
                for n in own {
                    relinked_by.entry(n).or_default().push(u);
                }
            }
            between();
        }
        // Replacing a link whose target has another incoming link can still
        // strand it when that other link comes from an element reachable
        // only through it (a cycle): look again from the entry point.
        (reachable, in_degree, orphans) = survey(&nodes, entry);
        if orphans.is_empty() {
            break;
        }
        if relinked == before {
            if !capped {
                break;
            }
            capped = false;
        }
    }
    Ok(relinked)
}

/// Puts orphan `u` into reachable element `c`'s level-0 list: in a free
/// slot, a slot whose target is deleted, or in place of the farthest
/// non-diverse link whose target keeps another incoming link. A diverse
/// link is never given up: evicting those flooded the lists of
/// inner-product hubs with orphans and halved recall. True when written.
fn try_link<S: PageStore>(
    store: &S,
    nodes: &mut HashMap<Tid, Node>,
    reachable: &mut HashMap<Tid, bool>,
    in_degree: &mut HashMap<Tid, u32>,
    m: usize,
    c: &Candidate<Tid>,
    u: Tid,
) -> Result<bool, Corrupt> {
    let r = c.id;
    let Some(rn) = nodes.get(&r) else {
        return Ok(false);
    };
    if r == u || rn.deleted || !reachable.get(&r).copied().unwrap_or(false) {
        return Ok(false);
    }
    let (before, links) = read_links(store, rn.neighbors, m, rn.level, 0)?;
    if links.iter().any(|l| l.tid == u) {
        return Ok(true); // linked meanwhile
    }
    let deleted = |t: &Tid| nodes.get(t).is_some_and(|n| n.deleted);
    let pos = links
        .iter()
        .position(|l| !l.tid.is_valid() || deleted(&l.tid))
        .or_else(|| {
            (0..links.len())
                .filter(|i| {
                    !links[*i].diverse && in_degree.get(&links[*i].tid).copied().unwrap_or(0) >= 2
                })
                .max_by(|a, b| links[*a].distance.total_cmp(&links[*b].distance))
        });
    let Some(pos) = pos else {
        return Ok(false);
    };
    let replaced = links[pos].tid;
    let mut updated = links.clone();
    // What keeps u reachable: marked diverse so that link-backs evict
    // other links first (as the build's repair does).
    updated[pos] = Link {
        tid: u,
        distance: c.distance,
        diverse: true,
    };
    if !write_slots_if_unchanged(
        store,
        rn.neighbors,
        m,
        0,
        &before,
        &links_bytes(0, &updated),
    )? {
        return Ok(false);
    }
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
    // what u reaches, and their links, keep elements reachable now
    mark_from(u, nodes, reachable, Some(in_degree));
    Ok(true)
}

/// What a walk from the entry point reaches, the incoming links from
/// reachable live elements (a link may only be replaced when its target
/// keeps another one), and the live elements it does not reach.
#[allow(clippy::type_complexity)]
fn survey(
    nodes: &HashMap<Tid, Node>,
    entry: Tid,
) -> (HashMap<Tid, bool>, HashMap<Tid, u32>, Vec<Tid>) {
    let mut reachable: HashMap<Tid, bool> = nodes.keys().map(|t| (*t, false)).collect();
    mark_from(entry, nodes, &mut reachable, None);
    let mut in_degree: HashMap<Tid, u32> = HashMap::new();
    for (t, n) in nodes {
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
    (reachable, in_degree, orphans)
}

fn mark_from(
    start: Tid,
    nodes: &HashMap<Tid, Node>,
    reachable: &mut HashMap<Tid, bool>,
    mut in_degree: Option<&mut HashMap<Tid, u32>>,
) {
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
            if let Some(d) = in_degree.as_deref_mut() {
                *d.entry(*l).or_default() += 1;
            }
            if let Some(r) = reachable.get_mut(l) {
                if !*r {
                    *r = true;
                    stack.push(*l);
                }
            }
        }
    }
}
