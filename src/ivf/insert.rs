//! INSERT: one row into the list whose center is nearest (`ivf::insert`),
//! under the insert lock VACUUM waits on (`am::with_insert_lock`) before it
//! reclaims pages no list holds (`ivf::vacuum`).

use super::read_meta;
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
    let store = BufferStore::logged(index);
    let meta = read_meta(&store);
    // SAFETY: per the contract; detoasted before the lock is taken, as
    // hnsw's insert does.
    unsafe {
        let value = pg_sys::Datum::from(pg_sys::pg_detoast_datum(value.cast_mut_ptr()));
        am::with_insert_lock(index, || {
            am::with_vector(value, meta.storage, |v| {
                am::expect_dims(v, meta.dims as usize);
                if let Err(e) = ivf::insert::insert(&store, &meta, None, v, tid) {
                    am::corrupted_index(index, e);
                }
            })
        })
    };
}
