//! Keeping every element reachable (part of VACUUM): the pages of an
//! index as `repair::Repairable`, so that VACUUM repairs with the rules the
//! build uses. A walk follows the links of every level from the entry point
//! through live elements (a cluster whose level-0 links stay inside it is
//! reached through the upper levels searches descend by; deleted elements
//! are free by now, their links soon overwritten by an insert that reuses
//! them), and each live element it does not reach gets a level-0 link from
//! one it does.
//!
//! Memory is bounded by a budget (the extension: `maintenance_work_mem`).
//! Tuples are numbered densely in page order (a page's first number, 4
//! bytes a page, instead of a map from TIDs); the repair keeps 4 bytes a
//! tuple (`repair::repair_bytes`). The links of every element are read once
//! and kept while they fit the budget (about 150 bytes an element at
//! m = 16); past it the walk reads them from their pages each time (a few
//! passes over the index instead of one). Where even the per-tuple arrays
//! do not fit, nothing is repaired: `Reach::OverBudget` says how much the
//! pass needs.

use crate::format::{links_bytes, read_element, Link};
use crate::page_graph::{read_links, read_slots, write_slots_if_unchanged, PageGraph};
use crate::repair::{repair, repair_bytes, repair_slot, Offer, Proposal, Repairable, Slot};
use crate::search::Candidate;
use pagestore::{page, Corrupt, PageStore, Tid};
use std::cell::RefCell;

/// What the pass did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Unreachable live elements linked back in.
    Relinked(u64),
    /// The budget (bytes) cannot hold what the pass needs (bytes): it read
    /// one pass over the pages and changed nothing.
    OverBudget { needs: usize, budget: usize },
}

#[cfg(test)]
impl Reach {
    /// How many were relinked (none when over budget).
    pub fn relinked(self) -> u64 {
        match self {
            Reach::Relinked(n) => n,
            Reach::OverBudget { .. } => 0,
        }
    }
}

/// An element's links (all levels) and where its own neighbour tuple is,
/// read once.
struct Node {
    links: Vec<Tid>,
    neighbors: Tid,
    level: u8,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            links: Vec::new(),
            neighbors: Tid::INVALID,
            level: 0,
        }
    }
}

/// Bytes a kept `Node` takes besides its links.
const NODE_BYTES: usize = std::mem::size_of::<Node>();

/// A set of tuple numbers.
#[derive(Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn grow(&mut self, len: usize) {
        self.0.resize(len.div_ceil(64), 0);
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// An index's tuples, numbered in page order: tuple `offset` of `block` is
/// number `first[block] + offset - 1`.
struct Elements<'a, S: PageStore, F: FnMut()> {
    store: &'a S,
    graph: PageGraph<'a, S>,
    m: usize,
    entry: Option<usize>,
    len: usize,
    first: Vec<u64>,
    /// Live elements.
    live: Bits,
    /// Every tuple's node (empty for others), while they fit the budget.
    nodes: Option<Vec<Node>>,
    /// The first error of a read `links` could not return.
    error: RefCell<Option<Corrupt>>,
    between: F,
}

/// Links every unreachable live element back into the graph, within
/// `budget` bytes. `between` runs after each page read and each repair.
pub fn repair_reachability<S: PageStore>(
    store: &S,
    budget: usize,
    mut between: impl FnMut(),
) -> Result<Reach, Corrupt> {
    let graph = PageGraph::open(store)?;
    let meta = *graph.meta();
    let Some((entry, _)) = graph.entry_point() else {
        return Ok(Reach::Relinked(0));
    };
    let (m, bytes) = (meta.m as usize, meta.vector_bytes());
    let nblocks = store.nblocks();

    // One pass over the pages: tuple numbers, live elements, and every
    // element's links while they fit the budget with what the repair needs.
    let mut first = vec![0u64, 0u64];
    let mut live = Bits::default();
    let mut nodes: Option<Vec<Node>> = Some(Vec::new());
    let mut node_bytes = 0usize;
    let mut count = 0usize;
    let needs = |count: usize, blocks: usize| repair_bytes(count) + count / 8 + 8 * blocks;
    for block in 1..nblocks {
        let (offsets, found) = store.read(block, |p| -> Result<_, Corrupt> {
            if page::is_new(p) {
                return Ok((0, Vec::new()));
            }
            Ok((
                page::max_offset(p)?,
                crate::format::page_elements(p, block, bytes)?,
            ))
        })?;
        let base = count;
        count += offsets as usize;
        first.push(count as u64);
        live.grow(count);
        if let Some(all) = &mut nodes {
            all.resize_with(count, Node::default);
            node_bytes += offsets as usize * NODE_BYTES;
        }
        for e in found {
            let number = base + e.tid.offset as usize - 1;
            if !e.deleted() {
                live.set(number);
            }
            let Some(all) = &mut nodes else {
                continue;
            };
            let mut links = Vec::new();
            for l in 0..=e.level {
                let (_, slots) = read_slots(store, e.neighbors, m, e.level, l)?;
                links.extend(slots.into_iter().filter(|t| t.is_valid()));
            }
            node_bytes += links.len() * std::mem::size_of::<Tid>();
            all[number] = Node {
                links,
                neighbors: e.neighbors,
                level: e.level as u8,
            };
        }
        if node_bytes + needs(count, first.len()) > budget {
            nodes = None; // past the budget: links are read from the pages
        }
        between();
    }
    let needs = needs(count, first.len());
    if needs > budget {
        return Ok(Reach::OverBudget { needs, budget });
    }
    let mut elements = Elements {
        store,
        graph,
        m,
        entry: None,
        len: count,
        first,
        live,
        nodes,
        error: RefCell::new(None),
        between,
    };
    elements.entry = elements.number(entry);
    let relinked = repair(&mut elements)?;
    if let Some(e) = elements.error.into_inner() {
        return Err(e);
    }
    Ok(Reach::Relinked(relinked))
}

