//! `vector_ext_index_check(regclass) RETURNS jsonb`: runs the pure crates'
//! checks (`hnsw::check`, `ivf::check`) over an index's pages under share
//! locks, adds what only the heap can tell (heap TIDs past its end), and
//! reports everything as one JSON object: counts, up to 20 problems, and
//! `ok` (no problems). Like amcheck, it reads every page; it takes
//! AccessShareLock on the table and the index, so writes go on meanwhile.
//! `vector_ext_index_repair(regclass) RETURNS bigint`: VACUUM's pass that
//! links back unreachable hnsw elements, on demand.

use crate::am;
use crate::fmgr::pg_function;
use crate::storage::BufferStore;
use pagestore::{PageStore, Tid};
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use std::ffi::{CStr, CString};
use std::fmt::Write;

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The JSON object of a report: `fields` (name, number), then the heap
/// TIDs' check and the problems.
fn report_json(
    am_name: &str,
    fields: &[(&str, u64)],
    heap_tids: &[Tid],
    heap_blocks: u32,
    problems: &pagestore::Problems,
) -> String {
    let dangling = heap_tids.iter().filter(|t| t.block >= heap_blocks).count() as u64;
    let mut list = problems.first.clone();
    let mut count = problems.count;
    if dangling > 0 {
        count += dangling;
        list.push(format!(
            "{dangling} heap TIDs point past the table's {heap_blocks} blocks"
        ));
    }
    let mut out = format!("{{\"am\": {}", json_str(am_name));
    for (k, v) in fields {
        let _ = write!(out, ", {}: {v}", json_str(k));
    }
    let _ = write!(
        out,
        ", \"heap_tids\": {}, \"problem_count\": {count}, \"problems\": [{}], \"ok\": {}}}",
        heap_tids.len(),
        list.iter()
            .map(|p| json_str(p))
            .collect::<Vec<_>>()
            .join(", "),
        count == 0
    );
    out
}

/// The table of index `oid`; ERROR when `oid` is not an index.
///
/// # Safety
/// On the backend thread, in a transaction.
unsafe fn table_of_index(oid: pg_sys::Oid) -> pg_sys::Oid {
    // SAFETY: catalog lookups (the caller's contract).
    unsafe {
        let heap_oid = pg_sys::IndexGetRelation(oid, true);
        if heap_oid == pg_sys::InvalidOid {
            let name = pg_sys::get_rel_name(oid);
            let name = if name.is_null() {
                format!("relation with OID {}", u32::from(oid))
            } else {
                format!("\"{}\"", CStr::from_ptr(name).to_string_lossy())
            };
            am::error(
                PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
                format!("{name} is not an index"),
                None,
            );
        }
        heap_oid
    }
}

