//! VACUUM: `ambulkdelete` drops the items of dead heap rows page by page
//! and points each list's insert hint back at its first page with room
//! (see `ivf::vacuum`); every page change goes through the logged
//! `BufferStore`, one atomic write per page, so scans and inserts may run
//! meanwhile.

use super::read_meta;
use crate::am;
use crate::storage::BufferStore;
use pgrx::pg_sys;

am::ambulkdelete!(|index, store, is_dead| {
    let meta = read_meta(store);
    let v = ivf::vacuum::bulk_delete(store, &meta, is_dead, am::vacuum_pause)
        .unwrap_or_else(|e| am::corrupted_index(index, e));
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
