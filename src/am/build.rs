//! What index builds share: progress, memory, workers and their thread
//! pool, and the heap scan handing each row's vector to the builder.

use super::datum::with_vector;
use super::{error, tid_from_pointer};
use distance::{Element, Storage};
use pagestore::Tid;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use std::ffi::c_void;

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
/// Except that the size counts the table's TOAST relation too: vectors too
/// long for a page (more than about 2,000 dimensions) are kept out of line
/// there, so the planner sees a table of 100,000 3,072-d rows as a few MB
/// of row headers (no worker) when it holds 1.3 GB of vectors.
///
/// # Safety
/// `heap` and `index` must be the open relations ambuild got.
pub unsafe fn build_workers(heap: pg_sys::Relation, index: pg_sys::Relation) -> usize {
    // SAFETY: per the contract; the planner call reads catalogs only.
    let planned =
        unsafe { pg_sys::plan_create_index_workers((*heap).rd_id, (*index).rd_id) }.max(0) as usize;
    // SAFETY: per the contract; the GUCs are read on the backend thread.
    let (toast, temporary, explicit, most) = unsafe {
        let class = &*(*heap).rd_rel;
        let options = (*heap).rd_options as *const pg_sys::StdRdOptions;
        (
            class.reltoastrelid,
            class.relpersistence == pg_sys::RELPERSISTENCE_TEMP as std::ffi::c_char,
            !options.is_null() && (*options).parallel_workers >= 0,
            pg_sys::max_parallel_maintenance_workers.max(0) as usize,
        )
    };
    if planned > 0 || toast == pg_sys::InvalidOid || temporary || explicit || most == 0 {
        return planned;
    }
    // SAFETY: the heap is open and locked, so its TOAST relation is kept;
    // opened and closed here under the lock a reader takes.
    let pages = unsafe {
        let t = pg_sys::relation_open(toast, pg_sys::AccessShareLock as i32);
        let n = pg_sys::RelationGetNumberOfBlocksInFork(t, pg_sys::ForkNumber::MAIN_FORKNUM)
            + pg_sys::RelationGetNumberOfBlocksInFork(heap, pg_sys::ForkNumber::MAIN_FORKNUM);
        pg_sys::relation_close(t, pg_sys::AccessShareLock as i32);
        n as u64
    };
    // SAFETY: reading GUC variables on the backend thread.
    let (threshold, memory_kb) = unsafe {
        (
            pg_sys::min_parallel_table_scan_size.max(1) as u64,
            pg_sys::maintenance_work_mem.max(0) as u64,
        )
    };
    workers_for(pages, threshold, most, memory_kb)
}

/// Postgres' rule for a scan of `pages` (`compute_parallel_worker`): none
/// below `threshold` pages, then one more each time the size triples, at
/// most `most`; fewer while a participant would get less than 32 MB of
/// `memory_kb` (`plan_create_index_workers`).
fn workers_for(pages: u64, threshold: u64, most: usize, memory_kb: u64) -> usize {
    if pages < threshold {
        return 0;
    }
    let (mut workers, mut step) = (1usize, threshold.saturating_mul(3));
    while pages >= step && workers < most {
        workers += 1;
        step = step.saturating_mul(3);
    }
    workers = workers.min(most);
    while workers > 0 && memory_kb / (workers as u64 + 1) < 32 * 1024 {
        workers -= 1;
    }
    workers
}

/// A thread pool for the pure computation of an index build: `workers` +
/// 1 threads (the backend counts as one of them, as a leader does), at most
/// the number of cores; a DEBUG1 message says how many workers in
/// pgvector's words. The threads block every signal from their start, so
/// that Postgres' signal handlers only ever run on the backend's own thread.
pub fn build_pool(workers: usize) -> rayon::ThreadPool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (workers + 1).min(cores).max(1);
    if threads > 1 {
        pgrx::debug1!("using {} parallel workers", threads - 1);
    }
    // Threads inherit the signal mask of the thread that creates them:
    // every signal is blocked on the backend's thread while the pool starts
    // (one arriving meanwhile stays pending and is delivered on restore),
    // so no pool thread ever runs a Postgres signal handler, not even
    // before its first instruction.
    // SAFETY: changes this thread's mask and restores it right after; the
    // pool's construction calls no Postgres code.
    let pool = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut before: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut before);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("vector_ext build {i}"))
            .build();
        libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
        pool
    };
    pool.unwrap_or_else(|e| {
        error(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_RESOURCES,
            format!("could not start index build threads: {e}"),
            None,
        )
    })
}

/// A heap scan (for CREATE INDEX) handing each non-null row's vector to
/// `sink`; detoasted copies live in a memory context reset after every row.
struct RowScan<'a> {
    cx: pgrx::PgMemoryContexts,
    storage: Storage,
    sink: &'a mut dyn FnMut(Element, Tid),
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
    sink: &mut dyn FnMut(Element, Tid),
) -> f64 {
    // SAFETY: per the contract.
    unsafe { scan(heap, index, index_info, None, progress, storage, sink) }
}

/// `scan_rows` over heap blocks `start .. start + blocks` only (no
/// synchronised scan, no progress reporting), for builds that hand out
/// parts of the heap to parallel workers. Same snapshot rules as
/// `scan_rows`: every row a non-concurrent build must index.
///
/// # Safety
/// As `scan_rows`, in the leader or in one of its parallel workers.
pub unsafe fn scan_row_range(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    index_info: *mut pg_sys::IndexInfo,
    storage: Storage,
    start: pg_sys::BlockNumber,
    blocks: pg_sys::BlockNumber,
    sink: &mut dyn FnMut(Element, Tid),
) -> f64 {
    // SAFETY: per the contract.
    unsafe {
        scan(
            heap,
            index,
            index_info,
            Some((start, blocks)),
            false,
            storage,
            sink,
        )
    }
}

/// # Safety
/// As `scan_rows`.
unsafe fn scan(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    index_info: *mut pg_sys::IndexInfo,
    range: Option<(pg_sys::BlockNumber, pg_sys::BlockNumber)>,
    progress: bool,
    storage: Storage,
    sink: &mut dyn FnMut(Element, Tid),
) -> f64 {
    let mut st = RowScan {
        cx: pgrx::PgMemoryContexts::new("vector_ext build row"),
        storage,
        sink,
    };
    let (start, blocks) = range.unwrap_or((0, pg_sys::InvalidBlockNumber));
    // SAFETY: the callback gets &mut st back through the void pointer and
    // only during this call; a synchronised scan only over the whole heap,
    // as heap scan limits need.
    unsafe {
        pg_sys::table_index_build_range_scan(
            heap,
            index,
            index_info,
            range.is_none(),
            false,
            progress,
            start,
            blocks,
            Some(row_callback),
            &mut st as *mut RowScan as *mut c_void,
            std::ptr::null_mut(),
        )
    }
}

/// What `ambuild` hands an access method's build: the heap, the index and
/// its `IndexInfo`, and the index's main fork, empty (writes unlogged: the
/// build logs what it wrote).
pub struct BuildCall {
    pub heap: pg_sys::Relation,
    pub index: pg_sys::Relation,
    pub index_info: *mut pg_sys::IndexInfo,
    pub store: crate::storage::BufferStore,
}