/// The name of an open index's access method.
///
/// # Safety
/// `index` is open.
unsafe fn am_name_of(index: pg_sys::Relation) -> String {
    // SAFETY: a catalog lookup of an open relation (the caller's contract).
    unsafe {
        let p = pg_sys::get_am_name((*(*index).rd_rel).relam);
        if p.is_null() {
            String::new()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// An index by OID, opened with its table under `lock`: Postgres' index
/// relation, its table, and its access method's name. ERROR when `oid` is
/// not an index.
///
/// # Safety
/// On the backend thread, in a transaction; the caller closes both with
/// `close_index`.
unsafe fn open_index(
    oid: pg_sys::Oid,
    lock: pg_sys::LOCKMODE,
) -> (pg_sys::Relation, pg_sys::Relation, String) {
    // SAFETY: catalog lookups and relation opens (the caller's contract).
    unsafe {
        let heap = pg_sys::relation_open(table_of_index(oid), lock);
        let index = pg_sys::index_open(oid, lock);
        let am_name = am_name_of(index);
        (heap, index, am_name)
    }
}

/// Closes what `open_index` opened.
///
/// # Safety
/// `heap` and `index` from `open_index` with this `lock`.
unsafe fn close_index(heap: pg_sys::Relation, index: pg_sys::Relation, lock: pg_sys::LOCKMODE) {
    // SAFETY: the caller's contract.
    unsafe {
        pg_sys::index_close(index, lock);
        pg_sys::relation_close(heap, lock);
    }
}

/// ERROR: the index is not one of `ams`.
///
/// # Safety
/// `index` is open.
unsafe fn not_ours(index: pg_sys::Relation, ams: &str) -> ! {
    am::error(
        PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
        // SAFETY: the caller's contract.
        format!("\"{}\" is not {ams} index", unsafe {
            am::relation_name(index)
        }),
        None,
    )
}

pg_function!(pg_finfo_vx_index_check, vx_index_check, |args| {
    let oid = pg_sys::Oid::from(args.datum(0).value() as u32);
    let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
    // SAFETY: on the backend thread; the relations stay open (and locked)
    // until the end of this call.
    let json = unsafe {
        let (heap, index, am_name) = open_index(oid, lock);
        let heap_blocks =
            pg_sys::RelationGetNumberOfBlocksInFork(heap, pg_sys::ForkNumber::MAIN_FORKNUM);
        let store = BufferStore::logged(index);
        let json = match am_name.as_str() {
            "hnsw" => {
                let r = hnsw::check::check_index(&store, am::check_for_interrupts);
                report_json(
                    "hnsw",
                    &[
                        ("pages", r.pages as u64),
                        ("elements", r.elements),
                        ("deleted_elements", r.deleted_elements),
                        ("links", r.links),
                        ("new_pages", r.new_pages as u64),
                        ("unreachable_elements", r.unreachable),
                    ],
                    &r.heap_tids,
                    heap_blocks,
                    &r.problems,
                )
            }
            "ivfflat" => {
                let r = ivf::check::check_index(&store, am::check_for_interrupts);
                report_json(
                    "ivfflat",
                    &[
                        ("pages", r.pages as u64),
                        ("lists", r.lists as u64),
                        ("items", r.items),
                        ("misplaced_items", r.misplaced),
                        ("unused_pages", r.unused_pages as u64),
                    ],
                    &r.heap_tids,
                    heap_blocks,
                    &r.problems,
                )
            }
            _ => not_ours(index, "an hnsw or ivfflat"),
        };
        close_index(heap, index, lock);
        json
    };
    jsonb(json)
});

/// A jsonb Datum of JSON text made here.
fn jsonb(json: String) -> pg_sys::Datum {
    let c = CString::new(json).expect("no NUL in the report");
    // SAFETY: jsonb's input function reads the NUL-terminated text and
    // returns a palloc'd jsonb.
    unsafe {
        pg_sys::OidInputFunctionCall(
            pg_sys::Oid::from(pg_sys::F_JSONB_IN),
            c.as_ptr() as *mut std::ffi::c_char,
            pg_sys::JSONBOID,
            -1,
        )
    }
}

/// `vector_ext_index_stats(regclass, full_scan boolean DEFAULT false)`, a
/// row: what the metapage tells (the distance, the storage, the options
/// kept there, levels or lists, and what the last VACUUM that vacuumed the
/// index did) and the index's size, from one page read under
/// AccessShareLock on the index alone (a monitoring scrape never waits for
/// the table, nor reads the index); with `full_scan`, also the counts only
/// every page tells (what `vector_ext_index_check` reads), NULL otherwise.
fn index_stats(
    index: pg_sys::Relation,
    am_name: &str,
    full: bool,
) -> Vec<(&'static str, Option<String>)> {
    let store = BufferStore::logged(index);
    let text = |v: &dyn ToString| Some(v.to_string());
    let mut f: Vec<(&'static str, Option<String>)> = vec![("access_method", text(&am_name))];
    if store.nblocks() == 0 && matches!(am_name, "hnsw" | "ivfflat") {
        // CREATE INDEX CONCURRENTLY's index before its build: no metapage yet
        f.push(("pages", text(&0)));
        return f;
    }
    let record = match am_name {
        "hnsw" => {
            let meta = store
                .read(0, hnsw::format::Meta::decode)
                .unwrap_or_else(|e| am::corrupted_index(index, e));
            f.push(("dimensions", text(&meta.dims)));
            f.push(("distance", text(&meta.metric.name())));
            f.push(("storage", text(&meta.storage.name())));
            f.push(("m", text(&meta.m)));
            f.push(("ef_construction", text(&meta.ef_construction)));
            let levels = if meta.entry.is_valid() {
                meta.entry_level as u32 + 1
            } else {
                0
            };
            f.push(("levels", text(&levels)));
            if full {
                let r = hnsw::check::check_index(&store, am::check_for_interrupts);
                f.push(("elements", text(&r.elements)));
                f.push(("live_elements", text(&(r.elements - r.deleted_elements))));
                f.push((
                    "deleted_elements",
                    text(&(r.deleted_elements - r.free_elements)),
                ));
                f.push(("free_elements", text(&r.free_elements)));
                if r.elements > 0 {
                    f.push(("mean_degree", text(&(r.links as f64 / r.elements as f64))));
                }
                f.push(("unreachable_elements", text(&r.unreachable)));
                f.push(("problems", text(&r.problems.count)));
            }
            meta.last_vacuum
        }
        "ivfflat" => {
            let meta = store
                .read(0, ivf::format::Meta::decode)
                .unwrap_or_else(|e| am::corrupted_index(index, e));
            f.push(("dimensions", text(&meta.dims)));
            f.push(("distance", text(&meta.metric.name())));
            f.push(("storage", text(&meta.storage.name())));
            f.push(("lists", text(&meta.lists)));
            if full {
                let r = ivf::check::check_index(&store, am::check_for_interrupts);
                f.push(("elements", text(&r.items)));
                f.push(("live_elements", text(&r.items)));
                f.push(("unused_pages", text(&r.unused_pages)));
                f.push(("problems", text(&r.problems.count)));
            }
            meta.last_vacuum
        }
        // SAFETY: `index` is open (the caller's).
        _ => unsafe { not_ours(index, "an hnsw or ivfflat") },
    };
    f.push(("pages", text(&store.nblocks())));
    if record.at != 0 {
        f.push(("last_vacuum", Some(timestamptz_text(record.at))));
        f.push(("last_vacuum_removed", text(&record.removed)));
        f.push(("last_vacuum_remaining", text(&record.remaining)));
        f.push(("last_vacuum_reused", text(&record.reused)));
        if am_name == "hnsw" {
            f.push(("last_vacuum_relinked", text(&record.relinked)));
            if record.reach_skipped_bytes > 0 {
                f.push((
                    "last_vacuum_relink_skipped_bytes",
                    text(&record.reach_skipped_bytes),
                ));
            }
        }
    }
    f
}

/// A TimestampTz as timestamptz's text (the session's DateStyle and
/// TimeZone, which the row's input function reads back).
fn timestamptz_text(at: i64) -> String {
    // SAFETY: timestamptz's output function on a TimestampTz Datum returns
    // a palloc'd NUL-terminated string.
    unsafe {
        let p = pg_sys::OidOutputFunctionCall(
            pg_sys::Oid::from(pg_sys::F_TIMESTAMPTZ_OUT),
            pg_sys::Datum::from(at),
        );
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

pg_function!(pg_finfo_vx_index_stats, vx_index_stats, |args| {
    let oid = pg_sys::Oid::from(args.datum(0).value() as u32);
    let full = args.datum(1).value() != 0;
    let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
    // SAFETY: on the backend thread; the index stays open (and locked)
    // until the end of this call. Only the index is locked.
    let values = unsafe {
        table_of_index(oid);
        let index = pg_sys::index_open(oid, lock);
        let values = index_stats(index, &am_name_of(index), full);
        pg_sys::index_close(index, lock);
        values
    };
    args.record(&values)
});

// `vector_ext_index_repair(regclass) RETURNS bigint`: links back the hnsw
// elements no search reaches, as a VACUUM that removed rows does, and
// returns how many it linked. VACUUM runs this pass only after removing
// rows (an insert-only table's VACUUM reads no index page); elements an
// insert left unreachable without any row removed are rare (inserts adopt
// the links they evict) and iterative scans sweep them up meanwhile.
// Takes ShareUpdateExclusiveLock, as VACUUM: inserts and scans go on.
pg_function!(pg_finfo_vx_index_repair, vx_index_repair, |args| {
    let oid = pg_sys::Oid::from(args.datum(0).value() as u32);
    let lock = pg_sys::ShareUpdateExclusiveLock as pg_sys::LOCKMODE;
    // SAFETY: as in vx_index_check.
    let relinked = unsafe {
        pg_sys::PreventCommandDuringRecovery(c"vector_ext_index_repair()".as_ptr());
        let (heap, index, am_name) = open_index(oid, lock);
        if am_name != "hnsw" {
            not_ours(index, "an hnsw");
        }
        let store = BufferStore::logged(index);
        let budget = am::vacuum_work_mem_bytes();
        let reach = hnsw::reach::repair_reachability(&store, budget, am::check_for_interrupts)
            .unwrap_or_else(|e| am::corrupted_index(index, e));
        let relinked = match reach {
            hnsw::reach::Reach::Relinked(n) => n,
            hnsw::reach::Reach::OverBudget { needs, .. } => am::error(
                PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "linking back the unreachable elements of index \"{}\" needs {} MB, maintenance_work_mem is {} MB",
                    am::relation_name(index),
                    needs.div_ceil(1 << 20),
                    budget >> 20
                ),
                Some("Raise maintenance_work_mem."),
            ),
        };
        close_index(heap, index, lock);
        relinked
    };
    pg_sys::Datum::from(relinked as i64)
});
