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
use ivf::scan::{ProbeError, Scan};
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
        match self.scan.probe(store, &self.meta, self.probes.min(left)) {
            Ok(()) => true,
            Err(ProbeError::Corrupt(e)) => am::corrupted_index(store.relation(), e),
            Err(ProbeError::OutOfMemory(_)) => am::out_of_memory(format!(
                "Failed to hold the rows of {} more ivfflat lists (after {} rows).",
                self.probes.min(left),
                self.scan.tuples
            )),
        }
    }
}

impl am::ScanRun for Run {
    unsafe fn start(scan: pg_sys::IndexScanDesc) -> Run {
        // SAFETY: per the contract.
        let store = BufferStore::logged(unsafe { (*scan).indexRelation });
        // SAFETY: per the contract.
        let mut run = unsafe { start(scan, &store) };
        run.probe(&store);
        run
    }

    fn next(&mut self, index: pg_sys::Relation) -> Option<pagestore::Tid> {
        loop {
            if let Some(hit) = self.scan.next_hit() {
                return Some(hit.heap);
            }
            am::check_for_interrupts();
            if !self.probe(&BufferStore::logged(index)) {
                return None;
            }
        }
    }
}
