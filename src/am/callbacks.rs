//! The index AM callbacks both access methods share the shape of, written
//! once: each macro expands, inside an access method's module, to the
//! `extern "C-unwind"` functions Postgres calls, around that access
//! method's own parts (its scan run, cost estimate, deletion, insert).

/// The `amhandler` of an access method whose callbacks sit, by the names
/// Postgres gives them, in its modules `build` (`ambuild`, `ambuildempty`,
/// `ambuildphasename`), `insert`, `vacuum`, `cost`, `options` and `scan`.
macro_rules! am_handler {
    ($finfo:ident, $handler:ident, $support:expr) => {
        crate::fmgr::pg_function!($finfo, $handler, |_args| {
            // SAFETY: called as the AM handler; the routine goes to Postgres.
            unsafe {
                let r = crate::am::new_routine($support);
                r.ambuild = Some(build::ambuild);
                r.ambuildempty = Some(build::ambuildempty);
                r.ambuildphasename = Some(build::ambuildphasename);
                r.aminsert = Some(insert::aminsert);
                r.ambulkdelete = Some(vacuum::ambulkdelete);
                r.amvacuumcleanup = Some(vacuum::amvacuumcleanup);
                r.amcostestimate = Some(cost::amcostestimate);
                r.amoptions = Some(options::amoptions);
                r.ambeginscan = Some(scan::ambeginscan);
                r.amrescan = Some(scan::amrescan);
                r.amgettuple = Some(scan::amgettuple);
                r.amendscan = Some(scan::amendscan);
                pgrx::pg_sys::Datum::from(
                    r as *mut pgrx::pg_sys::IndexAmRoutine as *mut std::ffi::c_void,
                )
            }
        });
    };
}
pub(crate) use am_handler;

/// `ambuild` around `$build(BuildCall)`, which fills the index's main fork
/// (empty, checked here) from the heap and returns the pallocked
/// `IndexBuildResult`.
macro_rules! ambuild {
    ($build:path) => {
        #[pgrx::pg_guard]
        pub unsafe extern "C-unwind" fn ambuild(
            heap: pgrx::pg_sys::Relation,
            index: pgrx::pg_sys::Relation,
            index_info: *mut pgrx::pg_sys::IndexInfo,
        ) -> *mut pgrx::pg_sys::IndexBuildResult {
            let main = pgrx::pg_sys::ForkNumber::MAIN_FORKNUM;
            let store = crate::storage::BufferStore::unlogged(index, main);
            if pagestore::PageStore::nblocks(&store) != 0 {
                // SAFETY: index is open.
                let name = unsafe { crate::am::relation_name(index) };
                pgrx::error!("index \"{name}\" already contains data");
            }
            let call = crate::am::BuildCall {
                heap,
                index,
                index_info,
                store,
            };
            // SAFETY: Postgres hands ambuild open, locked relations.
            unsafe { $build(call) }
        }
    };
}
pub(crate) use ambuild;

/// `ambuildphasename` from the build's phases (`(number, name)`; phase 1
/// is Postgres' own "initializing").
macro_rules! ambuildphasename {
    ($($phase:expr => $name:expr),* $(,)?) => {
        #[pgrx::pg_guard]
        pub unsafe extern "C-unwind" fn ambuildphasename(phase: i64) -> *mut std::ffi::c_char {
            let name: &'static std::ffi::CStr = match phase {
                1 => c"initializing",
                $(p if p == $phase => $name,)*
                _ => return std::ptr::null_mut(),
            };
            name.as_ptr() as *mut std::ffi::c_char
        }
    };
}
pub(crate) use ambuildphasename;

