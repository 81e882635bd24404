//! CREATE INDEX: the heap scan feeds an in-memory graph while it fits in
//! maintenance_work_mem; rayon threads link it (pure computation, the
//! backend checks for interrupts and reports progress between batches);
//! then it is written to pages without WAL and logged once with
//! log_newpage_range. When the graph outgrows maintenance_work_mem it is
//! linked and written at that point, and the remaining rows are inserted
//! into the on-disk graph one by one, as pgvector does.

use super::{index_formats, index_options, Formats, LEVEL_SEED};
use crate::am;
use crate::storage::{relation_needs_wal, BufferStore};
use distance::Element;
use hnsw::format::tid_payload;
use hnsw::write::{write_graph, write_graph_in, WriteError};
use hnsw::{BuildGraph, BuildParams};
use pagestore::PageStore;
use pgrx::pg_sys;
use pgrx::pg_sys::elog::PgLogLevel;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::pg_sys::panic::ErrorReport;

pub const PHASE_LOAD: i64 = 2;
pub const PHASE_LINK: i64 = 3;
pub const PHASE_WRITE: i64 = 4;

/// Nodes linked per parallel step of the in-memory build.
const LINK_BATCH: usize = 1024;

struct BuildState {
    index: pg_sys::Relation,
    store: BufferStore,
    dims: usize,
    /// How the pages store elements.
    stored: hnsw::Storage,
    /// The in-memory graph; None once the build continues on disk.
    graph: Option<BuildGraph>,
    memory_limit: usize,
    /// Rows given to the index (NULLs and zero vectors under cosine excluded).
    indexed: u64,
    pool: rayon::ThreadPool,
}

/// What the index's options and operator class ask for, checked.
///
/// # Safety
/// `index` must be a valid, open hnsw index relation.
unsafe fn build_params(index: pg_sys::Relation) -> (BuildParams, usize, hnsw::Storage) {
    // SAFETY: per the contract.
    let Formats {
        metric,
        input,
        stored,
        bits,
    } = unsafe { index_formats(index) };
    let most = hnsw::format::most_dims(stored, bits);
    // SAFETY: per the contract.
    let dims = unsafe { am::index_dimensions(index, "hnsw", input, most) };
    // SAFETY: per the contract.
    let (m, ef_construction) = unsafe { index_options(index) };
    if ef_construction < 2 * m {
        am::error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "ef_construction must be greater than or equal to 2 * m".into(),
            None,
        );
    }
    let params = BuildParams {
        m,
        ef_construction,
        metric,
        seed: LEVEL_SEED,
        // an index of codes is built on the vectors as the column has them
        storage: if stored.is_quantized() { input } else { stored },
        quantize: stored.is_quantized().then_some(hnsw::Quantize {
            seed: super::ROTATION_SEED,
            bits,
        }),
    };
    (params, dims, input)
}

impl BuildState {
    fn add(&mut self, v: Element, tid: pagestore::Tid) {
        super::check_value(v, self.dims, self.stored);
        if let Some(g) = &self.graph {
            // the graph, what writing it takes, and one node more
            let next = g.bytes_per_node() + hnsw::write::WRITE_BYTES_PER_NODE;
            if !g.is_empty() && g.memory_bytes() + g.write_bytes() + next > self.memory_limit {
                ErrorReport::new(
                    PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
                    format!(
                        "hnsw graph no longer fits into maintenance_work_mem after {} tuples",
                        g.len()
                    ),
                    "vector_ext",
                )
                .set_detail("Building will take significantly more time.")
                .set_hint("Increase maintenance_work_mem to speed up builds.")
                .report(PgLogLevel::NOTICE);
                self.flush_graph();
                am::report_progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_LOAD);
            }
        }
        match &mut self.graph {
            Some(g) => match g.try_push(v, tid_payload(tid)) {
                Ok(Some(_)) => self.indexed += 1,
                Ok(None) => {}
                Err(_) => am::out_of_memory(format!(
                    "Failed to grow the hnsw build's graph of {} tuples ({} MB; maintenance_work_mem is {} MB).",
                    g.len(),
                    g.memory_bytes() >> 20,
                    self.memory_limit >> 20
                )),
            },
            None => match hnsw::insert::insert(&self.store, v, tid, LEVEL_SEED) {
                Ok(hnsw::insert::Inserted::NotIndexed) => {}
                Ok(_) => {
                    self.indexed += 1;
                    am::report_progress(
                        pg_sys::PROGRESS_CREATEIDX_TUPLES_DONE,
                        self.indexed as i64,
                    );
                }
                Err(e) => am::corrupted_index(self.index, e),
            },
        }
    }

    /// Links the in-memory graph and writes it to the (empty) index.
    fn flush_graph(&mut self) {
        let Some(mut g) = self.graph.take() else {
            return;
        };
        am::report_progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_LINK);
        am::report_progress(pg_sys::PROGRESS_CREATEIDX_TUPLES_TOTAL, g.len() as i64);
        am::check_for_interrupts();
        // an index of codes links on four-bit codes of the vectors when they
        // fit, others on a binary16 copy of the vectors when it fits
        let codes =
            g.link_code_bytes() > 0 && g.memory_bytes() + g.link_code_bytes() <= self.memory_limit;
        g.use_codes(codes);
        let half_copy = !codes && g.memory_bytes() + g.half_copy_bytes() <= self.memory_limit;
        g.use_half_copy(half_copy);
        let t = std::time::Instant::now();
        g.insert_pending(&self.pool, LINK_BATCH, |linked| {
            am::check_for_interrupts();
            am::report_progress(pg_sys::PROGRESS_CREATEIDX_TUPLES_DONE, linked as i64);
        });
        pgrx::debug1!(
            "hnsw build: linked {} vectors on {} threads in {:.2}s ({} MB{})",
            g.len(),
            self.pool.current_num_threads(),
            t.elapsed().as_secs_f64(),
            g.memory_bytes() >> 20,
            if codes {
                format!(", and {} MB for four-bit codes", g.link_code_bytes() >> 20)
            } else if half_copy && g.half_copy_bytes() > 0 {
                format!(", and {} MB for a binary16 copy", g.half_copy_bytes() >> 20)
            } else {
                String::new()
            }
        );
        am::report_progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_WRITE);
        let t = std::time::Instant::now();
        // codes (an index of codes) are made on the build's threads
        let written = write_graph_in(&g, &self.store, Some(&self.pool), &mut || {
            am::check_for_interrupts()
        });
        if let Err(e) = written {
            write_failed(e, &g);
        }
        pgrx::debug1!(
            "hnsw build: wrote {} pages in {:.2}s",
            self.store.nblocks(),
            t.elapsed().as_secs_f64()
        );
    }
}

