//! Planner costs, shaped as pgvector's: the index serves only
//! `ORDER BY col <op> $1` (infinite cost otherwise, so the planner never
//! picks it for what it cannot do); a scan reads the list pages and the
//! `probes` nearest of `lists` lists before its first row, mostly
//! sequentially (a list's pages are chained in order).

use super::{read_meta, PROBES};
use crate::am;
use crate::storage::BufferStore;
use pgrx::pg_sys;

/// Part of the page reads that are sequential rather than random.
const SEQUENTIAL_RATIO: f64 = 0.5;

am::amcostestimate!(estimate);

/// # Safety
/// amcostestimate's arguments.
unsafe fn estimate(out: &am::Costs) {
    let path = out.path;
    // SAFETY: per the contract.
    unsafe {
        let lists = |i| read_meta(&BufferStore::logged(i)).lists;
        let Some((mut costs, lists)) = out.ordered(lists) else {
            return;
        };
        let info = (*path).indexinfo;
        let ratio = (PROBES.get() as f64 / lists as f64).min(1.0);
        let mut seq_page_cost = 0.0;
        pg_sys::get_tablespace_page_costs(
            (*info).reltablespace,
            std::ptr::null_mut(),
            &mut seq_page_cost,
        );
        let random_extra = costs.spc_random_page_cost - seq_page_cost;
        costs.indexTotalCost -= SEQUENTIAL_RATIO * costs.numIndexPages * random_extra;
        let mut startup = costs.indexTotalCost * ratio;
        // The heap's own seq scan cost leaves TOAST out: do not let the
        // index look dearer than it just because its pages are counted.
        let startup_pages = costs.numIndexPages * ratio;
        let heap_pages = (*(*info).rel).pages as f64;
        if startup_pages > heap_pages && ratio < 0.5 {
            startup -= (1.0 - SEQUENTIAL_RATIO) * startup_pages * random_extra;
            startup -= (startup_pages - heap_pages) * seq_page_cost;
        }
        out.set(&costs, startup, costs.indexTotalCost);
    }
}
