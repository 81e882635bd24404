//! Searching: rank the lists by their center's distance to the query, then
//! scan lists in that order, `probes` at a time, handing out what they
//! hold nearest first.

use crate::format::{for_each_item, Meta};
use crate::lists::{for_each_center, walk_chain};
use distance::{ElementBuf, Query};
use pagestore::{BlockNumber, Corrupt, PageStore, Tid};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, TryReserveError};

/// Why `Scan::probe` failed.
#[derive(Debug)]
pub enum ProbeError {
    Corrupt(Corrupt),
    /// The allocator had no room for the lists' rows (their number comes
    /// from the data and ivfflat.probes): the scan keeps what it had.
    OutOfMemory(TryReserveError),
}

impl From<Corrupt> for ProbeError {
    fn from(e: Corrupt) -> Self {
        ProbeError::Corrupt(e)
    }
}

/// A (distance, heap TID) ordered by distance, then TID.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub distance: f32,
    pub heap: Tid,
}

impl Eq for Hit {}

impl Ord for Hit {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.heap.cmp(&other.heap))
    }
}

impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// An ordered scan over the nearest lists.
pub struct Scan {
    /// The prepared query (owned: a scan outlives its first call).
    query: ElementBuf,
    /// Chain starts of all lists, nearest center first.
    order: Vec<BlockNumber>,
    /// Lists scanned so far.
    probed: usize,
    hits: BinaryHeap<Reverse<Hit>>,
    /// Items read so far.
    pub tuples: u64,
}

impl Scan {
    /// Ranks the lists for `query` (prepared for the index's metric; a
    /// zero vector under cosine stays zero and orders arbitrarily).
    pub fn new<S: PageStore>(store: &S, meta: &Meta, query: &Query) -> Result<Scan, Corrupt> {
        let mut ranked: Vec<(f32, u32, BlockNumber)> = Vec::with_capacity(meta.lists as usize);
        let scorer = query.scorer(meta.storage);
        for_each_center(store, meta, |i, start, center| {
            ranked.push((scorer.distance(center), i, start))
        })?;
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        Ok(Scan {
            query: query.vector().to_buf(),
            order: ranked.into_iter().map(|r| r.2).collect(),
            probed: 0,
            hits: BinaryHeap::new(),
            tuples: 0,
        })
    }

    /// Lists scanned so far.
    pub fn probed(&self) -> usize {
        self.probed
    }

    pub fn lists(&self) -> usize {
        self.order.len()
    }

    /// Reads the next `n` lists (fewer at the end) into the candidates;
    /// the candidates grow fallibly (see `ProbeError::OutOfMemory`).
    pub fn probe<S: PageStore>(
        &mut self,
        store: &S,
        meta: &Meta,
        n: usize,
    ) -> Result<(), ProbeError> {
        let bytes = meta.vector_bytes();
        let query = Query::new(meta.metric, self.query.as_element());
        let scorer = query.scorer(meta.storage);
        let end = (self.probed + n).min(self.order.len());
        let mut found = Vec::new();
        let mut failed = None;
        for &start in &self.order[self.probed..end] {
            walk_chain(store, start, |_, p| {
                for_each_item(p, bytes, |_, heap, v| {
                    if found.len() == found.capacity() && failed.is_none() {
                        failed = found.try_reserve(found.len().max(64)).err();
                    }
                    if failed.is_none() {
                        let d = scorer.distance(v);
                        found.push(Reverse(Hit { distance: d, heap }));
                    }
                })
            })?;
        }
        if let Some(e) = failed {
            return Err(ProbeError::OutOfMemory(e));
        }
        // Heapify the new batch together with what is left: O(n).
        let mut all = std::mem::take(&mut self.hits).into_vec();
        if let Err(e) = all.try_reserve(found.len()) {
            self.hits = BinaryHeap::from(all);
            return Err(ProbeError::OutOfMemory(e));
        }
        self.tuples += found.len() as u64;
        self.probed = end;
        all.extend(found);
        self.hits = BinaryHeap::from(all);
        Ok(())
    }

    /// The nearest candidate not handed out yet.
    pub fn next_hit(&mut self) -> Option<Hit> {
        self.hits.pop().map(|r| r.0)
    }

    /// Candidates waiting.
    pub fn pending(&self) -> usize {
        self.hits.len()
    }
}
