//! Every difference between the PostgreSQL majors we build for (15, 16, 17,
//! 18: the cargo features `pg15` ... `pg18`), each behind one small function
//! so the rest of the glue reads the same on all of them.
//!
//! - 16 renamed a relation's file identity (`RelFileNode` / `rd_node` became
//!   `RelFileLocator` / `rd_locator`) and the per-table statistics counters
//!   (`t_counts.t_numscans` became `counts.numscans`);
//! - 18 placed a tuple descriptor's attributes after a new compact array
//!   (`TupleDescAttr` is now a function), gave reloption parse entries an
//!   `isset_offset`, gave `vacuum_delay_point` an `is_analyze` argument,
//!   counts index searches for EXPLAIN (`Index Searches`) through
//!   `scan->instrument`, and prices disabled paths by a count of disabled
//!   nodes rather than by cost alone.
//!
//! New `IndexAmRoutine` fields of 16-18 (`amsummarizing`,
//! `amcanbuildparallel`, `aminsertcleanup`, `amgettreeheight`,
//! `amcanhash`, `amconsistentequality`, `amconsistentordering`,
//! `amtranslatestrategy`, `amtranslatecmptype`) are all false or NULL for
//! our access methods, which is what the zeroed routine gives them.

use pgrx::pg_sys;
use std::ffi::c_int;

/// A relation's physical file identity (tablespace, database, file number).
#[cfg(feature = "pg15")]
pub type RelFile = pg_sys::RelFileNode;
/// A relation's physical file identity (tablespace, database, file number).
#[cfg(not(feature = "pg15"))]
pub type RelFile = pg_sys::RelFileLocator;

/// The file identity of an open relation.
///
/// # Safety
/// `rel` must be a valid, open relation.
pub unsafe fn rel_file(rel: pg_sys::Relation) -> RelFile {
    // SAFETY: per the contract.
    #[cfg(feature = "pg15")]
    return unsafe { (*rel).rd_node };
    // SAFETY: per the contract.
    #[cfg(not(feature = "pg15"))]
    return unsafe { (*rel).rd_locator };
}

/// The relation file number within its database and tablespace.
pub fn rel_file_number(file: &RelFile) -> pg_sys::Oid {
    #[cfg(feature = "pg15")]
    return file.relNode;
    #[cfg(not(feature = "pg15"))]
    return file.relNumber;
}

/// The `i`th attribute of a tuple descriptor.
///
/// # Safety
/// `desc` must be a valid tuple descriptor with more than `i` attributes.
pub unsafe fn attribute(
    desc: pg_sys::TupleDesc,
    i: usize,
) -> &'static pg_sys::FormData_pg_attribute {
    // SAFETY: per the contract; the attributes live as long as the descriptor,
    // which outlives every caller's use (an open relation's or a scan's).
    #[cfg(not(feature = "pg18"))]
    return unsafe { &*(*desc).attrs.as_ptr().add(i) };
    // SAFETY: as above; TupleDescAttr is the header's accessor.
    #[cfg(feature = "pg18")]
    return unsafe { &*pg_sys::TupleDescAttr(desc, i as c_int) };
}

/// Adds one to an index's scan count in its pending statistics.
///
/// # Safety
/// `stats` must be the relation's valid `pgstat_info`.
pub unsafe fn count_scan(stats: *mut pg_sys::PgStat_TableStatus) {
    // SAFETY: per the contract.
    #[cfg(feature = "pg15")]
    unsafe {
        (*stats).t_counts.t_numscans += 1
    };
    // SAFETY: per the contract.
    #[cfg(not(feature = "pg15"))]
    unsafe {
        (*stats).counts.numscans += 1
    };
}

/// Counts one descent into the index for EXPLAIN ANALYZE's `Index Searches`
/// (PostgreSQL 18 and later; earlier versions do not report it).
///
/// # Safety
/// `scan` must be a valid index scan descriptor.
pub unsafe fn count_search(scan: pg_sys::IndexScanDesc) {
    // SAFETY: per the contract; instrument is NULL unless EXPLAIN asked.
    #[cfg(feature = "pg18")]
    unsafe {
        if !(*scan).instrument.is_null() {
            (*(*scan).instrument).nsearches += 1;
        }
    }
    #[cfg(not(feature = "pg18"))]
    let _ = scan;
}

