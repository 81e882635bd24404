//! Index scans: `ORDER BY col <op> $1`, nearest first.
//!
//! The first batch is the ordinary HNSW search with hnsw.ef_search. With
//! hnsw.iterative_scan on, each further batch continues the same best-first
//! search (see `hnsw::iterative`) until the executor stops asking (LIMIT
//! reached), the graph is exhausted, or hnsw.max_scan_tuples /
//! hnsw.scan_mem_multiplier * work_mem is spent (checked every few dozen
//! expansions, the memory from the first batch on); then the nodes already
//! evaluated are returned, a chunk at a time, without further page reads.
//! The search grows fallibly: where the allocator has no more, the scan
//! ends with ERROR: out of memory, not the backend with an abort. A scan that exhausts
//! the walk reads every page for elements no link leads to (see
//! `hnsw::iterative`), so it can return every row. relaxed_order returns
//! each batch in order; strict_order drops a row nearer than one already
//! returned, so the output is exactly ordered (as pgvector does).
//!
//! Pages are read one at a time under share locks; vacuum never frees an
//! element's space, so a link followed mid-scan always leads to a valid
//! element (maybe flagged deleted, which the scan passes through).
//!
//! An index of codes (`quantization = 'rabitq'`) searches by estimated
//! distances in a window somewhat wider than hnsw.ef_search
//! (`hnsw::rerank::code_window`), and its rows leave in exact distance
//! order: rows are measured from the heap (`super::rerank`) nearest lower
//! bound first (the estimate less two error bounds,
//! `hnsw::rerank::RERANK_SLACK`), and the nearest
//! measured row is returned once no unmeasured one may be nearer. With
//! LIMIT 10 at four bits that measures about a fifth of the window
//! (`hnsw::tests::quantized`). The bounds hold with high probability, not
//! always: a row measured after one farther than it was returned is
//! dropped (except with relaxed_order), so the output stays ordered.

use super::rerank::{with_rows, Exact};
use super::{read_meta, EF_SEARCH, ITERATIVE_OFF, ITERATIVE_SCAN, ITERATIVE_STRICT};
use super::{MAX_SCAN_TUPLES, SCAN_MEM_MULTIPLIER};
use crate::am;
use crate::storage::BufferStore;
use hnsw::iterative::IterativeSearch;
use hnsw::page_graph::PageGraph;
use hnsw::rerank::Rerank;
use hnsw::Candidate;
use pagestore::Tid;
use pgrx::pg_sys;
use std::collections::VecDeque;

/// Nodes one batch of a scan past its budget takes (its results stay small).
const DRAIN_CHUNK: usize = 1000;

/// One execution of the scan (between amrescan calls).
struct Run {
    search: IterativeSearch<Tid>,
    /// Heap TIDs found and not returned yet, nearest first within a batch.
    results: VecDeque<(f32, Tid)>,
    mode: i32,
    /// No further batch: graph exhausted, or budget spent and drained.
    done: bool,
    /// The budget is spent: batches come from the nodes evaluated.
    draining: bool,
    last_distance: f32,
    max_tuples: usize,
    max_memory: usize,
    /// An index of codes: the rows found, re-ranked by exact distance.
    rerank: Option<(Rerank<Tid>, Exact)>,
    /// The scan (amgettuple's), for the heap fetches of re-ranking.
    scan: pg_sys::IndexScanDesc,
}

am::scan_callbacks!(Run);

/// # Safety
/// `scan` must be a live scan with its order-by keys set.
unsafe fn start(scan: pg_sys::IndexScanDesc) -> Run {
    // SAFETY: per the contract.
    let index = unsafe { (*scan).indexRelation };
    let meta = read_meta(&BufferStore::logged(index));
    // SAFETY: per the contract.
    let query = unsafe {
        am::scan_query(
            scan,
            "hnsw",
            meta.dims as usize,
            meta.metric,
            super::opclass_metric(index).1,
        )
    };
    let ef = EF_SEARCH.get().max(1) as usize;
    // an index of codes searches a wider window (its re-rank measures few
    // of the rows that adds)
    let ef = match meta.storage.is_quantized() {
        true => hnsw::rerank::code_window(ef, meta.bits as u32),
        false => ef,
    };
    // SAFETY: reading a GUC variable on the backend thread.
    let work_mem = unsafe { pg_sys::work_mem } as f64 * 1024.0;
    let mode = ITERATIVE_SCAN.get();
    let store = BufferStore::logged(index);
    let graph = PageGraph::open(&store).unwrap_or_else(|e| am::corrupted_index(index, e));
    let search = IterativeSearch::new(
        &graph
            .codec()
            .query_of(meta.metric, query.as_element())
            .query(),
        ef,
    );
    let rerank = meta.storage.is_quantized().then(|| {
        // SAFETY: per the contract.
        let input = unsafe { super::opclass_metric(index).1 };
        let exact = Exact {
            query: query.clone(),
            metric: meta.metric,
            input,
        };
        (Rerank::default(), exact)
    });
    Run {
        // an iterative scan ends with the elements no link leads to
        search: if mode == ITERATIVE_OFF {
            search
        } else {
            search.sweeping()
        },
        results: VecDeque::new(),
        mode,
        done: false,
        draining: false,
        last_distance: f32::NEG_INFINITY,
        max_tuples: MAX_SCAN_TUPLES.get().max(1) as usize,
        max_memory: (work_mem * SCAN_MEM_MULTIPLIER.get()).min(usize::MAX as f64 / 2.0) as usize,
        rerank,
        scan,
    }
}

