//! VACUUM: `ambulkdelete` removes dead heap TIDs and repairs the links
//! around elements that lost all of theirs (see `hnsw::vacuum`); every page
//! change goes through the logged `BufferStore`. Scans and inserts may run
//! meanwhile: each page change is atomic, and an element freed for reuse
//! stays a valid element of its level whatever a concurrent scan or insert
//! still holds of it (`hnsw::reuse` says why that is safe).

use crate::am;
use crate::storage::BufferStore;
use pgrx::pg_sys;

am::ambulkdelete!(|index, store, is_dead, pass| {
    // the pure crate holds no page while it waits
    // SAFETY: the index is open, no buffer lock held (bulk_delete's contract).
    let wait = || unsafe { am::wait_for_inserts(index, || ()) };
    let budget = am::vacuum_work_mem_bytes();
    let result = hnsw::vacuum::bulk_delete_within(store, is_dead, budget, am::vacuum_pause, wait);
    let v = result.unwrap_or_else(|e| am::corrupted_index(index, e));
    if let Some(needs) = v.reach_needs {
        am::reach_over_budget(index, needs);
    }
    pass.record(
        index,
        |now| v.record(now),
        |r, later| hnsw::vacuum::record_vacuum(store, r, later),
    );
    (v.heap_tids_removed, v.live_heap_tids)
});

am::amvacuumcleanup!(cleanup);

/// After a VACUUM that deleted nothing (no dead rows): nothing to do, and
/// no page read (an insert-only table's autovacuum used to walk the whole
/// graph here for the few elements inserts may leave unreachable; inserts
/// now adopt the links they evict, the next VACUUM that removes rows relinks
/// what is left, and `vector_ext_index_repair` does it on demand). True:
/// report the index's statistics.
///
/// # Safety
/// Nothing to uphold (`amvacuumcleanup!` calls it unsafely).
unsafe fn cleanup(_index: pg_sys::Relation, _store: &BufferStore) -> bool {
    true
}
