//! The `ivfflat` index access method: glue between Postgres' index AM API
//! and the inverted lists of `crates/ivf`, which work on `BufferStore`
//! pages.

mod build;
mod cost;
mod scan;
mod vacuum;

use crate::am::{self, Setting};
use crate::storage::BufferStore;
use distance::Metric;
use ivf::format::Meta;
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use std::ffi::{c_char, c_int, c_void};

pub const DEFAULT_LISTS: i32 = 100;
pub const MIN_LISTS: i32 = 1;
pub const MAX_LISTS: i32 = 32768;

pub static PROBES: Setting<c_int> = Setting::new(1);
pub static ITERATIVE_SCAN: Setting<c_int> = Setting::new(ITERATIVE_OFF);
pub static MAX_PROBES: Setting<c_int> = Setting::new(MAX_LISTS);

pub const ITERATIVE_OFF: c_int = 0;
pub const ITERATIVE_RELAXED: c_int = 1;

static RELOPT_KIND: Setting<pg_sys::relopt_kind::Type> = Setting::new(0);

/// The reloptions as `build_reloptions` lays them out.
#[repr(C)]
struct Options {
    vl_len_: i32,
    lists: c_int,
}

/// Registers the reloption and settings (from _PG_init).
pub fn init() {
    // SAFETY: _PG_init runs once per backend on its own thread; the names
    // and descriptions are static C strings; the variables are statics.
    unsafe {
        let kind = pg_sys::add_reloption_kind();
        *RELOPT_KIND.ptr() = kind;
        pg_sys::add_int_reloption(
            kind,
            c"lists".as_ptr(),
            c"Number of inverted lists".as_ptr(),
            DEFAULT_LISTS,
            MIN_LISTS,
            MAX_LISTS,
            pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE,
        );
        pg_sys::DefineCustomIntVariable(
            c"ivfflat.probes".as_ptr(),
            c"Sets the number of probes".as_ptr(),
            c"Valid range is 1..lists.".as_ptr(),
            PROBES.ptr(),
            1,
            MIN_LISTS,
            MAX_LISTS,
            pg_sys::GucContext::PGC_USERSET,
            0,
            None,
            None,
            None,
        );
        let options: &'static [pg_sys::config_enum_entry] = Box::leak(Box::new([
            am::enum_entry(c"off", ITERATIVE_OFF),
            am::enum_entry(c"relaxed_order", ITERATIVE_RELAXED),
            pg_sys::config_enum_entry {
                name: std::ptr::null(),
                val: 0,
                hidden: false,
            },
        ]));
        pg_sys::DefineCustomEnumVariable(
            c"ivfflat.iterative_scan".as_ptr(),
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
        // Below ivfflat.probes, probes wins (as in pgvector).
        pg_sys::DefineCustomIntVariable(
            c"ivfflat.max_probes".as_ptr(),
            c"Sets the max number of probes for iterative scans".as_ptr(),
            std::ptr::null(),
            MAX_PROBES.ptr(),
            MAX_LISTS,
            MIN_LISTS,
            MAX_LISTS,
            pg_sys::GucContext::PGC_USERSET,
            0,
            None,
            None,
            None,
        );
        pg_sys::MarkGUCPrefixReserved(c"ivfflat".as_ptr());
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn amoptions(
    reloptions: pg_sys::Datum,
    validate: bool,
) -> *mut pg_sys::bytea {
    let tab = [pg_sys::relopt_parse_elt {
        optname: c"lists".as_ptr(),
        opttype: pg_sys::relopt_type::RELOPT_TYPE_INT,
        offset: std::mem::offset_of!(Options, lists) as c_int,
    }];
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

/// The index's `lists` option (the default when not given).
///
/// # Safety
/// `index` must be a valid, open ivfflat index relation.
unsafe fn index_lists(index: pg_sys::Relation) -> usize {
    // SAFETY: rd_options of an ivfflat index is NULL or what amoptions built.
    let opts = unsafe { ((*index).rd_options as *const Options).as_ref() };
    opts.map_or(DEFAULT_LISTS, |o| o.lists) as usize
}

/// # Safety
/// `index` must be a valid, open ivfflat index relation.
unsafe fn opclass_metric(index: pg_sys::Relation) -> (Metric, distance::Storage) {
    // SAFETY: per the contract.
    let (metric, storage) = unsafe { am::opclass_metric(index, "ivfflat") };
    if metric.is_sparse() {
        // no ivfflat opclass orders sparsevec (none in pgvector either)
        am::error(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "type not supported for ivfflat index".into(),
            None,
        );
    }
    (metric, storage)
}

/// Reads the metapage of an open index.
fn read_meta(store: &BufferStore) -> Meta {
    ivf::lists::read_meta(store).unwrap_or_else(|e| am::corrupted_index(store.relation(), e))
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
    let store = BufferStore::logged(index);
    let meta = read_meta(&store);
    // SAFETY: a non-null datum of the indexed column, of the type the
    // index stores (vector for f32, halfvec for binary16).
    unsafe {
        am::with_vector(value, meta.storage, |v| {
            am::expect_dims(v, meta.dims as usize, meta.storage);
            if let Err(e) = ivf::insert::insert(&store, &meta, None, v, tid) {
                am::corrupted_index(index, e);
            }
        })
    };
    false
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn ambuildphasename(phase: i64) -> *mut c_char {
    let name: &'static std::ffi::CStr = match phase {
        1 => c"initializing",
        build::PHASE_KMEANS => c"performing k-means",
        build::PHASE_ASSIGN => c"assigning tuples",
        build::PHASE_LOAD => c"loading tuples",
        _ => return std::ptr::null_mut(),
    };
    name.as_ptr() as *mut c_char
}

crate::fmgr::pg_function!(pg_finfo_vx_ivfflat_handler, vx_ivfflat_handler, |_args| {
    // SAFETY: called as the AM handler; the routine goes to Postgres.
    unsafe {
        let r = am::new_routine(5);
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
