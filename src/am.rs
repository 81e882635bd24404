//! What every index access method of the extension shares: settings
//! storage, the indexed column's dimensions, corruption errors, build
//! progress, the build thread pool, heap TID conversion.

use distance::{Metric, Storage};
use pagestore::{Corrupt, Tid};
use pgrx::pg_sys;
use pgrx::pg_sys::elog::PgLogLevel;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::pg_sys::panic::ErrorReport;
use std::cell::UnsafeCell;
use std::ffi::{c_void, CStr};

/// A value Postgres' GUC machinery writes (through `ptr`) and the backend
/// reads. Only the backend's own thread ever touches it.
pub struct Setting<T: Copy>(UnsafeCell<T>);

// SAFETY: settings are read and written only on the backend thread (rayon
// threads never read them: builds copy what they need first).
unsafe impl<T: Copy> Sync for Setting<T> {}

impl<T: Copy> Setting<T> {
    pub const fn new(v: T) -> Self {
        Setting(UnsafeCell::new(v))
    }

    pub fn get(&self) -> T {
        // SAFETY: see the Sync impl; GUC assignment happens between calls.
        unsafe { *self.0.get() }
    }

    pub fn ptr(&self) -> *mut T {
        self.0.get()
    }
}

/// Raises an ERROR with `code`, `message` and optional DETAIL / HINT.
#[cold]
pub fn error(code: PgSqlErrorCode, message: String, hint: Option<&str>) -> ! {
    let mut report = ErrorReport::new(code, message, "vector_ext");
    if let Some(h) = hint {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// # Safety
/// `rel` must be a valid, open relation.
pub unsafe fn relation_name(rel: pg_sys::Relation) -> String {
    // SAFETY: rd_rel of an open relation is valid; relname is a NameData.
    unsafe {
        CStr::from_ptr((*(*rel).rd_rel).relname.data.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// Reports a damaged index page: the index name, what is wrong, and the way out.
#[cold]
pub fn corrupted_index(rel: pg_sys::Relation, e: Corrupt) -> ! {
    // SAFETY: callers pass the open index relation they work on.
    let name = unsafe { relation_name(rel) };
    error(
        PgSqlErrorCode::ERRCODE_INDEX_CORRUPTED,
        format!("index \"{name}\" is corrupted: {e}"),
        Some("REINDEX the index."),
    )
}

/// The dimensions of the indexed column (its typmod), checked against what
/// the access method can store.
///
/// # Safety
/// `index` must be a valid, open index relation with at least one column.
pub unsafe fn column_dimensions(index: pg_sys::Relation, am: &str, max: usize) -> usize {
    // SAFETY: an open index has a tuple descriptor with its key columns.
    let typmod = unsafe { (*(*(*index).rd_att).attrs.as_ptr()).atttypmod };
    if typmod < 0 {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "column does not have dimensions".into(),
            None,
        );
    }
    if typmod as usize > max {
        error(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("column cannot have more than {max} dimensions for {am} index"),
            None,
        );
    }
    typmod as usize
}

/// The dimensions an index works in: the column's (checked as
/// `column_dimensions` does against `max` elements), or for bit strings
/// the 32-bit words holding the column's bits (at most 32 x `max` bits).
///
/// # Safety
/// As for `column_dimensions`.
pub unsafe fn index_dimensions(
    index: pg_sys::Relation,
    am: &str,
    storage: Storage,
    max: usize,
) -> usize {
    // SAFETY: per the contract.
    unsafe {
        match storage {
            Storage::Bits => column_dimensions(index, am, 32 * max).div_ceil(32),
            Storage::F32 | Storage::F16 | Storage::Sparse => column_dimensions(index, am, max),
        }
    }
}

pub fn tid_from_pointer(p: &pg_sys::ItemPointerData) -> Tid {
    Tid {
        block: (p.ip_blkid.bi_hi as u32) << 16 | p.ip_blkid.bi_lo as u32,
        offset: p.ip_posid,
    }
}

pub fn pointer_from_tid(t: Tid) -> pg_sys::ItemPointerData {
    pg_sys::ItemPointerData {
        ip_blkid: pg_sys::BlockIdData {
            bi_hi: (t.block >> 16) as u16,
            bi_lo: t.block as u16,
        },
        ip_posid: t.offset,
    }
}

pub fn check_for_interrupts() {
    pgrx::check_for_interrupts!();
}

pub fn report_progress(param: u32, value: i64) {
    // SAFETY: plain backend-local progress update (a no-op outside a
    // command that started progress reporting).
    unsafe { pg_sys::pgstat_progress_update_param(param as i32, value) };
}

/// Bytes an index build may hold in memory (maintenance_work_mem).
pub fn maintenance_work_mem_bytes() -> usize {
    // SAFETY: reading a GUC variable on the backend thread.
    (unsafe { pg_sys::maintenance_work_mem }) as usize * 1024
}

/// The parallel workers an index build of `index` on `heap` may use, as
/// Postgres decides them for btree and pgvector for its builds
/// (`plan_create_index_workers`): the table's `parallel_workers` storage
/// parameter when set, else by the table's size (none below
/// `min_parallel_table_scan_size`); at most
/// `max_parallel_maintenance_workers`, none for temporary tables.
///
/// # Safety
/// `heap` and `index` must be the open relations ambuild got.
pub unsafe fn build_workers(heap: pg_sys::Relation, index: pg_sys::Relation) -> usize {
    // SAFETY: per the contract; the planner call reads catalogs only.
    unsafe { pg_sys::plan_create_index_workers((*heap).rd_id, (*index).rd_id) }.max(0) as usize
}

/// A thread pool for the pure computation of an index build: `workers` +
/// 1 threads (the backend counts as one of them, as a leader does), at most
/// the number of cores; a DEBUG1 message says how many workers in
/// pgvector's words. The threads block every signal so that Postgres'
/// signal handlers only ever run on the backend's own thread.
pub fn build_pool(workers: usize) -> rayon::ThreadPool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (workers + 1).min(cores).max(1);
    if threads > 1 {
        pgrx::debug1!("using {} parallel workers", threads - 1);
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("vector_ext build {i}"))
        .start_handler(|_| {
            // SAFETY: blocks signals for this (pool) thread only.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigfillset(&mut set);
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
        })
        .build()
        .unwrap_or_else(|e| {
            error(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_RESOURCES,
                format!("could not start index build threads: {e}"),
                None,
            )
        })
}

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
            (*(*rel).pgstat_info).t_counts.t_numscans += 1;
        }
    }
}

