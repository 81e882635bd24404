//! The `hnsw` index access method: glue between Postgres' index AM API and
//! the graph algorithms of `crates/hnsw`, which work on `BufferStore` pages.

mod build;
mod cost;
mod scan;
mod vacuum;

use crate::am::{self, Setting};
use crate::storage::BufferStore;
use hnsw::format::Meta;
use hnsw::Metric;
use pagestore::PageStore;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use std::ffi::{c_char, c_int, c_void};

pub const DEFAULT_M: i32 = 16;
pub const MIN_M: i32 = 2;
pub const MAX_M: i32 = 100;
pub const DEFAULT_EF_CONSTRUCTION: i32 = 64;
pub const MIN_EF_CONSTRUCTION: i32 = 4;
pub const MAX_EF_CONSTRUCTION: i32 = 1000;

pub static EF_SEARCH: Setting<c_int> = Setting::new(40);
pub static ITERATIVE_SCAN: Setting<c_int> = Setting::new(ITERATIVE_OFF);
pub static MAX_SCAN_TUPLES: Setting<c_int> = Setting::new(20000);
pub static SCAN_MEM_MULTIPLIER: Setting<f64> = Setting::new(1.0);

pub const ITERATIVE_OFF: c_int = 0;
pub const ITERATIVE_RELAXED: c_int = 1;
pub const ITERATIVE_STRICT: c_int = 2;

static RELOPT_KIND: Setting<pg_sys::relopt_kind::Type> = Setting::new(0);

/// The reloptions as `build_reloptions` lays them out.
#[repr(C)]
struct Options {
    vl_len_: i32,
    m: c_int,
    ef_construction: c_int,
}

/// Registers reloptions and settings (from _PG_init).
pub fn init() {
    // SAFETY: _PG_init runs once per backend on its own thread; the names
    // and descriptions are static C strings; the variables are statics.
    unsafe {
        let kind = pg_sys::add_reloption_kind();
        *RELOPT_KIND.ptr() = kind;
        pg_sys::add_int_reloption(
            kind,
            c"m".as_ptr(),
            c"Max number of connections".as_ptr(),
            DEFAULT_M,
            MIN_M,
            MAX_M,
            pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE,
        );
        pg_sys::add_int_reloption(
            kind,
            c"ef_construction".as_ptr(),
            c"Size of the dynamic candidate list for construction".as_ptr(),
            DEFAULT_EF_CONSTRUCTION,
            MIN_EF_CONSTRUCTION,
            MAX_EF_CONSTRUCTION,
            pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE,
        );
        pg_sys::DefineCustomIntVariable(
            c"hnsw.ef_search".as_ptr(),
            c"Sets the size of the dynamic candidate list for search".as_ptr(),
            c"Valid range is 1..1000.".as_ptr(),
            EF_SEARCH.ptr(),
            40,
            1,
            1000,
            pg_sys::GucContext::PGC_USERSET,
            0,
            None,
            None,
            None,
        );
        let options: &'static [pg_sys::config_enum_entry] = Box::leak(Box::new([
            am::enum_entry(c"off", ITERATIVE_OFF),
            am::enum_entry(c"relaxed_order", ITERATIVE_RELAXED),
            am::enum_entry(c"strict_order", ITERATIVE_STRICT),
            pg_sys::config_enum_entry {
                name: std::ptr::null(),
                val: 0,
                hidden: false,
            },
        ]));
        pg_sys::DefineCustomEnumVariable(
            c"hnsw.iterative_scan".as_ptr(),
            c"Sets the mode for iterative scans".as_ptr(),
            std::ptr::null(),
            ITERATIVE_SCAN.ptr(),
            ITERATIVE_OFF,
            options.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            0,
            None,
            None,
            None,
        );
        pg_sys::DefineCustomIntVariable(
            c"hnsw.max_scan_tuples".as_ptr(),
            c"Sets the max number of tuples to visit for iterative scans".as_ptr(),
            std::ptr::null(),
            MAX_SCAN_TUPLES.ptr(),
            20000,
            1,
            i32::MAX,
            pg_sys::GucContext::PGC_USERSET,
            0,
            None,
            None,
            None,
        );
        pg_sys::DefineCustomRealVariable(
            c"hnsw.scan_mem_multiplier".as_ptr(),
            c"Sets the multiple of work_mem to use for iterative scans".as_ptr(),
            std::ptr::null(),
            SCAN_MEM_MULTIPLIER.ptr(),
            1.0,
            1.0,
            1000.0,
            pg_sys::GucContext::PGC_USERSET,
            0,
            None,
            None,
            None,
        );
        pg_sys::MarkGUCPrefixReserved(c"hnsw".as_ptr());
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn amoptions(
    reloptions: pg_sys::Datum,
    validate: bool,
) -> *mut pg_sys::bytea {
    let tab = [
        pg_sys::relopt_parse_elt {
            optname: c"m".as_ptr(),
            opttype: pg_sys::relopt_type::RELOPT_TYPE_INT,
            offset: std::mem::offset_of!(Options, m) as c_int,
        },
        pg_sys::relopt_parse_elt {
            optname: c"ef_construction".as_ptr(),
            opttype: pg_sys::relopt_type::RELOPT_TYPE_INT,
            offset: std::mem::offset_of!(Options, ef_construction) as c_int,
        },
    ];
    // SAFETY: tab describes Options exactly; build_reloptions pallocs the
    // result (or returns NULL when there are no options and !validate).
    unsafe {
        pg_sys::build_reloptions(
            reloptions,
            validate,
            RELOPT_KIND.get(),
            std::mem::size_of::<Options>(),
            tab.as_ptr(),
            tab.len() as c_int,
        ) as *mut pg_sys::bytea
    }
}

