//! Keeping every element reachable, written once for the in-memory build
//! (per level, after linking) and for VACUUM on pages (`reach`).
//!
//! HNSW prunes neighbour lists with a heuristic, so a link-back can drop
//! the last link into some element, and a new element may be refused by
//! every neighbour it chose. Such an element can no longer be found by any
//! search. `repair` walks the links from the entry point and links each
//! element it does not reach ("lost") from one it does:
//! 1. its own neighbours, nearest first, then the nearest elements a search
//!    finds: elements reachable before the repair, each hosting at most
//!    `GATEWAY_LINKS` repair links (more flooded the lists of inner-product
//!    hubs with lost elements and cost recall: bench/README.md,
//!    "Measurements behind design choices");
//! 2. else elements the repair linked before it that are its neighbours or
//!    share a neighbour with it (under inner product most lost elements sit
//!    inside the data's hull and link to the same few long vectors: they
//!    hang off each other).
//!
//! A host takes the link in a free slot, a slot whose target is gone, or in
//! place of its farthest non-diverse link whose target keeps another
//! incoming link (`repair_slot`), never a diverse one; the repair link is
//! marked diverse so that later link-backs evict other links first. Every
//! element lost at the start of a pass gets a link of its own, also when
//! one linked before it reaches it: a region cut off together is entered by
//! many links, not one (a filtered search into such a region found 0.78 of
//! its rows instead of 0.85 through single entries). Passes repeat until one
//! links nothing more; a last one lifts the bounds for the elements no other
//! host took (reachable rather than not). What stays lost (no host had room)
//! is left to the next VACUUM and to iterative scans' sweep.

use crate::search::Candidate;
use crate::select::LinkList;
use std::collections::HashMap;

/// Bytes a repair of `len` elements needs besides the graph itself: what
/// it keeps per element (reached, reached before the repair, incoming
/// links, repair links hosted).
pub fn repair_bytes(len: usize) -> usize {
    len * 4
}

/// Passes over the lost elements (each can use the hosts the previous made).
const REPAIR_PASSES: usize = 8;

/// Elements linked earlier by the repair, per shared neighbour, that a lost
/// element tries as hosts.
const SIBLING_HOSTS: usize = 4;

/// Repair links an element reachable before the repair hosts at most (more
/// cost inner-product recall: 20,000 rows of 64-d with norms 1 to 7,
/// recall@10 at ef 40 0.768 with 1, 0.761 with 2, 0.752 with 4, 0.64
/// unbounded; 0.772 without any repair).
const GATEWAY_LINKS: u8 = 1;

/// What a host did with a repair link offered to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// No slot could take it (or the list changed under a concurrent writer).
    Refused,
    /// The link was there already.
    Present,
    /// Written, in place of the link to `replaced` if any.
    Linked { replaced: Option<usize> },
}

/// A repair link: from `host` to `lost`, at `distance`.
#[derive(Clone, Copy, Debug)]
pub struct Proposal {
    pub host: usize,
    pub lost: usize,
    pub distance: f32,
}

/// One level of a graph as the repair sees it: elements numbered
/// `0..len()`, whatever the graph calls them.
pub trait Repairable {
    type Error;
    fn len(&self) -> usize;
    /// Where every search of this level starts.
    fn entry(&self) -> Option<usize>;
    /// Whether element `i` is live and on this level: only members' links
    /// are followed and only members are repaired.
    fn member(&self, i: usize) -> bool;
    /// Element `i`'s links on this level (to numbered elements), into `out`.
    fn links(&self, i: usize, out: &mut Vec<usize>);
    /// Distance from element `from`'s vector to element `to`.
    fn distance(&self, from: usize, to: usize) -> Result<f32, Self::Error>;
    /// The elements nearest to element `i` that a search finds, nearest
    /// first.
    fn nearest(&self, i: usize) -> Result<Vec<Candidate<usize>>, Self::Error>;
    /// Offers the link to its host, in the slot `repair_slot` picks given
    /// these incoming-link counts (saturating at 255).
    fn offer(&mut self, link: Proposal, in_degree: &[u8]) -> Result<Offer, Self::Error>;
    /// Runs after each element repaired (interrupt checks, pauses).
    fn between(&mut self) {}
}

/// Where a repair link goes in a host's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// At the end: the list has room.
    Append,
    /// In place of the link at this position.
    Replace(usize),
}

/// The slot of `list` (holding at most `max` links) a repair link takes: a
/// free one, one whose target is `gone`, else the farthest non-diverse
/// link whose target has another incoming link (`in_degree` at least 2),
/// so that the repair strands no third element and takes no link a search
/// needs.
pub fn repair_slot<L: LinkList>(
    list: &L,
    max: usize,
    gone: impl Fn(L::Id) -> bool,
    in_degree: impl Fn(L::Id) -> u8,
) -> Option<Slot> {
    if list.len() < max {
        return Some(Slot::Append);
    }
    if let Some(i) = (0..list.len()).find(|&i| gone(list.id(i))) {
        return Some(Slot::Replace(i));
    }
    (0..list.len())
        .filter(|&i| !list.diverse(i) && in_degree(list.id(i)) >= 2)
        .max_by(|&a, &b| list.distance(a).total_cmp(&list.distance(b)))
        .map(Slot::Replace)
}