/// Which metric the operator class orders by, from its support functions:
/// 1 is the distance, and a norm function as support 2 means cosine
/// (vectors are normalised and compared by inner product), as in pgvector.
///
/// # Safety
/// `index` must be a valid, open index relation of one of our access methods.
pub unsafe fn opclass_metric(index: pg_sys::Relation, am_name: &str) -> (Metric, Storage) {
    use crate::types::halfvec as h;
    use crate::types::sparsevec as s;
    use crate::types::vector as v;
    // SAFETY: every opclass of ours declares support function 1 (amvalidate is
    // permissive, so check); index_getprocid returns InvalidOid when absent.
    let (addr, has_norm) = unsafe {
        if pg_sys::index_getprocid(index, 1, 1) == pg_sys::InvalidOid {
            error(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!("operator class has no distance function for {am_name} index"),
                None,
            );
        }
        let info = pg_sys::index_getprocinfo(index, 1, 1);
        (
            (*info).fn_addr.map_or(0, |f| f as usize),
            pg_sys::index_getprocid(index, 1, 2) != pg_sys::InvalidOid,
        )
    };
    type V1 = unsafe extern "C-unwind" fn(pg_sys::FunctionCallInfo) -> pg_sys::Datum;
    let is = |f: V1| addr == f as usize;
    let ip = if has_norm {
        Metric::Cosine
    } else {
        Metric::InnerProduct
    };
    if is(v::vx_vector_l2_squared_distance) {
        (Metric::L2, Storage::F32)
    } else if is(v::vx_vector_negative_inner_product) {
        (ip, Storage::F32)
    } else if is(v::vx_l1_distance) {
        (Metric::L1, Storage::F32)
    } else if is(h::vx_halfvec_l2_squared_distance) {
        (Metric::L2, Storage::F16)
    } else if is(h::vx_halfvec_negative_inner_product) {
        (ip, Storage::F16)
    } else if is(h::vx_halfvec_l1_distance) {
        (Metric::L1, Storage::F16)
    } else if is(crate::types::bit::vx_hamming_distance) {
        (Metric::Hamming, Storage::Bits)
    } else if is(crate::types::bit::vx_jaccard_distance) {
        (Metric::Jaccard, Storage::Bits)
    } else if is(s::vx_sparsevec_l2_squared_distance) {
        (Metric::SparseL2, Storage::Sparse)
    } else if is(s::vx_sparsevec_negative_inner_product) {
        let cosine = has_norm;
        (
            if cosine {
                Metric::SparseCosine
            } else {
                Metric::SparseInnerProduct
            },
            Storage::Sparse,
        )
    } else if is(s::vx_sparsevec_l1_distance) {
        (Metric::SparseL1, Storage::Sparse)
    } else {
        error(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("type not supported for {am_name} index"),
            None,
        )
    }
}