/// m and ef_construction of an index (defaults when not given).
///
/// # Safety
/// `index` must be a valid, open hnsw index relation.
unsafe fn index_options(index: pg_sys::Relation) -> (usize, usize) {
    // SAFETY: rd_options of an hnsw index is NULL or what amoptions built.
    let opts = unsafe { ((*index).rd_options as *const Options).as_ref() };
    let (m, ef) = opts.map_or((DEFAULT_M, DEFAULT_EF_CONSTRUCTION), |o| {
        (o.m, o.ef_construction)
    });
    (m as usize, ef as usize)
}

/// # Safety
/// `index` must be a valid, open hnsw index relation.
unsafe fn opclass_metric(index: pg_sys::Relation) -> (Metric, hnsw::Storage) {
    // SAFETY: per the contract.
    unsafe { am::opclass_metric(index, "hnsw") }
}

/// pgvector's checks of a value the index takes: the index's dimensions,
/// and for a sparse vector the non-zeros one element can hold on a page.
fn check_value(v: &[f32], dims: usize, storage: hnsw::Storage) {
    am::expect_dims(v, dims, storage);
    let most = hnsw::format::max_sparse_nnz();
    if storage == hnsw::Storage::Sparse && v.len() > distance::sparse::words(most) {
        am::error(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("sparsevec cannot have more than {most} non-zero elements for hnsw index"),
            None,
        );
    }
}

/// Reads the metapage of an open index.
fn read_meta(store: &BufferStore) -> Meta {
    if store.nblocks() == 0 {
        am::corrupted_index(
            store.relation(),
            pagestore::Corrupt("index has no metapage".into()),
        );
    }
    store
        .read(0, Meta::decode)
        .unwrap_or_else(|e| am::corrupted_index(store.relation(), e))
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn aminsert(
    index: pg_sys::Relation,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    heap_tid: pg_sys::ItemPointer,
    _heap: pg_sys::Relation,
    _check_unique: pg_sys::IndexUniqueCheck::Type,
    _index_unchanged: bool,
    _index_info: *mut pg_sys::IndexInfo,
) -> bool {
    // SAFETY: aminsert's arguments.
    let Some((value, tid)) = (unsafe { am::insert_value(values, isnull, heap_tid) }) else {
        return false;
    };
    let store = BufferStore::with_prefetch(index);
    let meta = read_meta(&store);
    // SAFETY: a non-null datum of the indexed column, of the type the
    // index stores (vector for f32, halfvec for binary16). The update lock
    // is a heavyweight lock: an ERROR before the unlock releases it with
    // the (sub)transaction.
    unsafe {
        pg_sys::LockPage(index, UPDATE_LOCK, pg_sys::ShareLock as pg_sys::LOCKMODE);
        am::with_vector(value, meta.storage, |v| {
            check_value(v, meta.dims as usize, meta.storage);
            if let Err(e) = hnsw::insert::insert(&store, v, tid, LEVEL_SEED) {
                am::corrupted_index(index, e);
            }
        });
        pg_sys::UnlockPage(index, UPDATE_LOCK, pg_sys::ShareLock as pg_sys::LOCKMODE);
    };
    false
}

/// The lock inserts hold in share mode while they run and VACUUM takes
/// exclusively, between flagging elements deleted and repairing the links
/// into them, to wait for the inserts that may still be linking to them
/// (`hnsw::vacuum::bulk_delete_waiting`): the heavyweight page lock of
/// block 0, which nothing else takes on an hnsw index (buffer locks are
/// another kind).
pub(crate) const UPDATE_LOCK: pg_sys::BlockNumber = 0;

/// Waits until every insert into `index` running now has finished.
///
/// # Safety
/// `index` is an open hnsw index; no buffer lock is held.
pub(crate) unsafe fn wait_for_inserts(index: pg_sys::Relation) {
    // SAFETY: as the caller promises; taken and released at once.
    unsafe {
        pg_sys::LockPage(
            index,
            UPDATE_LOCK,
            pg_sys::ExclusiveLock as pg_sys::LOCKMODE,
        );
        pg_sys::UnlockPage(
            index,
            UPDATE_LOCK,
            pg_sys::ExclusiveLock as pg_sys::LOCKMODE,
        );
    }
}

/// Seed of the level each element gets (mixed with its heap TID).
const LEVEL_SEED: u64 = 0x5658_484E_5357_0001;

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn ambuildphasename(phase: i64) -> *mut c_char {
    let name: &'static std::ffi::CStr = match phase {
        1 => c"initializing",
        build::PHASE_LOAD => c"loading tuples",
        build::PHASE_LINK => c"building graph",
        build::PHASE_WRITE => c"writing index pages",
        _ => return std::ptr::null_mut(),
    };
    name.as_ptr() as *mut c_char
}

crate::fmgr::pg_function!(pg_finfo_vx_hnsw_handler, vx_hnsw_handler, |_args| {
    // SAFETY: called as the AM handler; the routine goes to Postgres.
    unsafe {
        let r = am::new_routine(3);
        r.ambuild = Some(build::ambuild);
        r.ambuildempty = Some(build::ambuildempty);
        r.aminsert = Some(aminsert);
        r.ambulkdelete = Some(vacuum::ambulkdelete);
        r.amvacuumcleanup = Some(vacuum::amvacuumcleanup);
        r.amcostestimate = Some(cost::amcostestimate);
        r.amoptions = Some(amoptions);
        r.ambuildphasename = Some(ambuildphasename);
        r.ambeginscan = Some(scan::ambeginscan);
        r.amrescan = Some(scan::amrescan);
        r.amgettuple = Some(scan::amgettuple);
        r.amendscan = Some(scan::amendscan);
        pg_sys::Datum::from(r as *mut pg_sys::IndexAmRoutine as *mut c_void)
    }
});
