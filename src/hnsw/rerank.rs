//! The exact distances a scan of an index of codes re-ranks by, from the
//! rows themselves: the heap row a TID leads to, as the scan's snapshot
//! sees it, and the index's column (or expression) evaluated on it. Rows
//! the snapshot cannot see are dropped (the executor would drop them too).
//!
//! Nothing here outlives one `amgettuple` call: the fetch state holds a
//! buffer pin between rows and is ended before the call returns, in a
//! memory context of its own that goes with it (an ERROR meanwhile leaves
//! the pin and memory to the transaction's cleanup).

use crate::am;
use distance::{ElementBuf, Metric, Storage};
use pagestore::Tid;
use pgrx::pg_sys;

/// What a scan measures rows against: the prepared query, its metric and
/// the column's format.
pub(super) struct Exact {
    pub query: ElementBuf,
    pub metric: Metric,
    pub input: Storage,
}

/// Fetches of heap rows during one `amgettuple` call.
struct HeapRows {
    heap: pg_sys::Relation,
    snapshot: pg_sys::Snapshot,
    fetch: *mut pg_sys::IndexFetchTableData,
    slot: *mut pg_sys::TupleTableSlot,
    /// The heap column the index holds; 0 for an expression.
    attno: i32,
    /// For an expression: the index's definition and an executor state to
    /// evaluate it in.
    expression: Option<(*mut pg_sys::IndexInfo, *mut pg_sys::EState)>,
}

impl HeapRows {
    /// # Safety
    /// `scan` is a live index scan with its heap relation and snapshot.
    unsafe fn begin(scan: pg_sys::IndexScanDesc) -> HeapRows {
        // SAFETY: per the contract; these are the table AM's entry points
        // (table_index_fetch_begin, table_slot_create).
        unsafe {
            let heap = (*scan).heapRelation;
            let index = (*scan).indexRelation;
            let begin = (*(*heap).rd_tableam)
                .index_fetch_begin
                .expect("a table AM fetches rows");
            let fetch = begin(heap);
            let slot = pg_sys::table_slot_create(heap, std::ptr::null_mut());
            let attno = (*(*index).rd_index).indkey.values.as_slice(1)[0] as i32;
            let expression = (attno == 0).then(|| {
                let info = pg_sys::BuildIndexInfo(index);
                let estate = pg_sys::CreateExecutorState();
                (info, estate)
            });
            HeapRows {
                heap,
                snapshot: (*scan).xs_snapshot,
                fetch,
                slot,
                attno,
                expression,
            }
        }
    }

    /// The indexed value of the visible row at `tid`, if there is one.
    ///
    /// # Safety
    /// Between `begin` and `end`, no buffer lock held.
    unsafe fn value(&mut self, tid: Tid) -> Option<pg_sys::Datum> {
        // SAFETY: per the contract; table_index_fetch_tuple follows the
        // HOT chain from `tid` to the version the snapshot sees.
        unsafe {
            let mut t = am::pointer_from_tid(tid);
            let (mut call_again, mut all_dead) = (false, false);
            let fetch_tuple = (*(*self.heap).rd_tableam)
                .index_fetch_tuple
                .expect("a table AM fetches rows");
            let found = fetch_tuple(
                self.fetch,
                &mut t,
                self.snapshot,
                self.slot,
                &mut call_again,
                &mut all_dead,
            );
            if !found {
                return None;
            }
            let (value, null) = match self.expression {
                None => {
                    if ((*self.slot).tts_nvalid as i32) < self.attno {
                        pg_sys::slot_getsomeattrs_int(self.slot, self.attno);
                    }
                    let i = (self.attno - 1) as usize;
                    (
                        *(*self.slot).tts_values.add(i),
                        *(*self.slot).tts_isnull.add(i),
                    )
                }
                Some((info, estate)) => {
                    let econtext = match (*estate).es_per_tuple_exprcontext {
                        cx if cx.is_null() => pg_sys::MakePerTupleExprContext(estate),
                        cx => cx,
                    };
                    pg_sys::MemoryContextReset((*econtext).ecxt_per_tuple_memory);
                    (*econtext).ecxt_scantuple = self.slot;
                    let mut values = [pg_sys::Datum::from(0usize); pg_sys::INDEX_MAX_KEYS as usize];
                    let mut nulls = [false; pg_sys::INDEX_MAX_KEYS as usize];
                    pg_sys::FormIndexDatum(
                        info,
                        self.slot,
                        estate,
                        values.as_mut_ptr(),
                        nulls.as_mut_ptr(),
                    );
                    (values[0], nulls[0])
                }
            };
            (!null).then_some(value)
        }
    }

    /// # Safety
    /// Once, after `begin`.
    unsafe fn end(self) {
        // SAFETY: per the contract (table_index_fetch_end).
        unsafe {
            pg_sys::ExecDropSingleTupleTableSlot(self.slot);
            let end = (*(*self.heap).rd_tableam)
                .index_fetch_end
                .expect("a table AM fetches rows");
            end(self.fetch);
            if let Some((_, estate)) = self.expression {
                pg_sys::FreeExecutorState(estate);
            }
        }
    }
}

/// Runs `f` with a function that measures a row's exact distance to the
/// query (None for a row the scan's snapshot cannot see).
///
/// # Safety
/// `scan` is a live index scan of ours; no buffer lock is held.
pub(super) unsafe fn with_rows<R>(
    scan: pg_sys::IndexScanDesc,
    exact: &Exact,
    f: impl FnOnce(&mut dyn FnMut(Tid) -> Option<f32>) -> R,
) -> R {
    let mut cx = pgrx::PgMemoryContexts::new("vector_ext rerank");
    // SAFETY: the fetch begins and ends inside the context, in this call.
    unsafe {
        cx.switch_to(|_| {
            let mut rows = HeapRows::begin(scan);
            let mut measure = |tid: Tid| {
                let value = rows.value(tid)?;
                am::with_vector(value, exact.input, |v| {
                    exact.metric.between_unprepared(exact.query.as_element(), v)
                })
            };
            let r = f(&mut measure);
            rows.end();
            r
        })
    }
}