/// `ambeginscan`, `amrescan`, `amgettuple` and `amendscan` of a scan whose
/// state between rescans is an `Option<$run>` (None until the first
/// `amgettuple`; `$run` is a `ScanRun`).
macro_rules! scan_callbacks {
    ($run:ty) => {
        struct ScanState {
            run: Option<$run>,
        }

        #[pgrx::pg_guard]
        pub unsafe extern "C-unwind" fn ambeginscan(
            index: pgrx::pg_sys::Relation,
            nkeys: i32,
            norderbys: i32,
        ) -> pgrx::pg_sys::IndexScanDesc {
            // SAFETY: ambeginscan's arguments.
            unsafe { crate::am::begin_scan(index, nkeys, norderbys, ScanState { run: None }) }
        }

        #[pgrx::pg_guard]
        pub unsafe extern "C-unwind" fn amrescan(
            scan: pgrx::pg_sys::IndexScanDesc,
            keys: pgrx::pg_sys::ScanKey,
            nkeys: i32,
            orderbys: pgrx::pg_sys::ScanKey,
            norderbys: i32,
        ) {
            // SAFETY: amrescan's arguments; the scan is ours (ambeginscan).
            unsafe {
                state(scan).run = None;
                crate::am::set_scan_keys(scan, keys, nkeys, orderbys, norderbys);
            }
        }

        #[pgrx::pg_guard]
        pub unsafe extern "C-unwind" fn amgettuple(
            scan: pgrx::pg_sys::IndexScanDesc,
            _direction: pgrx::pg_sys::ScanDirection::Type,
        ) -> bool {
            use crate::am::ScanRun;
            // SAFETY: scan is ours and live for this call; amrescan has set
            // its order-by keys before the first call.
            unsafe {
                let index = (*scan).indexRelation;
                let run = state(scan).run.get_or_insert_with(|| <$run>::start(scan));
                match run.next(index) {
                    Some(tid) => {
                        crate::am::return_heap_tid(scan, tid);
                        true
                    }
                    None => false,
                }
            }
        }

        #[pgrx::pg_guard]
        pub unsafe extern "C-unwind" fn amendscan(scan: pgrx::pg_sys::IndexScanDesc) {
            // SAFETY: scan is ours; the state itself is freed with its
            // memory context, only the run is dropped now.
            unsafe { state(scan).run = None };
        }

        /// # Safety
        /// `scan` must be a scan begun by `ambeginscan`.
        unsafe fn state<'a>(scan: pgrx::pg_sys::IndexScanDesc) -> &'a mut ScanState {
            // SAFETY: ambeginscan stored a ScanState.
            unsafe { crate::am::scan_state(scan) }
        }
    };
}
pub(crate) use scan_callbacks;

/// `amcostestimate` around `$estimate(&Costs)`, which prices the path the
/// `Costs` holds and writes the estimate through its outputs.
macro_rules! amcostestimate {
    ($estimate:path) => {
        #[pgrx::pg_guard]
        pub unsafe extern "C-unwind" fn amcostestimate(
            root: *mut pgrx::pg_sys::PlannerInfo,
            path: *mut pgrx::pg_sys::IndexPath,
            loop_count: f64,
            startup_cost: *mut pgrx::pg_sys::Cost,
            total_cost: *mut pgrx::pg_sys::Cost,
            selectivity: *mut pgrx::pg_sys::Selectivity,
            correlation: *mut f64,
            pages: *mut f64,
        ) {
            let out = crate::am::Costs {
                root,
                path,
                loop_count,
                startup: startup_cost,
                total: total_cost,
                selectivity,
                correlation,
                pages,
            };
            // SAFETY: the planner passes a valid path and output pointers.
            unsafe { $estimate(&out) }
        }
    };
}
pub(crate) use amcostestimate;

