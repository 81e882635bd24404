//! Greedy graph search (HNSW paper, algorithms 2 and 5), generic over where
//! the graph lives.

use crate::Visited;
use distance::Query;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::hash::Hash;

/// Read access to an HNSW graph.
pub trait Graph {
    type Id: Copy + Eq + Hash + Ord;

    /// The node searches start from and its level; None for an empty graph.
    fn entry_point(&self) -> Option<(Self::Id, usize)>;

    /// Replaces `out` with the neighbours of `id` on `level`.
    fn neighbors(&self, id: Self::Id, level: usize, out: &mut Vec<Self::Id>);

    /// Distance from the (prepared) query to node `id`.
    fn distance(&self, query: &Query, id: Self::Id) -> f32;

    /// Distances to several nodes at once (a graph on pages overlaps their
    /// memory fetches); `out` is replaced, one distance per id.
    fn distances(&self, query: &Query, ids: &[Self::Id], out: &mut Vec<f32>) {
        out.clear();
        out.extend(ids.iter().map(|id| self.distance(query, *id)));
    }

    /// `distances`, and whether each node is flagged deleted (VACUUM flags
    /// elements whose rows are gone before it repairs the links into them).
    fn distances_flagged(
        &self,
        query: &Query,
        ids: &[Self::Id],
        out: &mut Vec<f32>,
        deleted: &mut Vec<bool>,
    ) {
        self.distances(query, ids, out);
        deleted.clear();
        deleted.resize(ids.len(), false);
    }

    /// Replaces `out` with the live nodes of one stretch of the graph (a
    /// few pages, or `SWEEP_NODES` nodes in memory), however they are
    /// linked, starting at stretch `from` (0 first); returns the next
    /// stretch, None after the last. The iterative search's last resort once
    /// the walk is exhausted, read a stretch at a time so that its caller
    /// can check for interrupts and budgets between (see
    /// `IterativeSearch::sweeping`).
    fn sweep_nodes(&self, from: u64, out: &mut Vec<Self::Id>) -> Option<u64>;
}

/// Pages one stretch of a sweep over pages reads (`Graph::sweep_nodes`).
pub const SWEEP_PAGES: u64 = 32;

/// Nodes one stretch of a sweep over a graph in memory holds.
pub const SWEEP_NODES: u64 = 4096;

/// A node and its distance to the query, ordered by distance then id.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<Id> {
    pub distance: f32,
    pub id: Id,
}

impl<Id: Ord> PartialEq for Candidate<Id> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<Id: Ord> Eq for Candidate<Id> {}
impl<Id: Ord> PartialOrd for Candidate<Id> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<Id: Ord> Ord for Candidate<Id> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then_with(|| self.id.cmp(&other.id))
    }
}

/// Best-first search on one level from `entry` (already marked visited by
/// the caller or not: entries are inserted into `visited` here). Returns up
/// to `ef` nearest nodes found, nearest first.
pub fn search_layer<G: Graph>(
    graph: &G,
    query: &Query,
    entry: &[Candidate<G::Id>],
    ef: usize,
    level: usize,
    visited: &mut Visited<G::Id>,
) -> Vec<Candidate<G::Id>> {
    search_layer_counting(graph, query, entry, ef, level, visited, false)
}

/// `search_layer`; with `skip_deleted`, nodes flagged deleted do not count
/// towards `ef`: the `ef` nearest live nodes found, with the deleted ones
/// nearer than the farthest of them (the caller skips those). Inserts and VACUUM's repair
/// search this way: while a VACUUM runs, the elements it flagged stay in the
/// graph until their links are repaired, and under heavy churn they filled
/// much of an insert's window, leaving it fewer live candidates to choose
/// neighbours from: this halved the recall a churned index loses against a
/// rebuild (`tests::reuse::churn_soak`; bench/README.md, "Measurements
/// behind design choices").
pub fn search_layer_counting<G: Graph>(
    graph: &G,
    query: &Query,
    entry: &[Candidate<G::Id>],
    ef: usize,
    level: usize,
    visited: &mut Visited<G::Id>,
    skip_deleted: bool,
) -> Vec<Candidate<G::Id>> {
    let ef = ef.max(1);
    let mut candidates: BinaryHeap<Reverse<Candidate<G::Id>>> = BinaryHeap::new();
    // (node, deleted); `live` counts the others
    let mut results: BinaryHeap<(Candidate<G::Id>, bool)> = BinaryHeap::new();
    let mut live = 0;
    // drops the farthest results until `ef` live ones are left, and the
    // deleted ones beyond the farthest of those
    let trim = |results: &mut BinaryHeap<(Candidate<G::Id>, bool)>, live: &mut usize| {
        while let Some(&(_, deleted)) = results.peek() {
            if *live > ef || (deleted && *live == ef) {
                results.pop();
                *live -= usize::from(!deleted);
            } else {
                break;
            }
        }
    };
    for c in entry {
        if visited.insert(c.id) {
            candidates.push(Reverse(*c));
            results.push((*c, false));
            live += 1;
        }
    }
    trim(&mut results, &mut live);
    let mut neighbors = Vec::new();
    let mut distances = Vec::new();
    let mut deleted = Vec::new();
    while let Some(Reverse(nearest)) = candidates.pop() {
        let worst = results.peek().map_or(f32::INFINITY, |c| c.0.distance);
        if nearest.distance > worst && live >= ef {
            break;
        }
        graph.neighbors(nearest.id, level, &mut neighbors);
        neighbors.retain(|n| visited.insert(*n));
        if skip_deleted {
            graph.distances_flagged(query, &neighbors, &mut distances, &mut deleted);
        } else {
            graph.distances(query, &neighbors, &mut distances);
            deleted.clear();
            deleted.resize(neighbors.len(), false);
        }
        for ((&n, &d), &gone) in neighbors.iter().zip(&distances).zip(&deleted) {
            let worst = results.peek().map_or(f32::INFINITY, |c| c.0.distance);
            if live < ef || d < worst {
                let c = Candidate { distance: d, id: n };
                candidates.push(Reverse(c));
                results.push((c, gone));
                live += usize::from(!gone);
                trim(&mut results, &mut live);
            }
        }
    }
    results
        .into_sorted_vec()
        .into_iter()
        .map(|(c, _)| c)
        .collect()
}

