//! What index scans share: the scan descriptor and its state, the query
//! vector from the order-by key, returning rows, statistics.

use super::datum::with_vector;
use super::{error, pointer_from_tid};
use distance::ElementBuf;
use distance::{Metric, Storage};
use pagestore::Tid;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use std::ffi::c_void;

/// Counts one index scan in pg_stat_user_indexes (pgstat_count_index_scan).
///
/// # Safety
/// `rel` must be a valid, open index relation.
pub unsafe fn count_index_scan(rel: pg_sys::Relation) {
    // SAFETY: this is the pgstat_should_count_relation macro: associate
    // the relation with its stats entry on first use, then count.
    unsafe {
        if !(*rel).pgstat_enabled {
            return;
        }
        if (*rel).pgstat_info.is_null() {
            pg_sys::pgstat_assoc_relation(rel);
        }
        if !(*rel).pgstat_info.is_null() {
            crate::pg_compat::count_scan((*rel).pgstat_info);
        }
    }
}

/// ambeginscan: a scan descriptor whose opaque state is `state`, tied to
/// the current (executor) memory context, so it is freed even when the
/// query errors before amendscan.
///
/// # Safety
/// The arguments must be ambeginscan's.
pub unsafe fn begin_scan<S: 'static>(
    index: pg_sys::Relation,
    nkeys: i32,
    norderbys: i32,
    state: S,
) -> pg_sys::IndexScanDesc {
    // SAFETY: RelationGetIndexScan allocates the descriptor.
    unsafe {
        let scan = pg_sys::RelationGetIndexScan(index, nkeys, norderbys);
        let state = pgrx::PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(state);
        (*scan).opaque = state as *mut c_void;
        scan
    }
}

/// The opaque state `begin_scan` stored.
///
/// # Safety
/// `scan` must come from `begin_scan` with a state of type `S`.
pub unsafe fn scan_state<'a, S>(scan: pg_sys::IndexScanDesc) -> &'a mut S {
    // SAFETY: per the contract.
    unsafe { &mut *((*scan).opaque as *mut S) }
}

/// amrescan's copy of the new scan keys into the descriptor.
///
/// # Safety
/// The arguments must be amrescan's.
pub unsafe fn set_scan_keys(
    scan: pg_sys::IndexScanDesc,
    keys: pg_sys::ScanKey,
    nkeys: i32,
    orderbys: pg_sys::ScanKey,
    norderbys: i32,
) {
    // SAFETY: the key arrays hold as many entries as the descriptor was
    // created with.
    unsafe {
        if !keys.is_null() && nkeys > 0 {
            std::ptr::copy(keys, (*scan).keyData, nkeys as usize);
        }
        if !orderbys.is_null() && norderbys > 0 {
            std::ptr::copy(orderbys, (*scan).orderByData, norderbys as usize);
        }
    }
}

/// The first amgettuple of a scan: counts it, checks that it orders (our
/// indexes serve nothing else) under an MVCC snapshot, and returns the
/// query vector in the metric's stored form, `dims` long. A NULL query
/// orders nothing (all zeros: rows come in no particular order, as in
/// pgvector); a zero query under cosine stays zero.
///
/// # Safety
/// `scan` must be a live scan of ours with its order-by keys set.
pub unsafe fn scan_query(
    scan: pg_sys::IndexScanDesc,
    am_name: &str,
    dims: usize,
    metric: Metric,
    storage: Storage,
) -> ElementBuf {
    // SAFETY: per the contract.
    let key = unsafe {
        count_index_scan((*scan).indexRelation);
        crate::pg_compat::count_search(scan);
        if (*scan).numberOfOrderBys == 0 || (*scan).orderByData.is_null() {
            pgrx::error!("cannot scan {am_name} index without order");
        }
        let snapshot = (*scan).xs_snapshot;
        if snapshot.is_null()
            || !matches!(
                (*snapshot).snapshot_type,
                pg_sys::SnapshotType::SNAPSHOT_MVCC | pg_sys::SnapshotType::SNAPSHOT_HISTORIC_MVCC
            )
        {
            error(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!("non-MVCC snapshots are not supported with {am_name}"),
                None,
            );
        }
        &*(*scan).orderByData
    };
    if key.sk_flags & pg_sys::SK_ISNULL as i32 != 0 {
        // rows come back in some order (the executor sorts NULL last anyway)
        return match storage {
            Storage::Sparse => ElementBuf::Sparse {
                dim: dims as u32,
                indices: Vec::new(),
                values: Vec::new(),
            },
            Storage::Bits => ElementBuf::Bits(vec![0; 4 * dims]),
            Storage::F32 | Storage::F16 | Storage::RaBitQ => ElementBuf::F32(vec![0.0; dims]),
        };
    }
    if storage == Storage::Bits {
        // bit strings must be as long as the column's, not just as many words
        let (bits, _) = crate::types::bit::varbit(key.sk_argument);
        // SAFETY: a live scan's index has its tuple descriptor.
        let want =
            unsafe { crate::pg_compat::attribute((*(*scan).indexRelation).rd_att, 0).atttypmod };
        if want >= 0 && bits != want as u32 {
            crate::error::raise(vecfmt::VectorError::DifferentBitLengths {
                a: want as u32,
                b: bits,
            });
        }
    }
    // SAFETY: a non-null order-by argument of the opclass's right type.
    unsafe {
        with_vector(key.sk_argument, storage, |v| {
            let got = v.dims();
            if got != dims {
                crate::error::raise(vecfmt::VectorError::DifferentDimensions {
                    type_name: match storage {
                        Storage::F32 | Storage::Bits | Storage::RaBitQ => "vector",
                        Storage::F16 => "halfvec",
                        Storage::Sparse => "sparsevec",
                    },
                    a: dims as i64,
                    b: got as i64,
                });
            }
            // a zero vector under cosine orders nothing: any order will do
            metric.prepare(v).unwrap_or_else(|| v.to_buf())
        })
    }
}

/// Sets the row amgettuple returns.
///
/// # Safety
/// `scan` must be a live scan.
pub unsafe fn return_heap_tid(scan: pg_sys::IndexScanDesc, tid: Tid) {
    // SAFETY: per the contract; these are the fields amgettuple sets.
    unsafe {
        (*scan).xs_heaptid = pointer_from_tid(tid);
        (*scan).xs_recheck = false;
        (*scan).xs_recheckorderby = false;
    }
}

/// What an access method's scan does between two `amrescan`s.
pub trait ScanRun: Sized {
    /// Starts the scan (amrescan has set its order-by keys) and reads its
    /// first batch.
    ///
    /// # Safety
    /// `scan` must be a live scan of the access method.
    unsafe fn start(scan: pg_sys::IndexScanDesc) -> Self;

    /// The next heap TID in order, None at the end; checks for interrupts
    /// before reading more of `index`.
    fn next(&mut self, index: pg_sys::Relation) -> Option<Tid>;
}