impl Run {
    /// Adds the next batch's heap TIDs to `results`.
    fn fetch(&mut self, index: pg_sys::Relation, first: bool) {
        let store = BufferStore::with_prefetch(index);
        let graph = PageGraph::open(&store).unwrap_or_else(|e| am::corrupted_index(index, e));
        if !first && !self.draining {
            self.draining = self.search.evaluated >= self.max_tuples
                || self.search.memory_bytes() > self.max_memory;
        }
        let batch: Vec<Candidate<Tid>> = if self.draining {
            // the budget is spent: what is evaluated goes out a chunk at a
            // time, without further page reads
            self.search.take_evaluated(DRAIN_CHUNK)
        } else {
            // the walk and the final sweep pause every stretch: cancel and
            // statement_timeout act there, and an iterative scan's budget
            // holds there (its memory from the first batch on, its tuples
            // after it, as pgvector counts them)
            let (max_tuples, max_memory) = (self.max_tuples, self.max_memory);
            let iterative = self.mode != ITERATIVE_OFF;
            let mut go_on = |s: &IterativeSearch<Tid>| {
                am::check_for_interrupts();
                !iterative
                    || ((first || s.evaluated < max_tuples) && s.memory_bytes() <= max_memory)
            };
            let found = graph
                .walk(|w| self.search.next_batch_pausing(w, &mut go_on))
                .unwrap_or_else(|e| am::corrupted_index(index, e));
            found.unwrap_or_else(|_| {
                am::out_of_memory(format!(
                    "Failed to grow the hnsw scan's search past {} nodes ({} MB).",
                    self.search.evaluated,
                    self.search.memory_bytes() >> 20
                ))
            })
        };
        if batch.is_empty() || self.mode == ITERATIVE_OFF {
            self.done = true;
        }
        let query = self.search.query();
        for c in batch {
            let (tids, estimate) = graph
                .rows_and_estimate(&query, c.id)
                .unwrap_or_else(|e| am::corrupted_index(index, e));
            match &mut self.rerank {
                Some((rerank, _)) => {
                    let e = estimate.expect("an index of codes estimates with codes");
                    tids.into_iter().for_each(|t| rerank.push_estimate(e, t))
                }
                None => tids
                    .into_iter()
                    .for_each(|t| self.results.push_back((c.distance, t))),
            }
        }
    }
}

impl am::ScanRun for Run {
    unsafe fn start(scan: pg_sys::IndexScanDesc) -> Run {
        // SAFETY: per the contract.
        let (mut run, index) = unsafe { (start(scan), (*scan).indexRelation) };
        run.fetch(index, true);
        run
    }

    fn next(&mut self, index: pg_sys::Relation) -> Option<Tid> {
        loop {
            if let Some((rerank, exact)) = &mut self.rerank {
                if !rerank.is_empty() {
                    // SAFETY: the scan is live during amgettuple; no buffer
                    // lock is held here.
                    let next = unsafe { with_rows(self.scan, exact, |m| rerank.next(m)) };
                    if let Some((tid, d)) = next {
                        self.results.push_back((d, tid));
                    }
                }
            }
            if let Some((distance, tid)) = self.results.pop_front() {
                // re-ranked rows come out in exact order unless a bound
                // failed: that rare row is dropped, not returned late
                let ordered = self.mode == ITERATIVE_STRICT
                    || (self.rerank.is_some() && self.mode == ITERATIVE_OFF);
                if ordered {
                    if distance < self.last_distance {
                        continue;
                    }
                    self.last_distance = distance;
                }
                return Some(tid);
            }
            if self.done {
                return None;
            }
            am::check_for_interrupts();
            self.fetch(index, false);
        }
    }
}
