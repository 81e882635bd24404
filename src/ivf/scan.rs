//! Index scans: `ORDER BY col <op> $1`, nearest first.
//!
//! The lists are ranked by their center's distance to the query; the
//! `ivfflat.probes` nearest are read and their rows handed out nearest
//! first. With ivfflat.iterative_scan = relaxed_order, when those run out
//! before the executor stops asking (a filter rejected them), the next
//! `probes` lists are read, up to ivfflat.max_probes lists; rows of a later
//! batch may be nearer than rows already returned (relaxed order), as in
//! pgvector.

use super::{read_meta, ITERATIVE_OFF, ITERATIVE_SCAN, MAX_PROBES, PROBES};
use crate::am;
use crate::storage::BufferStore;
use distance::Query;
use ivf::format::Meta;
use ivf::scan::Scan;
use pgrx::pg_sys;

/// One execution of the scan (between amrescan calls).
struct Run {
    scan: Scan,
    meta: Meta,
    probes: usize,
    max_probes: usize,
}

am::scan_callbacks!(Run);

/// # Safety
/// `scan` must be a live scan with its order-by keys set.
unsafe fn start(scan: pg_sys::IndexScanDesc, store: &BufferStore) -> Run {
    let meta = read_meta(store);
    // SAFETY: per the contract.
    let query = unsafe {
        am::scan_query(
            scan,
            "ivfflat",
            meta.dims as usize,
            meta.metric,
            meta.storage,
        )
    };
    let lists = meta.lists as usize;
    let probes = PROBES.get().max(1) as usize;
    let max_probes = if ITERATIVE_SCAN.get() == ITERATIVE_OFF {
        probes
    } else {
        (MAX_PROBES.get().max(1) as usize).max(probes)
    };
    let scan = Scan::new(store, &meta, &Query::new(meta.metric, query.as_element()))
        .unwrap_or_else(|e| am::corrupted_index(store.relation(), e));
    Run {
        scan,
        meta,
        probes: probes.min(lists),
        max_probes: max_probes.min(lists),
    }
}

impl Run {
    /// Reads the next batch of lists; false when there is none.
    fn probe(&mut self, store: &BufferStore) -> bool {
        let left = self.max_probes.saturating_sub(self.scan.probed());
        if left == 0 {
            return false;
        }
        self.scan
            .probe(store, &self.meta, self.probes.min(left))
            .unwrap_or_else(|e| am::corrupted_index(store.relation(), e));
        true
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amgettuple(
    scan: pg_sys::IndexScanDesc,
    _direction: pg_sys::ScanDirection::Type,
) -> bool {
    // SAFETY: scan is ours and live for this call.
    let so = unsafe { state(scan) };
    // SAFETY: as above.
    let index = unsafe { (*scan).indexRelation };
    if so.run.is_none() {
        let store = BufferStore::logged(index);
        // SAFETY: amrescan has set the order-by keys.
        let mut run = unsafe { start(scan, &store) };
        run.probe(&store);
        so.run = Some(run);
    }
    let run = so.run.as_mut().expect("started");
    loop {
        if let Some(hit) = run.scan.next_hit() {
            // SAFETY: scan is live.
            unsafe { am::return_heap_tid(scan, hit.heap) };
            return true;
        }
        am::check_for_interrupts();
        let store = BufferStore::logged(index);
        if !run.probe(&store) {
            return false;
        }
    }
}
