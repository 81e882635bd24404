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
        let meta = read_meta(&store);
        let is_dead = |t: pagestore::Tid| {
            let mut p = am::pointer_from_tid(t);
            callback(&mut p, callback_state)
        };
        let v = ivf::vacuum::bulk_delete(&store, &meta, is_dead, am::vacuum_pause)
            .unwrap_or_else(|e| am::corrupted_index(index, e));
        (*stats).tuples_removed += v.removed as f64;
        (*stats).num_index_tuples = v.remaining as f64;
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
