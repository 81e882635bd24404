//! A search that can continue (hnsw.iterative_scan).
//!
//! The ordinary search keeps the `ef` nearest nodes seen and forgets the
//! rest. Here every evaluated node is kept: the first batch settles the `ef`
//! nearest exactly as `search` does, and each further batch resumes the same
//! best-first expansion from where it stopped and settles the next `ef`.
//! Batches come nearest-first within themselves; a later batch may hold a
//! node nearer than the end of an earlier one (pgvector's relaxed_order);
//! strict_order is the caller buffering and re-sorting.
//!
//! Elements VACUUM has flagged deleted (and not yet unlinked) are expanded
//! like any other, since they may be the only way to their neighbours, but
//! never take a place in a batch or in the window that settles one: a scan
//! running during VACUUM still gets `ef` live nodes per batch (they have no
//! heap TIDs left, so a batch slot given to one returned no row).
//!
//! HNSW's pruning can leave an element with no link into it (until VACUUM
//! relinks it), which no walk reaches. A search made `sweeping` reads every
//! live node once the walk is exhausted and returns those it never saw, so
//! a scan that keeps asking gets every row of the index: a filtered query
//! returns k rows whenever k qualifying rows exist.

use crate::format::{MAX_PAYLOADS, MIN_PAYLOAD_SLOTS};
use crate::search::{Candidate, Graph};
use crate::Visited;
use distance::rabitq::PreparedQuery;
use distance::{ElementBuf, Metric, Query};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, TryReserveError};
use std::hash::Hash;

/// Expansions between two calls of a batch's `go_on` during the walk.
pub const WALK_PAUSE: usize = 64;

/// How many elements a batch may take per `ef` when the elements after its
/// last are at exactly the same distance: enough for the 10 heap rows per
/// element pgvector's batches carry, from elements of the fewest slots.
const DUPLICATE_SPREAD: usize = MAX_PAYLOADS.div_ceil(MIN_PAYLOAD_SLOTS);

/// The search state; it holds no reference to the graph, which each batch
/// is given afresh (pages may have changed between batches).
pub struct IterativeSearch<Id> {
    /// The prepared query (owned: a scan outlives its first call).
    query: ElementBuf,
    metric: Metric,
    /// The query's form for codes, in an index of codes.
    code: Option<PreparedQuery>,
    ef: usize,
    visited: Visited<Id>,
    /// Evaluated nodes whose neighbours are not expanded yet.
    frontier: BinaryHeap<Reverse<Candidate<Id>>>,
    /// Evaluated nodes not returned yet.
    pending: BinaryHeap<Reverse<Candidate<Id>>>,
    /// The `ef` nearest of `pending` (a max-heap): its top bounds what is settled.
    window: BinaryHeap<Candidate<Id>>,
    started: bool,
    /// `window` holds nodes taken since (`take_evaluated`): refill it before
    /// the walk goes on (lazily: a scan draining its nodes in chunks would
    /// refill it from every pending node once a chunk).
    window_stale: bool,
    /// Whether the entry point has been added as a second start (see next_batch).
    entry_added: bool,
    /// Whether to sweep for unreached nodes once the walk is exhausted.
    sweep: bool,
    swept: bool,
    /// Nodes evaluated so far (hnsw.max_scan_tuples bounds this).
    pub evaluated: usize,
}

