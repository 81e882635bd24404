//! VACUUM: `ambulkdelete` removes dead heap TIDs and repairs the links
//! around elements that lost all of theirs (see `hnsw::vacuum`); every page
//! change goes through the logged `BufferStore`. Scans and inserts may run
//! meanwhile: each page change is atomic, and an element freed for reuse
//! stays a valid element of its level whatever a concurrent scan or insert
//! still holds of it (`hnsw::reuse` says why that is safe).

use crate::am;
use crate::storage::BufferStore;
use pagestore::PageStore;
use pgrx::pg_sys;
use std::ffi::c_void;

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambulkdelete(
    info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
    callback: pg_sys::IndexBulkDeleteCallback,
    callback_state: *mut c_void,
) -> *mut pg_sys::IndexBulkDeleteResult {
    // SAFETY: Postgres passes valid vacuum info and either NULL or the
    // stats of an earlier pass; the callback takes a heap TID and its state.
    unsafe {
        let index = (*info).index;
        let stats = am::bulk_delete_stats(stats);
        let Some(callback) = callback else {
            return stats;
        };
        let store = BufferStore::logged(index);
        let is_dead = |t: pagestore::Tid| {
            let mut p = am::pointer_from_tid(t);
            callback(&mut p, callback_state)
        };
        // the pure crate holds no page while it waits
        let wait = || super::wait_for_inserts(index);
        let result = hnsw::vacuum::bulk_delete_waiting(&store, is_dead, am::vacuum_pause, wait);
        let v = result.unwrap_or_else(|e| am::corrupted_index(index, e));
        (*stats).tuples_removed += v.heap_tids_removed as f64;
        (*stats).num_index_tuples = v.live_heap_tids as f64;
        (*stats).estimated_count = false;
        (*stats).num_pages = store.nblocks();
        stats
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amvacuumcleanup(
    info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    // SAFETY: as in ambulkdelete. NULL stats means ambulkdelete did not run
    // (no dead rows): the pass that links back elements no search can reach
    // runs here then, so that insert-only tables get it from autovacuum too.
    unsafe {
        if (*info).analyze_only {
            return stats;
        }
        let index = (*info).index;
        let store = BufferStore::logged(index);
        let stats = if stats.is_null() {
            hnsw::reach::repair_reachability(&store, am::vacuum_pause)
                .unwrap_or_else(|e| am::corrupted_index(index, e));
            let stats = pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexBulkDeleteResult>())
                as *mut pg_sys::IndexBulkDeleteResult;
            (*stats).num_index_tuples = (*info).num_heap_tuples;
            (*stats).estimated_count = (*info).estimated_count;
            stats
        } else {
            stats
        };
        (*stats).num_pages = store.nblocks();
        stats
    }
}
