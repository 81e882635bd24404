//! What VACUUM's callbacks share.

use super::check_for_interrupts;
use pgrx::pg_sys;

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

unsafe extern "C" {
    /// storage/pmsignal.h (PostmasterIsAlive without its cached flag):
    /// false once the postmaster has exited.
    fn PostmasterIsAliveInternal() -> bool;
}
