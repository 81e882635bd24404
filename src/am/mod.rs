//! What every index access method of the extension shares, by concern:
//! `settings`, `opclass` (what an index stores, from its definition),
//! `datum` (vector values), `build` (workers, pool, heap scan), `scan`,
//! `vacuum` and `cost`, `callbacks` (the callbacks both access methods
//! share the shape of, as macros); here: errors, heap TIDs and the routine every
//! handler starts from.

mod build;
mod callbacks;
mod cost;
mod datum;
mod opclass;
mod scan;
mod settings;
mod vacuum;

pub use build::*;
pub(crate) use callbacks::{
    am_handler, ambuild, ambuildphasename, ambulkdelete, amcostestimate, aminsert, amvacuumcleanup,
    scan_callbacks,
};
pub use cost::*;
pub use datum::*;
pub use opclass::*;
pub use scan::*;
pub use settings::*;
pub use vacuum::*;

use pagestore::{Corrupt, Tid};
use pgrx::pg_sys;
use pgrx::pg_sys::elog::PgLogLevel;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::pg_sys::panic::ErrorReport;
use std::ffi::CStr;

/// `ERROR: out of memory` (53200) with `detail`, as palloc's: for Rust
/// allocations sized by data or settings that are made fallibly
/// (`try_reserve`) instead of aborting the backend when they fail.
#[cold]
pub fn out_of_memory(detail: String) -> ! {
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY,
        "out of memory",
        "vector_ext",
    )
    .set_detail(detail)
    .report(PgLogLevel::ERROR);
    unreachable!("ereport(ERROR) does not return")
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
