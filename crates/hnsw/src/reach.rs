//! Keeping every element reachable (part of VACUUM): the pages of an
//! index as `repair::Repairable`, so that VACUUM repairs with the rules the
//! build uses. The links of every level are read once; a walk follows them
//! from the entry point through live elements (a cluster whose level-0
//! links stay inside it is reached through the upper levels searches
//! descend by; deleted elements are free by now, their links soon
//! overwritten by an insert that reuses them), and each live element it
//! does not reach gets a level-0 link from one it does.

use crate::format::{links_bytes, page_elements, Link};
use crate::page_graph::{read_links, read_slots, write_slots_if_unchanged, PageGraph};
use crate::repair::{repair, repair_slot, Offer, Proposal, Repairable, Slot};
use crate::search::Candidate;
use pagestore::{Corrupt, PageStore, Tid};
use std::collections::HashMap;

struct Node {
    tid: Tid,
    /// Links of every level, as element numbers.
    links: Vec<usize>,
    neighbors: Tid,
    level: usize,
    deleted: bool,
}

/// An index's elements, numbered in page order.
struct Elements<'a, S: PageStore, F: FnMut()> {
    store: &'a S,
    graph: PageGraph<'a, S>,
    m: usize,
    entry: Option<usize>,
    nodes: Vec<Node>,
    number: HashMap<Tid, usize>,
    between: F,
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

    let mut nodes = Vec::new();
    let mut tids: Vec<Vec<Tid>> = Vec::new();
    for block in 1..store.nblocks() {
        let found = store.read(block, |p| page_elements(p, block, bytes))?;
        for e in found {
            // searches descend through upper levels: a cluster whose level-0
            // links stay inside it is still reached through them
            let mut links = Vec::new();
            for l in 0..=e.level {
                let (_, slots) = read_slots(store, e.neighbors, m, e.level, l)?;
                links.extend(slots.into_iter().filter(|t| t.is_valid()));
            }
            tids.push(links);
            nodes.push(Node {
                tid: e.tid,
                links: Vec::new(),
                neighbors: e.neighbors,
                level: e.level,
                deleted: e.deleted(),
            });
        }
        between();
    }
    let number: HashMap<Tid, usize> = nodes.iter().enumerate().map(|(i, n)| (n.tid, i)).collect();
    for (n, links) in nodes.iter_mut().zip(tids) {
        n.links = links
            .iter()
            .filter_map(|t| number.get(t).copied())
            .collect();
    }
    let mut elements = Elements {
        store,
        graph,
        m,
        entry: number.get(&entry).copied(),
        nodes,
        number,
        between,
    };
    repair(&mut elements)
}

impl<S: PageStore, F: FnMut()> Repairable for Elements<'_, S, F> {
    type Error = Corrupt;

    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn entry(&self) -> Option<usize> {
        self.entry
    }

    fn member(&self, i: usize) -> bool {
        !self.nodes[i].deleted
    }

    fn links(&self, i: usize, out: &mut Vec<usize>) {
        out.extend_from_slice(&self.nodes[i].links);
    }

    fn distance(&self, from: usize, to: usize) -> Result<f32, Corrupt> {
        let v = self.graph.element(self.nodes[from].tid)?.vector;
        self.graph
            .distance(&self.graph.query_of(&v)?.query(), self.nodes[to].tid)
    }

    fn nearest(&self, i: usize) -> Result<Vec<Candidate<usize>>, Corrupt> {
        let v = self.graph.element(self.nodes[i].tid)?.vector;
        let ef = self.graph.meta().ef_construction as usize;
        Ok(self
            .graph
            .search(&self.graph.query_of(&v)?.query(), ef, ef)?
            .into_iter()
            .filter_map(|c| {
                Some(Candidate {
                    distance: c.distance,
                    id: *self.number.get(&c.id)?,
                })
            })
            .collect())
    }

    /// Writes the link into the host's level-0 slots, unless a concurrent
    /// insert changed them since they were read.
    fn offer(&mut self, link: Proposal, in_degree: &[u32]) -> Result<Offer, Corrupt> {
        let Proposal {
            host,
            lost,
            distance,
        } = link;
        let (h, u) = (&self.nodes[host], self.nodes[lost].tid);
        let (before, mut links) = read_links(self.store, h.neighbors, self.m, h.level, 0)?;
        if links.iter().any(|l| l.tid == u) {
            return Ok(Offer::Present);
        }
        let number = |t: Tid| self.number.get(&t).copied();
        let gone = |t: Tid| !t.is_valid() || number(t).is_none_or(|i| self.nodes[i].deleted);
        let degree = |t: Tid| number(t).map_or(0, |i| in_degree[i]);
        let Some(Slot::Replace(pos)) = repair_slot(&links, links.len(), gone, degree) else {
            return Ok(Offer::Refused);
        };
        let replaced = number(links[pos].tid);
        links[pos] = Link {
            tid: u,
            distance,
            diverse: true,
        };
        let after = links_bytes(0, &links);
        if !write_slots_if_unchanged(self.store, h.neighbors, self.m, 0, &before, &after)? {
            return Ok(Offer::Refused);
        }
        let own = &mut self.nodes[host].links;
        match replaced.and_then(|r| own.iter().position(|&t| t == r)) {
            Some(i) => own[i] = lost,
            None => own.push(lost),
        }
        Ok(Offer::Linked { replaced })
    }

    fn between(&mut self) {
        (self.between)();
    }
}