/// The ERROR for a graph `write_graph` could not write.
fn write_failed(e: WriteError, g: &BuildGraph) -> ! {
    match e {
        WriteError::TooLarge(e) => {
            am::error(PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED, e, None)
        }
        WriteError::OutOfMemory => am::out_of_memory(format!(
            "Failed to plan the pages of an hnsw graph of {} tuples ({} MB).",
            g.len(),
            g.write_bytes() >> 20
        )),
    }
}

am::ambuild!(build);

/// # Safety
/// `ambuild`'s relations, open and locked.
unsafe fn build(call: am::BuildCall) -> *mut pg_sys::IndexBuildResult {
    let am::BuildCall {
        heap,
        index,
        index_info,
        store,
    } = call;
    // SAFETY: per the contract.
    let (params, dims, input) = unsafe { build_params(index) };
    am::report_progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_LOAD);
    let mut state = BuildState {
        index,
        store,
        dims,
        stored: params.storage,
        graph: Some({
            let mut g = BuildGraph::new(params, dims);
            g.set_memory_limit(am::maintenance_work_mem_bytes());
            g
        }),
        memory_limit: am::maintenance_work_mem_bytes(),
        indexed: 0,
        // SAFETY: the relations ambuild got.
        pool: am::build_pool(unsafe { am::build_workers(heap, index) }),
    };
    let started = std::time::Instant::now();
    // SAFETY: the relations ambuild got.
    let reltuples = unsafe {
        am::scan_rows(heap, index, index_info, true, input, &mut |v, tid| {
            state.add(v, tid)
        })
    };
    pgrx::debug1!(
        "hnsw build: scanned {reltuples} rows in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    state.flush_graph();
    // SAFETY: index is open.
    if unsafe { relation_needs_wal(index) } {
        let t = std::time::Instant::now();
        state.store.log_all_pages();
        pgrx::debug1!(
            "hnsw build: logged all pages in {:.2}s",
            t.elapsed().as_secs_f64()
        );
    }
    // SAFETY: palloc0 of a plain C struct, returned to Postgres.
    unsafe {
        let result = pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexBuildResult>())
            as *mut pg_sys::IndexBuildResult;
        (*result).heap_tuples = reltuples;
        (*result).index_tuples = state.indexed as f64;
        result
    }
}

/// The init fork of an index on an UNLOGGED table: an empty index (just the
/// metapage), always WAL-logged so that it exists after a crash.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuildempty(index: pg_sys::Relation) {
    // SAFETY: Postgres hands ambuildempty an open, locked index.
    let (params, dims, _) = unsafe { build_params(index) };
    let store = BufferStore::unlogged(index, pg_sys::ForkNumber::INIT_FORKNUM);
    let g = BuildGraph::new(params, dims);
    if let Err(e) = write_graph(&g, &store) {
        write_failed(e, &g);
    }
    store.log_all_pages();
}

am::ambuildphasename!(
    PHASE_LOAD => c"loading tuples",
    PHASE_LINK => c"building graph",
    PHASE_WRITE => c"writing index pages",
);
