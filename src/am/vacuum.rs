//! What VACUUM's callbacks share.

use super::check_for_interrupts;
use pgrx::pg_sys;

/// The lock inserts hold in share mode while they run and VACUUM takes
/// exclusively to wait for the inserts running at that moment (hnsw: the
/// ones that may still link to elements it flagged deleted; ivfflat: the
/// ones that may not have linked the page they added yet): the heavyweight
/// page lock of block 0, which nothing else takes on our indexes (buffer
/// locks are another kind).
const INSERT_LOCK: pg_sys::BlockNumber = 0;

/// Runs `f` (one insert) under the insert lock in share mode. An ERROR in
/// `f` releases the lock with the (sub)transaction.
///
/// # Safety
/// `index` is an open index of ours; no buffer lock is held.
pub unsafe fn with_insert_lock<R>(index: pg_sys::Relation, f: impl FnOnce() -> R) -> R {
    // SAFETY: per the contract; a heavyweight lock, released below or at
    // abort.
    unsafe { pg_sys::LockPage(index, INSERT_LOCK, pg_sys::ShareLock as pg_sys::LOCKMODE) };
    let r = f();
    // SAFETY: taken above.
    unsafe { pg_sys::UnlockPage(index, INSERT_LOCK, pg_sys::ShareLock as pg_sys::LOCKMODE) };
    r
}

/// Waits until every insert into `index` running now has finished, and
/// runs `then` before any other starts.
///
/// # Safety
/// `index` is an open index of ours; no buffer lock is held.
pub unsafe fn wait_for_inserts<R>(index: pg_sys::Relation, then: impl FnOnce() -> R) -> R {
    // SAFETY: per the contract; taken and released at once.
    unsafe {
        pg_sys::LockPage(
            index,
            INSERT_LOCK,
            pg_sys::ExclusiveLock as pg_sys::LOCKMODE,
        )
    };
    let r = then();
    // SAFETY: taken above.
    unsafe {
        pg_sys::UnlockPage(
            index,
            INSERT_LOCK,
            pg_sys::ExclusiveLock as pg_sys::LOCKMODE,
        )
    };
    r
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

/// Between vacuum steps: interrupts, cost-based vacuum delay, and the
/// postmaster's death. A backend notices that only when it waits, and a
/// long VACUUM of an index of codes (no waits between pages) kept running
/// after a kill -9 of the postmaster, holding the shared memory a restart
/// needs: the crash test's server did not come back within its minute.
pub fn vacuum_pause() {
    check_for_interrupts();
    crate::pg_compat::vacuum_delay_point();
    // SAFETY: a plain query of the postmaster's pipe, on the backend thread.
    if !unsafe { PostmasterIsAliveInternal() } {
        pgrx::pg_sys::panic::ErrorReport::new(
            pgrx::pg_sys::errcodes::PgSqlErrorCode::ERRCODE_ADMIN_SHUTDOWN,
            "terminating connection due to unexpected postmaster exit",
            "vector_ext",
        )
        .report(pgrx::pg_sys::elog::PgLogLevel::FATAL);
    }
}

/// Which call of `ambulkdelete` this is.
#[derive(Clone, Copy, Debug)]
pub struct BulkDeletePass {
    /// VACUUM's (not CREATE INDEX CONCURRENTLY's validation scan).
    pub vacuum: bool,
    /// A later index pass of the same VACUUM (its dead rows overflowed
    /// its memory).
    pub later: bool,
}

impl BulkDeletePass {
    /// Keeps what this pass did in the metapage's record of the last
    /// VACUUM, through `write(record, later)`, finished now; a validation
    /// scan of CREATE INDEX CONCURRENTLY is no VACUUM and is not kept.
    pub fn record(
        self,
        index: pg_sys::Relation,
        record: impl FnOnce(i64) -> pagestore::page::VacuumRecord,
        write: impl FnOnce(pagestore::page::VacuumRecord, bool) -> Result<(), pagestore::Corrupt>,
    ) {
        if self.vacuum {
            // SAFETY: reads the clock, on the backend thread.
            let now = unsafe { pg_sys::GetCurrentTimestamp() };
            write(record(now), self.later).unwrap_or_else(|e| super::corrupted_index(index, e));
        }
    }
}

/// The memory a VACUUM of this backend may use, in bytes:
/// `autovacuum_work_mem` in an autovacuum worker when it is set, else
/// `maintenance_work_mem` (as Postgres sizes its own dead-TID store).
pub fn vacuum_work_mem_bytes() -> usize {
    // SAFETY: reading GUC variables and the backend type on the backend
    // thread.
    let kb = unsafe {
        let autovacuum = pg_sys::MyBackendType == pg_sys::BackendType::B_AUTOVAC_WORKER;
        if autovacuum && autovacuum_work_mem != -1 {
            autovacuum_work_mem
        } else {
            pg_sys::maintenance_work_mem
        }
    };
    kb.max(0) as usize * 1024
}

/// A WARNING that VACUUM's pass linking back unreachable hnsw elements did
/// not run: it needs `needs` bytes, more than `vacuum_work_mem_bytes`.
pub fn reach_over_budget(index: pg_sys::Relation, needs: usize) {
    let mb = |b: usize| b.div_ceil(1 << 20);
    // SAFETY: the index is open.
    let name = unsafe { super::relation_name(index) };
    pgrx::warning!(
        "index \"{name}\": not linking back unreachable elements: that needs {} MB, the limit is {} MB; raise maintenance_work_mem (or autovacuum_work_mem) and run vector_ext_index_repair",
        mb(needs),
        mb(vacuum_work_mem_bytes())
    );
}

unsafe extern "C" {
    /// storage/pmsignal.h (PostmasterIsAlive without its cached flag):
    /// false once the postmaster has exited.
    fn PostmasterIsAliveInternal() -> bool;
    /// postmaster/autovacuum.h: KB, -1 for maintenance_work_mem.
    static autovacuum_work_mem: std::ffi::c_int;
}
