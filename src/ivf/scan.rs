//! Index scans: `ORDER BY col <op> $1`, nearest first.
//!
//! The lists are ranked by their center's distance to the query; the
//! `ivfflat.probes` nearest are read and their rows handed out nearest
//! first. With ivfflat.iterative_scan = relaxed_order, when those run out
//! before the executor stops asking (a filter rejected them), the next
//! `probes` lists are read, up to ivfflat.max_probes lists; rows of a later
//! batch may be nearer than rows already returned (relaxed order), as in
//! pgvector.

use super::{read_meta, ITERATIVE_OFF, ITERATIVE_SCAN, MAX_PROBES, PROBES};
use crate::am;
use crate::storage::BufferStore;
use crate::types::varlena::VectorRef;
use ivf::pages::Meta;
use ivf::scan::Scan;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::PgMemoryContexts;

struct ScanState {
    run: Option<Run>,
}

/// One execution of the scan (between amrescan calls).
struct Run {
    scan: Scan,
    meta: Meta,
    probes: usize,
    max_probes: usize,
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambeginscan(
    index: pg_sys::Relation,
    nkeys: i32,
    norderbys: i32,
) -> pg_sys::IndexScanDesc {
    // SAFETY: RelationGetIndexScan allocates the descriptor; the state is
    // tied to the current (executor) memory context, so it is freed even
    // when the query errors before amendscan.
    unsafe {
        let scan = pg_sys::RelationGetIndexScan(index, nkeys, norderbys);
        let state =
            PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(ScanState { run: None });
        (*scan).opaque = state as *mut std::ffi::c_void;
        scan
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amrescan(
    scan: pg_sys::IndexScanDesc,
    keys: pg_sys::ScanKey,
    nkeys: i32,
    orderbys: pg_sys::ScanKey,
    norderbys: i32,
) {
    // SAFETY: scan is ours (ambeginscan); the key arrays hold as many
    // entries as the descriptor was created with.
    unsafe {
        state(scan).run = None;
        if !keys.is_null() && nkeys > 0 {
            std::ptr::copy(keys, (*scan).keyData, nkeys as usize);
        }
        if !orderbys.is_null() && norderbys > 0 {
            std::ptr::copy(orderbys, (*scan).orderByData, norderbys as usize);
        }
    }
}

/// # Safety
/// `scan` must be a scan begun by `ambeginscan`.
unsafe fn state<'a>(scan: pg_sys::IndexScanDesc) -> &'a mut ScanState {
    // SAFETY: opaque is the ScanState ambeginscan stored.
    unsafe { &mut *((*scan).opaque as *mut ScanState) }
}

/// # Safety
/// `scan` must be a live scan with its order-by keys set.
unsafe fn start(scan: pg_sys::IndexScanDesc, store: &BufferStore) -> Run {
    // SAFETY: per the contract.
    let key = unsafe {
        am::count_index_scan((*scan).indexRelation);
        if (*scan).numberOfOrderBys == 0 || (*scan).orderByData.is_null() {
            pgrx::error!("cannot scan ivfflat index without order");
        }
        let snapshot = (*scan).xs_snapshot;
        if snapshot.is_null()
            || !matches!(
                (*snapshot).snapshot_type,
                pg_sys::SnapshotType::SNAPSHOT_MVCC | pg_sys::SnapshotType::SNAPSHOT_HISTORIC_MVCC
            )
        {
            am::error(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "non-MVCC snapshots are not supported with ivfflat".into(),
                None,
            );
        }
        &*(*scan).orderByData
    };
    let meta = read_meta(store);
    let dims = meta.dims as usize;
    // A NULL query orders nothing: every distance is the same and the scan
    // returns rows in no particular order, as pgvector does.
    let query = if key.sk_flags & pg_sys::SK_ISNULL as i32 != 0 {
        vec![0.0; dims]
    } else {
        // SAFETY: a non-null order-by argument of the opclass's right type.
        let v = unsafe { VectorRef::from_datum(key.sk_argument) };
        if v.dim() != dims {
            crate::error::raise(vecfmt::VectorError::DifferentDimensions {
                a: dims as i64,
                b: v.dim() as i64,
            });
        }
        // A zero query under cosine cannot be normalised: all distances tie.
        meta.metric
            .prepare(v.as_slice())
            .unwrap_or_else(|| v.as_slice().to_vec())
    };
    let lists = meta.lists as usize;
    let probes = PROBES.get().max(1) as usize;
    let max_probes = if ITERATIVE_SCAN.get() == ITERATIVE_OFF {
        probes
    } else {
        (MAX_PROBES.get().max(1) as usize).max(probes)
    };
    let scan = Scan::new(store, &meta, &query)
        .unwrap_or_else(|e| am::corrupted_index(store.relation(), e));
    Run {
        scan,
        meta,
        probes: probes.min(lists),
        max_probes: max_probes.min(lists),
    }
}

impl Run {
    /// Reads the next batch of lists; false when there is none.
    fn probe(&mut self, store: &BufferStore) -> bool {
        let left = self.max_probes.saturating_sub(self.scan.probed());
        if left == 0 {
            return false;
        }
        self.scan
            .probe(store, &self.meta, self.probes.min(left))
            .unwrap_or_else(|e| am::corrupted_index(store.relation(), e));
        true
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amgettuple(
    scan: pg_sys::IndexScanDesc,
    _direction: pg_sys::ScanDirection::Type,
) -> bool {
    // SAFETY: scan is ours and live for this call.
    let so = unsafe { state(scan) };
    // SAFETY: as above.
    let index = unsafe { (*scan).indexRelation };
    if so.run.is_none() {
        let store = BufferStore::logged(index);
        // SAFETY: amrescan has set the order-by keys.
        let mut run = unsafe { start(scan, &store) };
        run.probe(&store);
        so.run = Some(run);
    }
    let run = so.run.as_mut().expect("started");
    loop {
        if let Some(hit) = run.scan.next_hit() {
            // SAFETY: scan is live; these are the fields amgettuple sets.
            unsafe {
                (*scan).xs_heaptid = am::pointer_from_tid(hit.heap);
                (*scan).xs_recheck = false;
                (*scan).xs_recheckorderby = false;
            }
            return true;
        }
        am::check_for_interrupts();
        let store = BufferStore::logged(index);
        if !run.probe(&store) {
            return false;
        }
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amendscan(scan: pg_sys::IndexScanDesc) {
    // SAFETY: scan is ours; the state itself is freed with its memory
    // context, only the run is dropped now.
    unsafe { state(scan).run = None };
}
