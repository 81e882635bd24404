//! VACUUM: `ambulkdelete` removes dead heap TIDs and repairs the links
//! around elements that lost all of theirs (see `hnsw::vacuum`); every page
//! change goes through the logged `BufferStore`. Scans and inserts may run
//! meanwhile: each page change is atomic, and an element freed for reuse
//! stays a valid element of its level whatever a concurrent scan or insert
//! still holds of it (`hnsw::reuse` says why that is safe).

use crate::am;
use crate::storage::BufferStore;
use pgrx::pg_sys;

am::ambulkdelete!(|index, store, is_dead| {
    // the pure crate holds no page while it waits
    // SAFETY: the index is open, no buffer lock held (bulk_delete's contract).
    let wait = || unsafe { super::wait_for_inserts(index) };
    let result = hnsw::vacuum::bulk_delete_waiting(store, is_dead, am::vacuum_pause, wait);
    let v = result.unwrap_or_else(|e| am::corrupted_index(index, e));
    (v.heap_tids_removed, v.live_heap_tids)
});

am::amvacuumcleanup!(cleanup);

/// After a VACUUM that deleted nothing (no dead rows): the pass that links
/// back elements no search can reach, so that insert-only tables get it
/// from autovacuum too. True: report the index's statistics.
///
/// # Safety
/// The index VACUUM works on, open; no buffer lock held.
unsafe fn cleanup(index: pg_sys::Relation, store: &BufferStore) -> bool {
    hnsw::reach::repair_reachability(store, am::vacuum_pause)
        .unwrap_or_else(|e| am::corrupted_index(index, e));
    true
}