/// One entry of a reloption parse table.
pub fn relopt_entry(
    name: &'static std::ffi::CStr,
    opttype: pg_sys::relopt_type::Type,
    offset: usize,
) -> pg_sys::relopt_parse_elt {
    pg_sys::relopt_parse_elt {
        optname: name.as_ptr(),
        opttype,
        offset: offset as c_int,
        // no "was it set" flag for any of our options
        #[cfg(feature = "pg18")]
        isset_offset: 0,
    }
}

/// The cost-based vacuum delay point of a VACUUM (not an ANALYZE).
pub fn vacuum_delay_point() {
    // SAFETY: a plain backend call during VACUUM.
    #[cfg(not(feature = "pg18"))]
    unsafe {
        pg_sys::vacuum_delay_point()
    };
    // SAFETY: as above.
    #[cfg(feature = "pg18")]
    unsafe {
        pg_sys::vacuum_delay_point(false)
    };
}

/// Marks an index path the planner must not choose (it has no ORDER BY our
/// index could serve). Its costs are already infinite; from 18 on the
/// planner first compares counts of disabled nodes, so a path with none
/// would still beat a sequential scan disabled by `enable_seqscan = off`:
/// count two, as pgvector does, so that even such a scan is preferred.
///
/// # Safety
/// `path` must be the IndexPath being costed.
pub unsafe fn disable_path(path: *mut pg_sys::IndexPath) {
    // SAFETY: per the contract.
    #[cfg(feature = "pg18")]
    unsafe {
        (*path).path.disabled_nodes = 2
    };
    #[cfg(not(feature = "pg18"))]
    let _ = path;
}

/// What Postgres counts when a read finds its block in shared buffers, for
/// a block pinned through `ReadRecentBuffer`, which counts only the
/// backend's buffer usage: the relation's blocks fetched and hit
/// (`pg_statio_*_indexes`), the hit in `pg_stat_io` (16+), and VACUUM's
/// cost of a page hit (with the page-hit counter of versions before 18).
///
/// # Safety
/// `rel` must be an open relation.
pub unsafe fn count_buffer_hit(rel: pg_sys::Relation) {
    // SAFETY: per the contract; this is pgstat_count_buffer_read and
    // pgstat_count_buffer_hit (pgstat_should_count_relation), then
    // ReadBuffer's vacuum accounting, on the backend's own globals.
    unsafe {
        if (*rel).pgstat_info.is_null() && (*rel).pgstat_enabled {
            pg_sys::pgstat_assoc_relation(rel);
        }
        let stats = (*rel).pgstat_info;
        if !stats.is_null() {
            #[cfg(feature = "pg15")]
            {
                (*stats).t_counts.t_blocks_fetched += 1;
                (*stats).t_counts.t_blocks_hit += 1;
            }
            #[cfg(not(feature = "pg15"))]
            {
                (*stats).counts.blocks_fetched += 1;
                (*stats).counts.blocks_hit += 1;
            }
        }
        // the server-wide I/O view (16+): a hit on a relation's shared
        // buffer in the normal context, as ReadBuffer counts it
        #[cfg(any(feature = "pg16", feature = "pg17"))]
        pg_sys::pgstat_count_io_op(
            pg_sys::IOObject::IOOBJECT_RELATION,
            pg_sys::IOContext::IOCONTEXT_NORMAL,
            pg_sys::IOOp::IOOP_HIT,
        );
        #[cfg(feature = "pg18")]
        pg_sys::pgstat_count_io_op(
            pg_sys::IOObject::IOOBJECT_RELATION,
            pg_sys::IOContext::IOCONTEXT_NORMAL,
            pg_sys::IOOp::IOOP_HIT,
            1,
            0,
        );
        #[cfg(not(feature = "pg18"))]
        {
            pg_sys::VacuumPageHit += 1;
        }
        if pg_sys::VacuumCostActive {
            pg_sys::VacuumCostBalance += pg_sys::VacuumCostPageHit;
        }
    }
}