/// One value of an enum setting.
pub fn enum_entry(
    name: &'static std::ffi::CStr,
    val: std::ffi::c_int,
) -> pg_sys::config_enum_entry {
    pg_sys::config_enum_entry {
        name: name.as_ptr(),
        val,
        hidden: false,
    }
}

/// A heap scan (for CREATE INDEX) handing each non-null row's vector to
/// `sink`; detoasted copies live in a memory context reset after every row.
struct RowScan<'a> {
    cx: pgrx::PgMemoryContexts,
    storage: Storage,
    sink: &'a mut dyn FnMut(&[f32], Tid),
}

/// The dimensions of a vector as `with_vector` gives it.
fn dims_of(v: &[f32], storage: Storage) -> usize {
    match storage {
        Storage::Sparse => distance::sparse::dim_of(v) as usize,
        Storage::F32 | Storage::F16 | Storage::Bits => v.len(),
    }
}

/// Raises pgvector's error for a value whose dimensions differ from the
/// index's.
pub fn expect_dims(v: &[f32], dims: usize, storage: Storage) {
    let got = dims_of(v, storage);
    if got != dims {
        crate::error::raise(vecfmt::VectorError::ExpectedDimensions {
            expected: dims as i64,
            got: got as i64,
        });
    }
}

/// Calls `f` with the values of a non-null vector (F32) or halfvec (F16)
/// datum as f32 (binary16 widens exactly), the words of a bit string
/// (Bits) or of a sparsevec (Sparse, `distance::sparse`'s word form).
///
/// # Safety
/// `value` must be a non-null datum of the type `storage` stands for.
pub unsafe fn with_vector<R>(
    value: pg_sys::Datum,
    storage: Storage,
    f: impl FnOnce(&[f32]) -> R,
) -> R {
    use crate::types::varlena::DenseRef;
    match storage {
        // SAFETY: per the contract.
        Storage::F32 => f(unsafe { DenseRef::<f32>::from_datum(value) }.as_slice()),
        Storage::Bits => {
            let (_, bytes) = crate::types::bit::varbit(value);
            // 32 bits to a word, the bytes in string order (see Storage::Bits)
            let words: Vec<f32> = bytes
                .chunks(4)
                .map(|c| {
                    let mut w = [0u8; 4];
                    w[..c.len()].copy_from_slice(c);
                    f32::from_bits(u32::from_ne_bytes(w))
                })
                .collect();
            f(&words)
        }
        Storage::F16 => {
            // SAFETY: per the contract.
            let h = unsafe { DenseRef::<half::f16>::from_datum(value) };
            let v: Vec<f32> = h.as_slice().iter().map(|x| x.to_f32()).collect();
            f(&v)
        }
        Storage::Sparse => {
            // SAFETY: per the contract.
            let s = unsafe { crate::types::sparsevec::SparseRef::from_datum(value) };
            let mut words = Vec::with_capacity(distance::sparse::words(s.indices.len()));
            let kernel = distance::sparse::Sparse::from_signed(s.indices, s.values);
            distance::sparse::to_words(s.dim as u32, kernel, &mut words);
            f(&words)
        }
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn row_callback(
    _index: pg_sys::Relation,
    tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    _alive: bool,
    state: *mut c_void,
) {
    // SAFETY: state is the RowScan scan_rows passed, alive for the whole
    // scan; values/isnull hold the one index column.
    let (st, value, tid) = unsafe {
        if *isnull {
            return;
        }
        (
            &mut *(state as *mut RowScan),
            *values,
            tid_from_pointer(&*tid),
        )
    };
    let mut cx = std::mem::replace(&mut st.cx, pgrx::PgMemoryContexts::CurrentMemoryContext);
    // SAFETY: switch_to runs the closure with cx current; value is a
    // non-null vector datum of the indexed column.
    unsafe {
        cx.switch_to(|_| with_vector(value, st.storage, |v| (st.sink)(v, tid)));
        cx.reset();
    }
    st.cx = cx;
}

/// Scans the heap rows the index must hold into `sink`; returns the number
/// of heap tuples. `progress`: report blocks scanned.
///
/// # Safety
/// The relations and index info must be what ambuild got.
pub unsafe fn scan_rows(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    index_info: *mut pg_sys::IndexInfo,
    progress: bool,
    storage: Storage,
    sink: &mut dyn FnMut(&[f32], Tid),
) -> f64 {
    let mut st = RowScan {
        cx: pgrx::PgMemoryContexts::new("vector_ext build row"),
        storage,
        sink,
    };
    // SAFETY: the callback gets &mut st back through the void pointer and
    // only during this call.
    unsafe {
        pg_sys::table_index_build_scan(
            heap,
            index,
            index_info,
            true,
            progress,
            Some(row_callback),
            &mut st as *mut RowScan as *mut c_void,
            std::ptr::null_mut(),
        )
    }
}

/// The value aminsert got and its heap TID; None for a NULL (not indexed).
///
/// # Safety
/// The arguments must be aminsert's (one index column).
pub unsafe fn insert_value(
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    heap_tid: pg_sys::ItemPointer,
) -> Option<(pg_sys::Datum, Tid)> {
    // SAFETY: per the contract.
    unsafe { (!*isnull).then(|| (*values, tid_from_pointer(&*heap_tid))) }
}

/// A palloc'd IndexAmRoutine with what our access methods share (ordered
/// by operator only, one column, no unique/backward/bitmap scans); the
/// caller sets the callbacks.
///
/// # Safety
/// Call from an AM handler, on the backend thread.
pub unsafe fn new_routine(amsupport: u16) -> &'static mut pg_sys::IndexAmRoutine {
    // SAFETY: makeNode-equivalent: zeroed palloc'd memory with its tag.
    let r = unsafe {
        &mut *(pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexAmRoutine>())
            as *mut pg_sys::IndexAmRoutine)
    };
    r.type_ = pg_sys::NodeTag::T_IndexAmRoutine;
    r.amsupport = amsupport;
    r.amcanorderbyop = true;
    r.amoptionalkey = true;
    r.amparallelvacuumoptions = pg_sys::VACUUM_OPTION_PARALLEL_BULKDEL as u8;
    r.amkeytype = pg_sys::InvalidOid;
    r.amvalidate = Some(amvalidate);
    r
}