impl<Id: Copy + Eq + Hash + Ord> IterativeSearch<Id> {
    /// The query, with its form for codes when it has one.
    pub fn query(&self) -> Query<'_> {
        Query::new(self.metric, self.query.as_element()).with_code(self.code.as_ref())
    }

    pub fn new(query: &Query, ef: usize) -> Self {
        IterativeSearch {
            query: query.vector().to_buf(),
            metric: query.metric(),
            code: query.code().cloned(),
            ef: ef.max(1),
            visited: Visited::default(),
            frontier: BinaryHeap::new(),
            pending: BinaryHeap::new(),
            window: BinaryHeap::new(),
            started: false,
            window_stale: false,
            entry_added: false,
            sweep: false,
            swept: false,
            evaluated: 0,
        }
    }

    /// Ends the search with every live node the walk missed (see the
    /// module comment) instead of with the reachable ones only.
    pub fn sweeping(mut self) -> Self {
        self.sweep = true;
        self
    }

    fn start<G: Graph<Id = Id>>(&mut self, graph: &G) {
        self.started = true;
        let Some((entry, top)) = graph.entry_point() else {
            return;
        };
        let mut upper = Visited::default();
        let ep = crate::search::descend(graph, &self.query(), entry, top, 0, &mut upper, false);
        let ids: Vec<Id> = ep.iter().map(|c| c.id).collect();
        let (mut distances, mut deleted) = (Vec::new(), Vec::new());
        graph.distances_flagged(&self.query(), &ids, &mut distances, &mut deleted);
        for (c, gone) in ep.into_iter().zip(deleted) {
            if self.visited.insert(c.id) {
                self.add(c, gone);
            }
        }
    }

    /// Takes an evaluated node: to expand, and (unless flagged deleted) to
    /// return.
    fn add(&mut self, c: Candidate<Id>, deleted: bool) {
        self.evaluated += 1;
        self.frontier.push(Reverse(c));
        if deleted {
            return;
        }
        self.pending.push(Reverse(c));
        if self.window.len() < self.ef || self.window.peek().is_some_and(|w| c < *w) {
            self.window.push(c);
            if self.window.len() > self.ef {
                self.window.pop();
            }
        }
    }

    /// Up to `n` of the nodes already evaluated and not yet returned,
    /// nearest first, without expanding the search (for a scan that hit its
    /// budget: these cost no further page reads).
    pub fn take_evaluated(&mut self, n: usize) -> Vec<Candidate<Id>> {
        let mut out = Vec::with_capacity(n.min(self.pending.len()));
        while out.len() < n {
            match self.pending.pop() {
                Some(Reverse(c)) => out.push(c),
                None => break,
            }
        }
        self.refill_window();
        out
    }

    /// Makes room for `n` more evaluated nodes in the visited set and the
    /// heaps, failing (where growing them would abort the process) when the
    /// allocator has no more: their size comes from the data and the scan's
    /// settings, so a scan gets an ERROR out of it, not the server a crash.
    fn try_grow(&mut self, n: usize) -> Result<(), TryReserveError> {
        self.visited.try_reserve(n)?;
        self.frontier.try_reserve(n)?;
        self.pending.try_reserve(n)
    }

    /// Whether the final sweep has begun (`go_on` is then called between
    /// its stretches).
    pub fn in_sweep(&self) -> bool {
        self.swept
    }

    /// Approximate bytes held (visited set, heaps), for scan memory limits.
    pub fn memory_bytes(&self) -> usize {
        let c = std::mem::size_of::<Candidate<Id>>();
        self.visited.len() * (std::mem::size_of::<Id>() + 8)
            + (self.frontier.capacity() + self.pending.capacity() + self.window.capacity()) * c
    }

    /// The next up to `ef` nodes, nearest first; empty when the reachable
    /// graph is exhausted. Panics where the allocator fails, as `Vec` does.
    pub fn next_batch<G: Graph<Id = Id>>(&mut self, graph: &G) -> Vec<Candidate<Id>> {
        self.next_batch_pausing(graph, &mut |_| true)
            .expect("memory for the search")
    }

    /// `next_batch`, calling `go_on` every `WALK_PAUSE` expansions of the
    /// walk and after each stretch of the final sweep
    /// (`Graph::sweep_nodes`): the caller checks for interrupts there, and
    /// false (its budget spent) ends the walk or the sweep where it is (the
    /// batch is then the nearest of the nodes evaluated so far). The error
    /// is the allocator's: the search holds what it held before.
    pub fn next_batch_pausing<G: Graph<Id = Id>>(
        &mut self,
        graph: &G,
        go_on: &mut dyn FnMut(&Self) -> bool,
    ) -> Result<Vec<Candidate<Id>>, TryReserveError> {
        if !self.started {
            self.try_grow(1)?; // the descent (width 1) ends at one node
            self.start(graph);
        }
        if std::mem::take(&mut self.window_stale) {
            self.refill_window();
        }
        let mut expansions = 0usize;
        let mut neighbors = Vec::new();
        let mut distances = Vec::new();
        let mut deleted = Vec::new();
        loop {
            // Level 0 is a directed graph: everything is reachable from the
            // entry point (the build repairs that), not from wherever the
            // descent landed. Once the frontier runs dry, resume from the
            // entry point: every node still unseen is reachable from it
            // through unseen nodes only, since every seen node was expanded.
            if self.frontier.is_empty() && !self.entry_added {
                self.entry_added = true;
                if let Some((entry, _)) = graph.entry_point() {
                    self.try_grow(1)?;
                    if self.visited.insert(entry) {
                        graph.distances_flagged(
                            &self.query(),
                            &[entry],
                            &mut distances,
                            &mut deleted,
                        );
                        let c = Candidate {
                            distance: distances[0],
                            id: entry,
                        };
                        self.add(c, deleted[0]);
                    }
                }
            }
            // The ef-th nearest pending node bounds what is settled.
            let bound =
                (self.window.len() == self.ef).then(|| self.window.peek().expect("full").distance);
            match self.frontier.peek() {
                Some(Reverse(next)) if bound.is_none_or(|b| next.distance <= b) => {}
                _ => break,
            }
            expansions += 1;
            if expansions % WALK_PAUSE == 0 && !go_on(self) {
                break;
            }
            let Reverse(c) = self.frontier.pop().expect("peeked");
            graph.neighbors(c.id, 0, &mut neighbors);
            self.try_grow(neighbors.len())?;
            neighbors.retain(|n| self.visited.insert(*n));
            graph.distances_flagged(&self.query(), &neighbors, &mut distances, &mut deleted);
            for ((&id, &distance), &gone) in neighbors.iter().zip(&distances).zip(&deleted) {
                self.add(Candidate { distance, id }, gone);
            }
        }
        if self.sweep && !self.swept && self.frontier.is_empty() {
            // the walk is exhausted: what it never saw joins the pending
            // nodes, to come out in distance order with them
            self.swept = true;
            let mut from = 0;
            loop {
                let next = graph.sweep_nodes(from, &mut neighbors);
                self.try_grow(neighbors.len())?;
                neighbors.retain(|n| self.visited.insert(*n));
                graph.distances(&self.query(), &neighbors, &mut distances);
                for (&id, &distance) in neighbors.iter().zip(&distances) {
                    self.evaluated += 1;
                    self.pending.push(Reverse(Candidate { distance, id }));
                }
                match next {
                    Some(n) if go_on(self) => from = n,
                    _ => break,
                }
            }
        }
        let mut batch = Vec::with_capacity(self.ef);
        while batch.len() < self.ef {
            match self.pending.pop() {
                Some(Reverse(c)) => batch.push(c),
                None => break,
            }
        }
        // Elements at exactly the distance of the batch's last one come with
        // it, up to DUPLICATE_SPREAD * ef elements: copies of one vector
        // fill elements of 4 to 10 heap rows (as many as keep pages full),
        // where pgvector's hold 10, and a batch cut between them returned
        // 4 of 20 copies at ef_search = 1 where pgvector returns 10.
        while batch.len() < self.ef * DUPLICATE_SPREAD {
            match (self.pending.peek(), batch.last()) {
                (Some(Reverse(next)), Some(last)) if next.distance == last.distance => {
                    batch.push(*next);
                    self.pending.pop();
                }
                _ => break,
            }
        }
        self.refill_window();
        Ok(batch)
    }

    /// The window held the nodes just returned; refill it with the next ef.
    fn refill_window(&mut self) {
        self.window.clear();
        for Reverse(c) in self.pending.iter() {
            if self.window.len() < self.ef || self.window.peek().is_some_and(|w| c < w) {
                self.window.push(*c);
                if self.window.len() > self.ef {
                    self.window.pop();
                }
            }
        }
    }
}
