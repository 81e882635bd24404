//! Planner costs. The index serves only `ORDER BY col <op> $1`: without an
//! order-by it costs infinity so the planner never picks it for what it
//! cannot do. With one, a search reads a small part of the index before
//! the first row (what LIMIT k pays):
//! - it evaluates about `levels * m + ef_search * m` elements (all of them
//!   in a small index), each an index tuple and a distance priced by the
//!   vectors' dimensions as the distance operator is in a sequential scan
//!   (`crate::planner`);
//! - their pages: the distinct pages that many random reads touch
//!   (`index_pages_fetched`) at random_page_cost, but never more than
//!   reading the table's pages in order, for when a search touches most of
//!   a small index (which is then as cached as the table; pgvector makes
//!   the same adjustment).
//!
//! The total (a scan that goes on through every element, as an iterative
//! scan under a selective filter may) is the same for all elements: the
//! planner charges `LIMIT k` the share of it that k rows take at the
//! filter's selectivity, so a filter that keeps a handful of rows sorts
//! them after a sequential scan instead.
//!
//! Measured against both plans' times (`bash bench/run.sh planner`,
//! bench/README.md): the plan chosen is the faster or within noise of it
//! from 1,000 rows of 3 dimensions to 1,000,000, and 500 to 20,000 rows of
//! 1,536 or 2,000, where the old estimate sorted tables of up to 2,000
//! rows of 384 dimensions and 5,000 of 2,000 that the index served 1.5x to
//! 5x faster.

use super::{index_options, opclass_metric, EF_SEARCH};
use crate::am;
use crate::planner::distance_cost;
use pgrx::pg_sys;

/// Elements one search evaluates: greedy descent through about log_m(N)
/// upper levels of m links, then on level 0 about ef_search expanded
/// elements whose 2m neighbours are mostly new (half, by the measured
/// visited/evaluated ratio of our graphs); at most every element.
fn evaluated(tuples: f64, m: f64, ef_search: f64) -> f64 {
    if tuples <= 1.0 {
        return tuples.max(1.0);
    }
    let levels = tuples.ln() / m.ln();
    (levels * m + ef_search * m).min(tuples)
}

/// A sparse vector's distance: its cost follows the non-zeros, which no
/// type modifier tells; priced as 54 dimensions' (a few dozen non-zeros).
const SPARSE_DISTANCE_OPERATORS: f64 = 4.0;

am::amcostestimate!(estimate);

/// # Safety
/// amcostestimate's arguments; the index is open (`Costs::ordered`) while
/// the closure reads it.
unsafe fn estimate(out: &am::Costs) {
    let (root, path) = (out.root, out.path);
    // SAFETY: per the contract.
    unsafe {
        let read = |i: pg_sys::Relation| {
            let (m, _) = index_options(i);
            let (_, storage) = opclass_metric(i);
            let typmod = crate::pg_compat::attribute((*i).rd_att, 0).atttypmod;
            let distance = match storage {
                hnsw::Storage::Sparse => None,
                hnsw::Storage::Bits => distance_cost(typmod, true),
                hnsw::Storage::F32 | hnsw::Storage::F16 | hnsw::Storage::RaBitQ => {
                    distance_cost(typmod, false)
                }
            };
            (m, distance)
        };
        let Some((costs, (m, distance))) = out.ordered(read) else {
            return;
        };
        let distance = distance.unwrap_or(pg_sys::cpu_operator_cost * SPARSE_DISTANCE_OPERATORS);
        let info = (*path).indexinfo;
        let tuples = (*info).tuples.max(1.0);
        let evaluated = evaluated(tuples, m as f64, EF_SEARCH.get() as f64);
        let mut seq_page_cost = 0.0;
        pg_sys::get_tablespace_page_costs(
            (*info).reltablespace,
            std::ptr::null_mut(),
            &mut seq_page_cost,
        );
        let heap_pages = ((*(*info).rel).pages as f64).max(1.0);
        let per_element = pg_sys::cpu_index_tuple_cost + distance;
        // what reading `n` elements costs
        let cost = |n: f64| {
            let fetched = pg_sys::index_pages_fetched(n, (*info).pages, 0.0, root);
            let pages = (fetched * costs.spc_random_page_cost).min(heap_pages * seq_page_cost);
            pages + n * per_element
        };
        let startup = cost(evaluated);
        // every element, for a scan that goes on (an iterative scan under a
        // selective filter; the planner charges LIMIT k the share of it
        // that k rows take at the filter's selectivity)
        let total = cost(tuples).max(startup);
        out.set(&costs, startup, total);
    }
}
