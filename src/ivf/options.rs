//! The `ivfflat` reloption (`lists`) and settings (`ivfflat.probes`,
//! `ivfflat.iterative_scan`, `ivfflat.max_probes`), as pgvector names and
//! bounds them.

use crate::am::{self, Setting};
use pgrx::pg_sys;
use std::ffi::c_int;

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
    // SAFETY: _PG_init runs once per backend on its own thread.
    unsafe {
        let kind = pg_sys::add_reloption_kind();
        *RELOPT_KIND.ptr() = kind;
        am::int_reloption(
            kind,
            c"lists",
            c"Number of inverted lists",
            (DEFAULT_LISTS, MIN_LISTS, MAX_LISTS),
        );
        am::define_int(
            c"ivfflat.probes",
            c"Sets the number of probes",
            Some(c"Valid range is 1..lists."),
            &PROBES,
            (1, MIN_LISTS, MAX_LISTS),
        );
        am::define_enum(
            c"ivfflat.iterative_scan",
            c"Sets the mode for iterative scans",
            &ITERATIVE_SCAN,
            &[
                (c"off", ITERATIVE_OFF),
                (c"relaxed_order", ITERATIVE_RELAXED),
            ],
        );
        // Below ivfflat.probes, probes wins (as in pgvector).
        am::define_int(
            c"ivfflat.max_probes",
            c"Sets the max number of probes for iterative scans",
            None,
            &MAX_PROBES,
            (MAX_LISTS, MIN_LISTS, MAX_LISTS),
        );
        pg_sys::MarkGUCPrefixReserved(c"ivfflat".as_ptr());
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amoptions(
    reloptions: pg_sys::Datum,
    validate: bool,
) -> *mut pg_sys::bytea {
    let int = pg_sys::relopt_type::RELOPT_TYPE_INT;
    let fields = [(c"lists", int, std::mem::offset_of!(Options, lists))];
    // SAFETY: the fields describe Options.
    unsafe { am::parse_reloptions::<Options>(reloptions, validate, RELOPT_KIND.get(), &fields) }
}

/// The index's `lists` option (the default when not given).
///
/// # Safety
/// `index` must be a valid, open ivfflat index relation.
pub(super) unsafe fn index_lists(index: pg_sys::Relation) -> usize {
    // SAFETY: rd_options of an ivfflat index is NULL or what amoptions built.
    let opts = unsafe { ((*index).rd_options as *const Options).as_ref() };
    opts.map_or(DEFAULT_LISTS, |o| o.lists) as usize
}