/// Operator classes are ours, created by the extension script: nothing to
/// validate (as pgvector).
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn amvalidate(_opclass: pg_sys::Oid) -> bool {
    true
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
) -> Vec<f32> {
    // SAFETY: per the contract.
    let key = unsafe {
        count_index_scan((*scan).indexRelation);
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
            Storage::Sparse => {
                let mut zero = Vec::new();
                let empty = distance::sparse::Sparse::from_signed(&[], &[]);
                distance::sparse::to_words(dims as u32, empty, &mut zero);
                zero
            }
            Storage::F32 | Storage::F16 | Storage::Bits => vec![0.0; dims],
        };
    }
    if storage == Storage::Bits {
        // bit strings must be as long as the column's, not just as many words
        let (bits, _) = crate::types::bit::varbit(key.sk_argument);
        // SAFETY: a live scan's index has its tuple descriptor.
        let want = unsafe { (*(*(*(*scan).indexRelation).rd_att).attrs.as_ptr()).atttypmod };
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
            let got = dims_of(v, storage);
            if got != dims {
                crate::error::raise(vecfmt::VectorError::DifferentDimensions {
                    type_name: match storage {
                        Storage::F32 | Storage::Bits => "vector",
                        Storage::F16 => "halfvec",
                        Storage::Sparse => "sparsevec",
                    },
                    a: dims as i64,
                    b: got as i64,
                });
            }
            metric.prepare(v).unwrap_or_else(|| v.to_vec())
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

/// ambulkdelete's stats: the earlier pass's, or new zeroed ones.
///
/// # Safety
/// `stats` must be NULL or a valid IndexBulkDeleteResult.
pub unsafe fn bulk_delete_stats(
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    if !stats.is_null() {
        return stats;
    }
    // SAFETY: palloc0 of a plain C struct, handed to Postgres.
    unsafe {
        pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexBulkDeleteResult>())
            as *mut pg_sys::IndexBulkDeleteResult
    }
}