impl<S: PageStore, F: FnMut()> Elements<'_, S, F> {
    /// A TID's number; None for one past what the pass numbered (a tuple
    /// added since).
    fn number(&self, t: Tid) -> Option<usize> {
        let block = t.block as usize;
        if t.offset == 0 || block + 1 >= self.first.len() {
            return None;
        }
        let (start, end) = (self.first[block], self.first[block + 1]);
        let n = start as usize + t.offset as usize - 1;
        (n < end as usize).then_some(n)
    }

    /// A number's TID.
    fn tid(&self, n: usize) -> Tid {
        let block = self.first.partition_point(|&f| f as usize <= n) - 1;
        Tid {
            block: block as u32,
            offset: (n - self.first[block] as usize + 1) as u16,
        }
    }

    /// Links of every level of the neighbour tuple `nt` (of an element of
    /// `level`), as numbers, into `out`.
    fn read_links(&self, nt: Tid, level: usize, out: &mut Vec<usize>) -> Result<(), Corrupt> {
        for l in 0..=level {
            let (_, slots) = read_slots(self.store, nt, self.m, level, l)?;
            out.extend(slots.into_iter().filter_map(|t| self.number(t)));
        }
        Ok(())
    }

    /// Element `i`'s neighbour tuple and level.
    fn head(&self, i: usize) -> Result<(Tid, usize), Corrupt> {
        if let Some(nodes) = &self.nodes {
            return Ok((nodes[i].neighbors, nodes[i].level as usize));
        }
        let t = self.tid(i);
        let bytes = self.graph.meta().vector_bytes();
        self.store.read(t.block, |p| {
            let e = read_element(p, t, bytes)?;
            Ok((e.neighbors(), e.level()))
        })
    }
}

impl<S: PageStore, F: FnMut()> Repairable for Elements<'_, S, F> {
    type Error = Corrupt;

    fn len(&self) -> usize {
        self.len
    }

    fn entry(&self) -> Option<usize> {
        self.entry
    }

    fn member(&self, i: usize) -> bool {
        self.live.get(i)
    }

    fn links(&self, i: usize, out: &mut Vec<usize>) {
        if let Some(nodes) = &self.nodes {
            out.extend(nodes[i].links.iter().filter_map(|t| self.number(*t)));
            return;
        }
        if self.error.borrow().is_some() {
            return;
        }
        let read = self
            .head(i)
            .and_then(|(nt, level)| self.read_links(nt, level, out));
        // a freed element's tuple may be being overwritten: its links lead
        // nowhere the walk follows (`repair::mark`)
        if let (Err(e), true) = (read, self.live.get(i)) {
            *self.error.borrow_mut() = Some(e);
        }
    }

    fn distance(&self, from: usize, to: usize) -> Result<f32, Corrupt> {
        let v = self.graph.element(self.tid(from))?.vector;
        self.graph
            .distance(&self.graph.query_of(&v)?.query(), self.tid(to))
    }

    fn nearest(&self, i: usize) -> Result<Vec<Candidate<usize>>, Corrupt> {
        let v = self.graph.element(self.tid(i))?.vector;
        let ef = self.graph.meta().ef_construction as usize;
        Ok(self
            .graph
            .search(&self.graph.query_of(&v)?.query(), ef, ef)?
            .into_iter()
            .filter_map(|c| {
                Some(Candidate {
                    distance: c.distance,
                    id: self.number(c.id)?,
                })
            })
            .collect())
    }

    /// Writes the link into the host's level-0 slots, unless a concurrent
    /// insert changed them since they were read.
    fn offer(&mut self, link: Proposal, in_degree: &[u8]) -> Result<Offer, Corrupt> {
        let Proposal {
            host,
            lost,
            distance,
        } = link;
        let (neighbors, level) = self.head(host)?;
        let u = self.tid(lost);
        let (before, mut links) = read_links(self.store, neighbors, self.m, level, 0)?;
        if links.iter().any(|l| l.tid == u) {
            return Ok(Offer::Present);
        }
        let gone = |t: Tid| !t.is_valid() || self.number(t).is_none_or(|i| !self.live.get(i));
        let degree = |t: Tid| self.number(t).map_or(0, |i| in_degree[i]);
        let Some(Slot::Replace(pos)) = repair_slot(&links, links.len(), gone, degree) else {
            return Ok(Offer::Refused);
        };
        let old = links[pos].tid;
        let replaced = self.number(old);
        links[pos] = Link {
            tid: u,
            distance,
            diverse: true,
        };
        let after = links_bytes(0, &links);
        if !write_slots_if_unchanged(self.store, neighbors, self.m, 0, &before, &after)? {
            return Ok(Offer::Refused);
        }
        if let Some(nodes) = &mut self.nodes {
            let own = &mut nodes[host].links;
            match own.iter().position(|&t| t == old && old.is_valid()) {
                Some(i) => own[i] = u,
                None => own.push(u),
            }
        }
        Ok(Offer::Linked { replaced })
    }

    fn between(&mut self) {
        (self.between)();
    }
}