/// `ambulkdelete` around a body that removes what `is_dead` names from
/// `store` (the index `index`) and gives back (heap TIDs removed, heap
/// TIDs left): `ambulkdelete!(|index, store, is_dead, pass| { ... })`.
macro_rules! ambulkdelete {
    (|$index:ident, $store:ident, $is_dead:ident, $pass:ident| $body:block) => {
        /// # Safety
        /// `index` is the open index VACUUM works on; no buffer lock is held.
        unsafe fn bulk_delete(
            $index: pgrx::pg_sys::Relation,
            $store: &crate::storage::BufferStore,
            $is_dead: &dyn Fn(pagestore::Tid) -> bool,
            $pass: crate::am::BulkDeletePass,
        ) -> (u64, u64) {
            $body
        }

        #[pgrx::pg_guard]
        pub unsafe extern "C-unwind" fn ambulkdelete(
            info: *mut pgrx::pg_sys::IndexVacuumInfo,
            stats: *mut pgrx::pg_sys::IndexBulkDeleteResult,
            callback: pgrx::pg_sys::IndexBulkDeleteCallback,
            callback_state: *mut std::ffi::c_void,
        ) -> *mut pgrx::pg_sys::IndexBulkDeleteResult {
            // SAFETY: Postgres passes valid vacuum info and either NULL or
            // the stats of an earlier pass; the callback takes a heap TID
            // and its state.
            unsafe {
                let index = (*info).index;
                let pass = crate::am::BulkDeletePass {
                    // CREATE INDEX CONCURRENTLY's validation calls
                    // ambulkdelete too (its callback deletes nothing), and
                    // is the one caller that reports progress
                    vacuum: !(*info).report_progress,
                    later: !stats.is_null(),
                };
                let stats = crate::am::bulk_delete_stats(stats);
                let Some(callback) = callback else {
                    return stats;
                };
                let store = crate::storage::BufferStore::for_vacuum(index, (*info).strategy);
                let is_dead = |t: pagestore::Tid| {
                    let mut p = crate::am::pointer_from_tid(t);
                    // an ERROR in the callback (CREATE INDEX CONCURRENTLY's
                    // writes a tuplesort) becomes a Rust panic here, not a
                    // longjmp over the Rust frames between
                    pgrx::pg_sys::ffi::pg_guard_ffi_boundary(|| callback(&mut p, callback_state))
                };
                let (removed, left) = bulk_delete(index, &store, &is_dead, pass);
                (*stats).tuples_removed += removed as f64;
                (*stats).num_index_tuples = left as f64;
                (*stats).estimated_count = false;
                (*stats).num_pages = pagestore::PageStore::nblocks(&store);
                stats
            }
        }
    };
}
pub(crate) use ambulkdelete;

/// `amvacuumcleanup`, which reports the index's pages; when ambulkdelete
/// did not run (nothing deleted, `stats` NULL) it first runs
/// `$cleanup(index, &store)`, the access method's own pass, which says
/// whether to report statistics (the heap's counts) or leave VACUUM's alone.
macro_rules! amvacuumcleanup {
    ($cleanup:path) => {
        #[pgrx::pg_guard]
        pub unsafe extern "C-unwind" fn amvacuumcleanup(
            info: *mut pgrx::pg_sys::IndexVacuumInfo,
            stats: *mut pgrx::pg_sys::IndexBulkDeleteResult,
        ) -> *mut pgrx::pg_sys::IndexBulkDeleteResult {
            // SAFETY: as in ambulkdelete; the stats are palloc'd as VACUUM
            // expects.
            unsafe {
                if (*info).analyze_only {
                    return stats;
                }
                let index = (*info).index;
                let store = crate::storage::BufferStore::for_vacuum(index, (*info).strategy);
                let stats = if stats.is_null() {
                    if !$cleanup(index, &store) {
                        return stats;
                    }
                    let fresh = crate::am::bulk_delete_stats(stats);
                    (*fresh).num_index_tuples = (*info).num_heap_tuples;
                    (*fresh).estimated_count = (*info).estimated_count;
                    fresh
                } else {
                    stats
                };
                (*stats).num_pages = pagestore::PageStore::nblocks(&store);
                stats
            }
        }
    };
}
pub(crate) use amvacuumcleanup;

/// `aminsert` around `$insert(index, value, heap TID)` for a non-null value.
macro_rules! aminsert {
    ($insert:path) => {
        #[allow(clippy::too_many_arguments)]
        #[pgrx::pg_guard]
        pub unsafe extern "C-unwind" fn aminsert(
            index: pgrx::pg_sys::Relation,
            values: *mut pgrx::pg_sys::Datum,
            isnull: *mut bool,
            heap_tid: pgrx::pg_sys::ItemPointer,
            _heap: pgrx::pg_sys::Relation,
            _check_unique: pgrx::pg_sys::IndexUniqueCheck::Type,
            _index_unchanged: bool,
            _index_info: *mut pgrx::pg_sys::IndexInfo,
        ) -> bool {
            // SAFETY: aminsert's arguments.
            if let Some((value, tid)) = unsafe { crate::am::insert_value(values, isnull, heap_tid) }
            {
                // SAFETY: a non-null datum of the indexed column.
                unsafe { $insert(index, value, tid) };
            }
            false
        }
    };
}
pub(crate) use aminsert;
