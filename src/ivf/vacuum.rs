//! VACUUM: `ambulkdelete` drops the items of dead heap rows page by page
//! and points each list's insert hint back at its first page with room
//! (see `ivf::vacuum`); every page change goes through the logged
//! `BufferStore`, one atomic write per page, so scans and inserts may run
//! meanwhile. It also gives the pages a crash left outside every list to
//! the lists, once no insert that started before it runs.

use super::read_meta;
use crate::am;
use crate::storage::BufferStore;
use pagestore::PageStore;
use pgrx::pg_sys;

am::ambulkdelete!(|index, store, is_dead, pass| {
    let meta = read_meta(store);
    // the index's size while no insert runs (the pure crate holds no page
    // when it calls this)
    // SAFETY: the index is open, no buffer lock held.
    let quiesce = || unsafe { am::wait_for_inserts(index, || store.nblocks()) };
    let v = ivf::vacuum::bulk_delete_reclaiming(store, &meta, is_dead, am::vacuum_pause, quiesce)
        .unwrap_or_else(|e| am::corrupted_index(index, e));
    pass.record(
        index,
        |now| v.record(now),
        |r, later| ivf::vacuum::record_vacuum(store, r, later),
    );
    if v.pages_reclaimed > 0 {
        pgrx::debug1!(
            "ivfflat vacuum: {} pages no list held reclaimed",
            v.pages_reclaimed
        );
    }
    (v.removed, v.remaining)
});

am::amvacuumcleanup!(cleanup);

/// After a VACUUM that deleted nothing: the index did not change, and no
/// statistics tell VACUUM to leave its own alone.
///
/// # Safety
/// Nothing to uphold (`amvacuumcleanup!` calls it unsafely).
unsafe fn cleanup(_index: pg_sys::Relation, _store: &BufferStore) -> bool {
    false
}
