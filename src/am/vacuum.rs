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

/// Between vacuum steps: interrupts and cost-based vacuum delay.
pub fn vacuum_pause() {
    check_for_interrupts();
    crate::pg_compat::vacuum_delay_point();
}