/// The `k` nearest nodes found with search width `ef` (k <= ef), nearest
/// first: greedy descent through the upper levels, then a best-first search
/// of level 0.
pub fn search<G: Graph>(graph: &G, query: &Query, k: usize, ef: usize) -> Vec<Candidate<G::Id>> {
    let mut found = search_level(graph, query, ef.max(k), 0);
    found.truncate(k);
    found
}

/// The `ef` nearest nodes to `query` on `level`, nearest first: a greedy
/// descent from the entry point down to the level above, then a best-first
/// search of `level` (empty above the top level or for `ef` 0).
pub fn search_level<G: Graph>(
    graph: &G,
    query: &Query,
    ef: usize,
    level: usize,
) -> Vec<Candidate<G::Id>> {
    search_level_counting(graph, query, ef, level, false)
}

/// `search_level` counting like `search_layer_counting`.
pub fn search_level_counting<G: Graph>(
    graph: &G,
    query: &Query,
    ef: usize,
    level: usize,
    skip_deleted: bool,
) -> Vec<Candidate<G::Id>> {
    let Some((entry, top)) = graph
        .entry_point()
        .filter(|(_, top)| ef > 0 && level <= *top)
    else {
        return Vec::new();
    };
    let mut visited = Visited::default();
    let ep = descend(graph, query, entry, top, level, &mut visited, skip_deleted);
    search_layer_counting(graph, query, &ep, ef, level, &mut visited, skip_deleted)
}

/// The greedy descent (width 1) from `entry`, on level `top`, through the
/// levels above `level`: the entry points for a search of `level`.
/// `visited` is left clear.
pub fn descend<G: Graph>(
    graph: &G,
    query: &Query,
    entry: G::Id,
    top: usize,
    level: usize,
    visited: &mut Visited<G::Id>,
    skip_deleted: bool,
) -> Vec<Candidate<G::Id>> {
    let mut ep = vec![Candidate {
        distance: graph.distance(query, entry),
        id: entry,
    }];
    visited.clear();
    for l in (level + 1..=top).rev() {
        ep = search_layer_counting(graph, query, &ep, 1, l, visited, skip_deleted);
        visited.clear();
    }
    ep
}

/// Candidates found on each level, top level first.
pub type FoundPerLevel<Id> = Vec<(usize, Vec<Candidate<Id>>)>;

/// What a new node of `level` links to (the build's and the insert's
/// search): the descent from `entry` (a node and its level, the graph's
/// entry point), then on `level` and each
/// level below it the `ef` nearest nodes but `skip` (the node itself, when
/// it is in the graph already), each level searched from the one above's
/// results.
#[allow(clippy::too_many_arguments)]
pub fn search_levels<G: Graph>(
    graph: &G,
    query: &Query,
    (entry, top): (G::Id, usize),
    level: usize,
    ef: usize,
    skip: Option<G::Id>,
    visited: &mut Visited<G::Id>,
    skip_deleted: bool,
) -> FoundPerLevel<G::Id> {
    let mut found_per_level = Vec::new();
    let mut ep = descend(graph, query, entry, top, level, visited, skip_deleted);
    for l in (0..=level.min(top)).rev() {
        let mut found = search_layer_counting(graph, query, &ep, ef, l, visited, skip_deleted);
        visited.clear();
        found.retain(|c| Some(c.id) != skip);
        if !found.is_empty() {
            ep = found.clone();
        }
        found_per_level.push((l, found));
    }
    found_per_level
}
