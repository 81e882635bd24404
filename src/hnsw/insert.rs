//! INSERT: one row into the graph on pages (`hnsw::insert`), under the
//! insert lock VACUUM waits on (`am::with_insert_lock`).

use super::{check_value, read_meta, LEVEL_SEED};
use crate::am;
use crate::storage::BufferStore;
use pagestore::Tid;
use pgrx::pg_sys;

am::aminsert!(insert);

/// Inserts a non-null value of the indexed column.
///
/// # Safety
/// `value` is a non-null datum of the indexed column, of the type the
/// index stores (vector for f32, halfvec for binary16, ...).
unsafe fn insert(index: pg_sys::Relation, value: pg_sys::Datum, tid: Tid) {
    let store = BufferStore::with_prefetch(index);
    let meta = read_meta(&store);
    // SAFETY: per the contract. The value is detoasted before the insert
    // lock is taken (an UPDATE of another column passes the row's TOAST
    // pointer): no TOAST read while VACUUM may wait on the lock.
    unsafe {
        let value = pg_sys::Datum::from(pg_sys::pg_detoast_datum(value.cast_mut_ptr()));
        // the column's type (its opclass's), whatever the pages store
        let input = super::opclass_metric(index).1;
        am::with_insert_lock(index, || {
            am::with_vector(value, input, |v| {
                check_value(v, meta.dims as usize, meta.storage);
                if let Err(e) = hnsw::insert::insert(&store, v, tid, LEVEL_SEED) {
                    am::corrupted_index(index, e);
                }
            })
        });
    }
}
