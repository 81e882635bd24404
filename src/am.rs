//! What every index access method of the extension shares: settings
//! storage, the indexed column's dimensions, corruption errors, build
//! progress, the build thread pool, heap TID conversion.

use distance::Metric;
use pagestore::{Corrupt, Tid};
use pgrx::pg_sys;
use pgrx::pg_sys::elog::PgLogLevel;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::pg_sys::panic::ErrorReport;
use std::cell::UnsafeCell;
use std::ffi::CStr;

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

/// A thread pool for the pure computation of an index build:
/// max_parallel_maintenance_workers + 1 threads (the backend counts as one
/// of them, as a leader does), at most the number of cores. The threads
/// block every signal so that Postgres' signal handlers only ever run on
/// the backend's own thread.
pub fn build_pool() -> rayon::ThreadPool {
    // SAFETY: reading a GUC variable on the backend thread.
    let workers = unsafe { pg_sys::max_parallel_maintenance_workers }.max(0) as usize;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (workers + 1).min(cores).max(1);
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
pub unsafe fn opclass_metric(index: pg_sys::Relation, am_name: &str) -> Metric {
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
    if is(v::vx_vector_l2_squared_distance) {
        Metric::L2
    } else if is(v::vx_vector_negative_inner_product) {
        if has_norm {
            Metric::Cosine
        } else {
            Metric::InnerProduct
        }
    } else if is(v::vx_l1_distance) {
        Metric::L1
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
