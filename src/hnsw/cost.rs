//! Planner costs. The index serves only `ORDER BY col <op> $1`: without an
//! order-by it costs infinity so the planner never picks it for what it
//! cannot do. With one, a search reads a small part of the index before
//! the first row (what LIMIT k pays), estimated from the graph's shape.

use super::{index_options, EF_SEARCH};
use crate::am;
use pgrx::pg_sys;

/// The share of the index one search reads: greedy descent through about
/// log_m(N) upper levels of m links, then on level 0 about ef_search
/// expanded nodes whose 2m neighbours are mostly new (half, by the
/// measured visited/evaluated ratio of our graphs).
fn search_fraction(tuples: f64, m: f64, ef_search: f64) -> f64 {
    if tuples <= 1.0 {
        return 1.0;
    }
    let levels = tuples.ln() / m.ln();
    let evaluated = levels * m + ef_search * m;
    (evaluated / tuples).min(1.0)
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amcostestimate(
    root: *mut pg_sys::PlannerInfo,
    path: *mut pg_sys::IndexPath,
    loop_count: f64,
    startup_cost: *mut pg_sys::Cost,
    total_cost: *mut pg_sys::Cost,
    selectivity: *mut pg_sys::Selectivity,
    correlation: *mut f64,
    pages: *mut f64,
) {
    // SAFETY: the planner passes a valid path and output pointers.
    unsafe {
        let out = am::Costs {
            startup: startup_cost,
            total: total_cost,
            selectivity,
            correlation,
            pages,
        };
        let Some((costs, (m, _))) = out.ordered(root, path, loop_count, |i| index_options(i))
        else {
            return;
        };
        let info = (*path).indexinfo;
        let fraction = search_fraction((*info).tuples, m as f64, EF_SEARCH.get() as f64);
        out.set(
            &costs,
            costs.indexTotalCost * fraction,
            costs.indexTotalCost,
        );
    }
}