/// Between vacuum steps: interrupts and cost-based vacuum delay.
pub fn vacuum_pause() {
    check_for_interrupts();
    // SAFETY: a plain backend call during VACUUM.
    unsafe { pg_sys::vacuum_delay_point() };
}

/// The outputs of amcostestimate.
pub struct Costs {
    pub startup: *mut pg_sys::Cost,
    pub total: *mut pg_sys::Cost,
    pub selectivity: *mut pg_sys::Selectivity,
    pub correlation: *mut f64,
    pub pages: *mut f64,
}

impl Costs {
    /// The generic estimate of an ordered scan and what `read` takes from
    /// the index. None for a path without ORDER BY: our indexes cannot
    /// serve it, so it is given infinite cost and the planner never picks it.
    ///
    /// # Safety
    /// The arguments must be amcostestimate's; the planner holds a lock on
    /// the index, so it is opened with NoLock.
    pub unsafe fn ordered<T>(
        &self,
        root: *mut pg_sys::PlannerInfo,
        path: *mut pg_sys::IndexPath,
        loop_count: f64,
        read: impl FnOnce(pg_sys::Relation) -> T,
    ) -> Option<(pg_sys::GenericCosts, T)> {
        // SAFETY: per the contract.
        unsafe {
            if (*path).indexorderbys.is_null() {
                *self.startup = f64::INFINITY;
                *self.total = f64::INFINITY;
                *self.selectivity = 0.0;
                *self.correlation = 0.0;
                *self.pages = 0.0;
                return None;
            }
            let mut costs: pg_sys::GenericCosts = std::mem::zeroed();
            pg_sys::genericcostestimate(root, path, loop_count, &mut costs);
            let index = pg_sys::index_open((*(*path).indexinfo).indexoid, pg_sys::NoLock as i32);
            let value = read(index);
            pg_sys::index_close(index, pg_sys::NoLock as i32);
            Some((costs, value))
        }
    }

    /// Writes the generic estimate with our startup and total costs.
    ///
    /// # Safety
    /// The pointers must be amcostestimate's.
    pub unsafe fn set(&self, g: &pg_sys::GenericCosts, startup: f64, total: f64) {
        // SAFETY: per the contract.
        unsafe {
            *self.startup = startup;
            *self.total = total;
            *self.selectivity = g.indexSelectivity;
            *self.correlation = g.indexCorrelation;
            *self.pages = g.numIndexPages;
        }
    }
}
