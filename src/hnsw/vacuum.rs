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

am::ambulkdelete!(|index, store, is_dead| {
    // the pure crate holds no page while it waits
    // SAFETY: the index is open, no buffer lock held (bulk_delete's contract).
    let wait = || unsafe { super::wait_for_inserts(index) };
    let result = hnsw::vacuum::bulk_delete_waiting(store, is_dead, am::vacuum_pause, wait);
    let v = result.unwrap_or_else(|e| am::corrupted_index(index, e));
    (v.heap_tids_removed, v.live_heap_tids)
});

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
