//! VACUUM: `ambulkdelete` drops the items of dead heap rows page by page
//! and points each list's insert hint back at its first page with room
//! (see `ivf::vacuum`); every page change goes through the logged
//! `BufferStore`, one atomic write per page, so scans and inserts may run
//! meanwhile.

use super::read_meta;
use crate::am;
use crate::storage::BufferStore;
use pagestore::PageStore;
use pgrx::pg_sys;

am::ambulkdelete!(|index, store, is_dead| {
    let meta = read_meta(store);
    let v = ivf::vacuum::bulk_delete(store, &meta, is_dead, am::vacuum_pause)
        .unwrap_or_else(|e| am::corrupted_index(index, e));
    (v.removed, v.remaining)
});

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amvacuumcleanup(
    info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    // SAFETY: as in ambulkdelete. NULL stats means ambulkdelete did not run
    // (nothing was deleted): the index did not change, and NULL tells
    // VACUUM to leave its statistics alone.
    unsafe {
        if (*info).analyze_only || stats.is_null() {
            return stats;
        }
        (*stats).num_pages = BufferStore::logged((*info).index).nblocks();
        stats
    }
}