/// What a walk from the entry point reaches, the incoming links from
/// reached members, and the members it does not reach.
struct Survey {
    seen: Vec<bool>,
    in_degree: Vec<u8>,
    lost: Vec<usize>,
}

fn survey<G: Repairable>(g: &G) -> Survey {
    let mut seen = vec![false; g.len()];
    let mut in_degree = vec![0; g.len()];
    if let Some(entry) = g.entry() {
        mark(g, entry, &mut seen, &mut in_degree);
    }
    let lost = (0..g.len()).filter(|&i| g.member(i) && !seen[i]).collect();
    Survey {
        seen,
        in_degree,
        lost,
    }
}

/// Marks `from` and what its links reach, counting the links of what it
/// reaches as incoming links.
fn mark<G: Repairable>(g: &G, from: usize, seen: &mut [bool], in_degree: &mut [u8]) {
    seen[from] = true;
    let (mut stack, mut links) = (vec![from], Vec::new());
    while let Some(n) = stack.pop() {
        // a non-member's links lead nowhere for long (VACUUM has freed it:
        // an insert may overwrite them at any time)
        if n != from && !g.member(n) {
            continue;
        }
        links.clear();
        g.links(n, &mut links);
        for &t in &links {
            in_degree[t] = in_degree[t].saturating_add(1);
            if !seen[t] {
                seen[t] = true;
                stack.push(t);
            }
        }
    }
}

/// Links every lost member back in (see the module docs); returns how many
/// were linked.
pub fn repair<G: Repairable>(g: &mut G) -> Result<u64, G::Error> {
    let natural = survey(g).seen;
    let mut gateway_used = vec![0u8; g.len()];
    // per element, the lost ones linking to it that the repair has linked
    // in (the latest few are tried as hosts)
    let mut linked_in: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut capped = true;
    let mut repaired = 0;
    for _pass in 0..REPAIR_PASSES {
        let Survey {
            mut seen,
            mut in_degree,
            lost,
        } = survey(g);
        if lost.is_empty() {
            break;
        }
        let mut progress = false;
        let mut own = Vec::new();
        for &id in &lost {
            own.clear();
            g.links(id, &mut own);
            let mut linked = false;
            for stage in 0..3 {
                let hosts = match stage {
                    0 => by_distance(g, id, &mut own.iter().copied())?,
                    1 => g.nearest(id)?,
                    _ => {
                        let siblings = own.iter().flat_map(|n| {
                            let l = linked_in.get(n).map_or(&[][..], |l| &l[..]);
                            let few = if capped { SIBLING_HOSTS } else { l.len() };
                            &l[l.len().saturating_sub(few)..]
                        });
                        let hosts = &mut own
                            .iter()
                            .chain(siblings)
                            .copied()
                            .filter(|&n| seen[n] && !natural[n]);
                        by_distance(g, id, hosts)?
                    }
                };
                for h in &hosts {
                    let host = h.id;
                    if host == id || !seen[host] || !g.member(host) {
                        continue;
                    }
                    let gateway = stage < 2;
                    if gateway
                        && (!natural[host] || (capped && gateway_used[host] >= GATEWAY_LINKS))
                    {
                        continue;
                    }
                    let link = Proposal {
                        host,
                        lost: id,
                        distance: h.distance,
                    };
                    match g.offer(link, &in_degree)? {
                        Offer::Refused => continue,
                        Offer::Present => {}
                        Offer::Linked { replaced } => {
                            if let Some(r) = replaced {
                                in_degree[r] = in_degree[r].saturating_sub(1);
                            }
                            in_degree[id] = in_degree[id].saturating_add(1);
                        }
                    }
                    gateway_used[host] = gateway_used[host].saturating_add(gateway as u8);
                    linked = true;
                    break;
                }
                if linked {
                    break;
                }
            }
            if linked {
                progress = true;
                repaired += 1;
                mark(g, id, &mut seen, &mut in_degree);
                for &n in &own {
                    linked_in.entry(n).or_default().push(id);
                }
            }
            g.between();
        }
        if !progress {
            if !capped {
                break;
            }
            capped = false;
        }
    }
    Ok(repaired)
}

/// `hosts` by distance from element `id`, nearest first, each once.
fn by_distance<G: Repairable>(
    g: &G,
    id: usize,
    hosts: &mut dyn Iterator<Item = usize>,
) -> Result<Vec<Candidate<usize>>, G::Error> {
    let mut c = hosts
        .filter(|&h| h != id)
        .map(|h| {
            Ok(Candidate {
                distance: g.distance(id, h)?,
                id: h,
            })
        })
        .collect::<Result<Vec<_>, G::Error>>()?;
    c.sort();
    c.dedup_by_key(|c| c.id);
    Ok(c)
}
