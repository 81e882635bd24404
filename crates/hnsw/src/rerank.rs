//! Exact re-ranking of what a search over codes found (an index of
//! `Storage::RaBitQ`): rows come out in exact distance order, and only as
//! many are measured exactly as that order needs.
//!
//! Each candidate comes with a lower bound on its distance (the estimate
//! less `RERANK_SLACK` error bounds, `distance::rabitq::Estimate`).
//! Candidates are measured nearest bound first; the nearest measured one
//! is returned once no candidate still unmeasured has a bound below its
//! exact distance. With `LIMIT 10` over four-bit codes a scan measures
//! about a fifth of its window, over one-bit codes most of it; the bounds
//! hold with high probability, not always, so a rare row may come out
//! after one farther than it (which the scan drops).

use crate::search::Candidate;
use distance::rabitq::Estimate;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// How many error bounds below its estimate a candidate's exact distance
/// is taken to lie at most. One bound holds for about 99 estimates in 100
/// (`distance::rabitq`); a row whose exact distance is below the bound
/// taken may come out after one farther than it (the scan then drops it:
/// output stays in exact order, the row is missed as a graph search may
/// miss one). Two bounds make that rarer than the search's own misses at
/// a small extra cost in rows measured (`hnsw::tests::quantized`).
pub const RERANK_SLACK: f32 = 2.0;

/// The search window of an index of codes of `bits` bits a dimension for
/// `hnsw.ef_search = ef`. Estimates rank the rows at the window's edge less
/// surely than exact distances, which costs recall at small windows (at 10:
/// 0.80 over four-bit codes against 0.83 over vectors, 0.64 over one-bit
/// codes, on 100k real rows); the re-rank measures few of the rows a wider
/// window adds, so the window of codes is wider: by 8 rows (at most twice
/// `ef`) at four bits, by `ef` and at least 16 rows at one. Recall at a
/// given ef_search is then about what the full-precision index has
/// (`hnsw::tests::quantized`).
pub fn code_window(ef: usize, bits: u32) -> usize {
    if bits == 1 {
        ef.saturating_add(ef.max(16))
    } else {
        ef.saturating_add(ef.min(8))
    }
}

/// Candidates of one batch and the ones already measured.
pub struct Rerank<T> {
    /// Not yet measured, by lower bound.
    pending: BinaryHeap<Reverse<Candidate<T>>>,
    /// Measured, by exact distance.
    measured: BinaryHeap<Reverse<Candidate<T>>>,
    /// Exact measurements made (rows fetched), for statistics and tests.
    pub fetched: usize,
}

impl<T: Copy + Ord> Default for Rerank<T> {
    fn default() -> Self {
        Rerank {
            pending: BinaryHeap::new(),
            measured: BinaryHeap::new(),
            fetched: 0,
        }
    }
}

impl<T: Copy + Ord> Rerank<T> {
    /// Adds a candidate whose exact distance is at least `lower` (with high
    /// probability).
    pub fn push(&mut self, lower: f32, item: T) {
        self.pending.push(Reverse(Candidate {
            distance: lower,
            id: item,
        }));
    }

    /// Adds a candidate by its estimated distance: its exact distance is
    /// taken to be at least the estimate less `RERANK_SLACK` error bounds.
    pub fn push_estimate(&mut self, e: Estimate, item: T) {
        self.push(e.value - RERANK_SLACK * e.error, item);
    }

    /// Whether every candidate pushed has been returned (or was gone).
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.measured.is_empty()
    }

    /// The nearest candidate by exact distance, and that distance.
    /// `exact(item)` measures one; None drops it (a row no longer
    /// visible). None when every candidate has been returned.
    pub fn next(&mut self, mut exact: impl FnMut(T) -> Option<f32>) -> Option<(T, f32)> {
        loop {
            let bound = self.pending.peek().map(|Reverse(c)| c.distance);
            match (self.measured.peek(), bound) {
                (Some(Reverse(best)), b) if b.is_none_or(|b| best.distance <= b) => {
                    let Reverse(best) = self.measured.pop().expect("peeked");
                    return Some((best.id, best.distance));
                }
                (_, Some(_)) => {
                    let Reverse(c) = self.pending.pop().expect("peeked");
                    self.fetched += 1;
                    if let Some(d) = exact(c.id) {
                        self.measured.push(Reverse(Candidate {
                            distance: d,
                            id: c.id,
                        }));
                    }
                }
                (None, None) => return None,
                (Some(_), None) => {
                    unreachable!("a measured candidate with nothing pending returns")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::Rng;

    /// Bounds that hold: the output is the exact order, and a candidate is
    /// measured only when its bound is below the k-th exact distance
    /// returned.
    #[test]
    fn returns_exact_order_measuring_what_it_must() {
        let mut rng = Rng::new(5);
        for round in 0..50 {
            let n = 1 + round * 7;
            let exact: Vec<f32> = (0..n).map(|_| rng.unit() * 10.0).collect();
            let slack: Vec<f32> = (0..n).map(|_| rng.unit() * 3.0).collect();
            let mut r = Rerank::default();
            for i in 0..n {
                r.push(exact[i] - slack[i], i);
            }
            let mut sorted = exact.clone();
            sorted.sort_by(f32::total_cmp);
            let mut measured = vec![false; n];
            for (k, want) in sorted.iter().enumerate().take(10) {
                let (i, d) = r
                    .next(|i| {
                        measured[i] = true;
                        Some(exact[i])
                    })
                    .unwrap();
                assert_eq!(d, *want, "round {round}: {k}th row");
                assert_eq!(exact[i], d);
                // nothing measured whose bound lies past what was returned
                for j in 0..n {
                    assert!(
                        !measured[j] || exact[j] - slack[j] <= d,
                        "round {round}: measured {j} too early"
                    );
                }
            }
            let rest = std::iter::from_fn(|| r.next(|i| Some(exact[i]))).count();
            assert_eq!(rest, n - n.min(10));
            assert!(r.is_empty());
        }
    }

    #[test]
    fn gone_rows_are_dropped_and_duplicate_distances_all_come_out() {
        let mut r = Rerank::default();
        for i in 0..6u32 {
            r.push(0.0, i);
        }
        let out: Vec<(u32, f32)> =
            std::iter::from_fn(|| r.next(|i| (i % 3 != 0).then_some(1.0))).collect();
        assert_eq!(out, [(1, 1.0), (2, 1.0), (4, 1.0), (5, 1.0)]);
        assert_eq!(r.fetched, 6);
        assert!(r.next(|_| Some(0.0)).is_none());
    }
}
