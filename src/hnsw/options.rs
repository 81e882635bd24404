//! The `hnsw` reloptions (`m`, `ef_construction`) and settings
//! (`hnsw.ef_search`, `hnsw.iterative_scan`, `hnsw.max_scan_tuples`,
//! `hnsw.scan_mem_multiplier`), as pgvector names and bounds them; and our
//! own reloptions `storage`: how elements are stored (`'halfvec'` stores a
//! vector column's elements in binary16, half the size), and
//! `quantization`: `'rabitq'` stores RaBitQ codes (`bits` per dimension,
//! 1 or 4) instead of vectors, and scans re-rank by the rows' own vectors.

use crate::am::{self, Setting};
use pgrx::pg_sys;
use std::ffi::c_int;

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

/// Values of the `storage` reloption.
pub const STORAGE_FULL: c_int = 0;
pub const STORAGE_HALFVEC: c_int = 1;

/// Values of the `quantization` reloption.
pub const QUANTIZATION_NONE: c_int = 0;
pub const QUANTIZATION_RABITQ: c_int = 1;

/// The `bits` reloption when not given (the quantization's default), and
/// that default.
pub const BITS_UNSET: c_int = 0;
pub const DEFAULT_BITS: u32 = 4;

/// The reloptions as `build_reloptions` lays them out.
#[repr(C)]
struct Options {
    vl_len_: i32,
    m: c_int,
    ef_construction: c_int,
    storage: c_int,
    quantization: c_int,
    bits: c_int,
}

/// Registers reloptions and settings (from _PG_init).
pub fn init() {
    // SAFETY: _PG_init runs once per backend on its own thread.
    unsafe {
        let kind = pg_sys::add_reloption_kind();
        *RELOPT_KIND.ptr() = kind;
        am::int_reloption(
            kind,
            c"m",
            c"Max number of connections",
            (DEFAULT_M, MIN_M, MAX_M),
        );
        am::int_reloption(
            kind,
            c"ef_construction",
            c"Size of the dynamic candidate list for construction",
            (
                DEFAULT_EF_CONSTRUCTION,
                MIN_EF_CONSTRUCTION,
                MAX_EF_CONSTRUCTION,
            ),
        );
        am::enum_reloption(
            kind,
            c"storage",
            c"How index elements are stored",
            &[(c"full", STORAGE_FULL), (c"halfvec", STORAGE_HALFVEC)],
            c"Valid values are \"full\" and \"halfvec\".",
        );
        am::enum_reloption(
            kind,
            c"quantization",
            c"How index elements are quantized",
            &[
                (c"none", QUANTIZATION_NONE),
                (c"rabitq", QUANTIZATION_RABITQ),
            ],
            c"Valid values are \"none\" and \"rabitq\".",
        );
        am::int_reloption(
            kind,
            c"bits",
            c"Bits per dimension of quantized index elements",
            (BITS_UNSET, BITS_UNSET, 8),
        );
        am::define_int(
            c"hnsw.ef_search",
            c"Sets the size of the dynamic candidate list for search",
            Some(c"Valid range is 1..1000."),
            &EF_SEARCH,
            (40, 1, 1000),
        );
        am::define_enum(
            c"hnsw.iterative_scan",
            c"Sets the mode for iterative scans",
            &ITERATIVE_SCAN,
            &[
                (c"off", ITERATIVE_OFF),
                (c"relaxed_order", ITERATIVE_RELAXED),
                (c"strict_order", ITERATIVE_STRICT),
            ],
        );
        am::define_int(
            c"hnsw.max_scan_tuples",
            c"Sets the max number of tuples to visit for iterative scans",
            None,
            &MAX_SCAN_TUPLES,
            (20000, 1, i32::MAX),
        );
        am::define_real(
            c"hnsw.scan_mem_multiplier",
            c"Sets the multiple of work_mem to use for iterative scans",
            &SCAN_MEM_MULTIPLIER,
            (1.0, 1.0, 1000.0),
        );
        pg_sys::MarkGUCPrefixReserved(c"hnsw".as_ptr());
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amoptions(
    reloptions: pg_sys::Datum,
    validate: bool,
) -> *mut pg_sys::bytea {
    use pg_sys::relopt_type::{RELOPT_TYPE_ENUM, RELOPT_TYPE_INT};
    let fields = [
        (c"m", RELOPT_TYPE_INT, std::mem::offset_of!(Options, m)),
        (
            c"ef_construction",
            RELOPT_TYPE_INT,
            std::mem::offset_of!(Options, ef_construction),
        ),
        (
            c"storage",
            RELOPT_TYPE_ENUM,
            std::mem::offset_of!(Options, storage),
        ),
        (
            c"quantization",
            RELOPT_TYPE_ENUM,
            std::mem::offset_of!(Options, quantization),
        ),
        (
            c"bits",
            RELOPT_TYPE_INT,
            std::mem::offset_of!(Options, bits),
        ),
    ];
    // SAFETY: the fields describe Options.
    unsafe { am::parse_reloptions::<Options>(reloptions, validate, RELOPT_KIND.get(), &fields) }
}

/// m and ef_construction of an index (defaults when not given).
///
/// # Safety
/// `index` must be a valid, open hnsw index relation.
pub(super) unsafe fn index_options(index: pg_sys::Relation) -> (usize, usize) {
    // SAFETY: per the contract.
    let opts = unsafe { options(index) };
    let (m, ef) = opts.map_or((DEFAULT_M, DEFAULT_EF_CONSTRUCTION), |o| {
        (o.m, o.ef_construction)
    });
    (m as usize, ef as usize)
}

/// The `storage` reloption of an index (`STORAGE_FULL` when not given).
///
/// # Safety
/// `index` must be a valid, open hnsw index relation.
pub(super) unsafe fn storage_option(index: pg_sys::Relation) -> c_int {
    // SAFETY: per the contract.
    unsafe { options(index) }.map_or(STORAGE_FULL, |o| o.storage)
}

/// The `quantization` reloption of an index (`QUANTIZATION_NONE` when not
/// given).
///
/// # Safety
/// `index` must be a valid, open hnsw index relation.
pub(super) unsafe fn quantization_option(index: pg_sys::Relation) -> c_int {
    // SAFETY: per the contract.
    unsafe { options(index) }.map_or(QUANTIZATION_NONE, |o| o.quantization)
}

/// The `bits` reloption of an index (`BITS_UNSET` when not given).
///
/// # Safety
/// `index` must be a valid, open hnsw index relation.
pub(super) unsafe fn bits_option(index: pg_sys::Relation) -> c_int {
    // SAFETY: per the contract.
    unsafe { options(index) }.map_or(BITS_UNSET, |o| o.bits)
}

/// # Safety
/// `index` must be a valid, open hnsw index relation.
unsafe fn options<'a>(index: pg_sys::Relation) -> Option<&'a Options> {
    // SAFETY: rd_options of an hnsw index is NULL or what amoptions built.
    unsafe { ((*index).rd_options as *const Options).as_ref() }
}
