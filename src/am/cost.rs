//! What the cost estimates share: the generic estimate of an ordered scan.

use pgrx::pg_sys;

/// The arguments of amcostestimate: the path to price, and the outputs.
pub struct Costs {
    pub root: *mut pg_sys::PlannerInfo,
    pub path: *mut pg_sys::IndexPath,
    pub loop_count: f64,
    pub startup: *mut pg_sys::Cost,
    pub total: *mut pg_sys::Cost,
    pub selectivity: *mut pg_sys::Selectivity,
    pub correlation: *mut f64,
    pub pages: *mut f64,
}

impl Costs {
    /// The generic estimate of an ordered scan and what `read` takes from
    /// the index. None for a path without ORDER BY: our indexes cannot
    /// serve it, so it is given infinite cost and the planner never picks it.
    ///
    /// # Safety
    /// The fields must be amcostestimate's arguments; the planner holds a lock on
    /// the index, so it is opened with NoLock.
    pub unsafe fn ordered<T>(
        &self,
        read: impl FnOnce(pg_sys::Relation) -> T,
    ) -> Option<(pg_sys::GenericCosts, T)> {
        let (root, path, loop_count) = (self.root, self.path, self.loop_count);
        // SAFETY: per the contract.
        unsafe {
            if (*path).indexorderbys.is_null() {
                crate::pg_compat::disable_path(path);
                *self.startup = f64::INFINITY;
                *self.total = f64::INFINITY;
                *self.selectivity = 0.0;
                *self.correlation = 0.0;
                *self.pages = 0.0;
                return None;
            }
            let mut costs: pg_sys::GenericCosts = std::mem::zeroed();
            pg_sys::genericcostestimate(root, path, loop_count, &mut costs);
            let index = pg_sys::index_open((*(*path).indexinfo).indexoid, pg_sys::NoLock as i32);
            let value = read(index);
            pg_sys::index_close(index, pg_sys::NoLock as i32);
            Some((costs, value))
        }
    }

    /// Writes the generic estimate with our startup and total costs.
    ///
    /// # Safety
    /// The pointers must be amcostestimate's.
    pub unsafe fn set(&self, g: &pg_sys::GenericCosts, startup: f64, total: f64) {
        // SAFETY: per the contract.
        unsafe {
            *self.startup = startup;
            *self.total = total;
            *self.selectivity = g.indexSelectivity;
            *self.correlation = g.indexCorrelation;
            *self.pages = g.numIndexPages;
        }
    }
}
