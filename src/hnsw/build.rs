//! CREATE INDEX: the heap scan feeds an in-memory graph while it fits in
//! maintenance_work_mem; rayon threads link it (pure computation, the
//! backend checks for interrupts and reports progress between batches);
//! then it is written to pages without WAL and logged once with
//! log_newpage_range. When the graph outgrows maintenance_work_mem it is
//! linked and written at that point, and the remaining rows are inserted
//! into the on-disk graph one by one, as pgvector does: by the backend
//! alone, or with parallel workers by the leader and the workers together,
//! each taking the next heap blocks in turn (`scan_in_parts`); then one
//! pass links back any element those inserts left unreachable.

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
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// Rows the in-memory graph held when it was written.
    in_graph: u64,
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
                self.flush_graph(false);
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
            None => {
                if insert_on_pages(&self.store, v, tid) {
                    self.indexed += 1;
                    am::report_progress(
                        pg_sys::PROGRESS_CREATEIDX_TUPLES_DONE,
                        self.indexed as i64,
                    );
                }
            }
        }
    }

    /// After rows were inserted on pages (the graph outgrew memory): links
    /// back the elements those inserts left without an in-link (racing
    /// each other in a parallel build, or a link-back evicting an
    /// element's last in-link), as VACUUM does, so that the new index
    /// reaches every row. One pass over the pages, within
    /// maintenance_work_mem; skipped (DEBUG1 says so) when that cannot
    /// hold the pass.
    fn relink(&mut self) {
        let t = std::time::Instant::now();
        let reach = hnsw::reach::repair_reachability(
            &self.store,
            self.memory_limit,
            am::check_for_interrupts,
        )
        .unwrap_or_else(|e| am::corrupted_index(self.index, e));
        match reach {
            hnsw::reach::Reach::Relinked(n) => pgrx::debug1!(
                "hnsw build: linked back {n} unreachable elements in {:.2}s",
                t.elapsed().as_secs_f64()
            ),
            hnsw::reach::Reach::OverBudget { needs, .. } => pgrx::debug1!(
                "hnsw build: not linking back unreachable elements: that needs {} MB",
                needs >> 20
            ),
        }
    }

    /// Links the in-memory graph and writes it to the (empty) index;
    /// `last` when no row follows, so that its pages are WAL-logged as they
    /// are written (`BufferStore::log_appends`), not read back at the end.
    fn flush_graph(&mut self, last: bool) {
        let Some(mut g) = self.graph.take() else {
            return;
        };
        self.in_graph = g.len() as u64;
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
        self.store.log_appends(last);
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
    // SAFETY: the relations ambuild got.
    let workers = unsafe { am::build_workers(heap, index) };
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
        in_graph: 0,
        pool: am::build_pool(workers),
    };
    let started = std::time::Instant::now();
    // SAFETY: the relations ambuild got.
    let reltuples = unsafe {
        if workers == 0 || (*index_info).ii_Concurrent {
            am::scan_rows(heap, index, index_info, true, input, &mut |v, tid| {
                state.add(v, tid)
            })
        } else {
            scan_in_parts(&mut state, heap, index_info, input, workers)
        }
    };
    pgrx::debug1!(
        "hnsw build: scanned {reltuples} rows in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    state.flush_graph(true);
    if state.indexed > state.in_graph {
        state.relink();
    }
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

/// Inserts a (checked) row into the index on `store`'s pages, as a build
/// whose graph outgrew memory does; whether it was indexed.
fn insert_on_pages(store: &BufferStore, v: Element, tid: pagestore::Tid) -> bool {
    match hnsw::insert::insert(store, v, tid, LEVEL_SEED) {
        Ok(hnsw::insert::Inserted::NotIndexed) => false,
        Ok(_) => true,
        Err(e) => am::corrupted_index(store.relation(), e),
    }
}

/// Heap blocks a participant of a parallel build scans at a time.
const PART_BLOCKS: u64 = 32;

/// The heap scan of a build with parallel workers (not CONCURRENTLY): the
/// leader scans the heap part by part into the in-memory graph; if the
/// graph outgrows maintenance_work_mem, it is written, the leader inserts
/// the rest of that part on pages, and then the leader and `workers`
/// parallel workers insert the remaining parts on pages together, each
/// taking the next part from a shared counter. Returns the heap tuples
/// scanned.
///
/// # Safety
/// The relations ambuild got; `index_info` not concurrent.
unsafe fn scan_in_parts(
    state: &mut BuildState,
    heap: pg_sys::Relation,
    index_info: *mut pg_sys::IndexInfo,
    input: hnsw::Storage,
    workers: usize,
) -> f64 {
    let index = state.index;
    // SAFETY: heap is open; under the build's ShareLock no rows are added.
    let blocks =
        unsafe { pg_sys::RelationGetNumberOfBlocksInFork(heap, pg_sys::ForkNumber::MAIN_FORKNUM) }
            as u64;
    am::report_progress(pg_sys::PROGRESS_SCAN_BLOCKS_TOTAL, blocks as i64);
    let mut tuples = 0.0;
    let mut next = 0u64;
    while next < blocks && state.graph.is_some() {
        let n = PART_BLOCKS.min(blocks - next);
        // SAFETY: per the contract.
        tuples += unsafe {
            am::scan_row_range(
                heap,
                index,
                index_info,
                input,
                next as u32,
                n as u32,
                &mut |v, tid| state.add(v, tid),
            )
        };
        next += n;
        am::report_progress(pg_sys::PROGRESS_SCAN_BLOCKS_DONE, next as i64);
    }
    if next >= blocks {
        return tuples;
    }
    // rows the leader inserted on pages after writing the graph, in the
    // rest of the part it was scanning
    let tail = state.indexed - state.in_graph;
    // SAFETY: heap and index are open relations of this backend.
    let (heap_oid, index_oid) = unsafe { ((*heap).rd_id, (*index).rd_id) };
    let parts = Parts {
        heap: heap_oid,
        index: index_oid,
        blocks,
        indexed_before: state.indexed,
        next: AtomicU64::new(next),
        tuples: AtomicU64::new(0),
        indexed: AtomicU64::new(0),
    };
    // SAFETY: the leader's relations, open and locked; the workers open
    // their own under the group's locks.
    let (launched, mine, counts) = unsafe {
        with_parallel_workers(parts, workers, |shared| {
            let store = BufferStore::unlogged_shared(index);
            insert_parts(
                shared,
                heap,
                &store,
                index_info,
                input,
                state.dims,
                state.stored,
                true,
            )
        })
    };
    pgrx::debug1!(
        "hnsw build: the leader inserted {} rows on pages beside {launched} parallel workers, from heap block {next}",
        tail + mine,
    );
    state.indexed += counts.indexed;
    tuples + counts.tuples as f64
}

/// What the participants of a build's on-page inserts share, in the
/// parallel context's dynamic shared memory.
#[repr(C)]
struct Parts {
    heap: pg_sys::Oid,
    index: pg_sys::Oid,
    blocks: u64,
    /// Rows indexed before the participants started (progress reports).
    indexed_before: u64,
    /// The first heap block no participant has taken yet.
    next: AtomicU64,
    /// Heap tuples scanned and rows indexed, by all participants.
    tuples: AtomicU64,
    indexed: AtomicU64,
}

/// The key of `Parts` in the parallel context's table of contents.
const PARTS_KEY: u64 = 0x5658_4857_0000_0001;

/// What the participants of `with_parallel_workers` scanned and indexed.
struct Counts {
    tuples: u64,
    indexed: u64,
}

/// Runs `leader` with `parts` in a parallel context's shared memory while
/// `workers` parallel workers run `vector_ext_hnsw_build_worker` on it,
/// then waits for them (their errors are raised here). Returns the number
/// of workers launched, what `leader` returned, and the shared counts.
///
/// # Safety
/// In ambuild, on the backend's thread.
unsafe fn with_parallel_workers<R>(
    parts: Parts,
    workers: usize,
    leader: impl FnOnce(&Parts) -> R,
) -> (usize, R, Counts) {
    // SAFETY: the parallel context API as Postgres' own parallel index
    // builds use it: entered, sized, filled before the launch, and torn
    // down after every worker finished. The shared Parts is plain data
    // and atomics, valid in every process that maps the segment.
    unsafe {
        pg_sys::EnterParallelMode();
        let pcxt = pg_sys::CreateParallelContext(
            c"vector_ext".as_ptr(),
            c"vector_ext_hnsw_build_worker".as_ptr(),
            workers as i32,
        );
        let size =
            std::mem::size_of::<Parts>().next_multiple_of(pg_sys::MAXIMUM_ALIGNOF as usize * 4);
        (*pcxt).estimator.space_for_chunks += size;
        (*pcxt).estimator.number_of_keys += 1;
        pg_sys::InitializeParallelDSM(pcxt);
        let shared = pg_sys::shm_toc_allocate((*pcxt).toc, size) as *mut Parts;
        shared.write(parts);
        pg_sys::shm_toc_insert((*pcxt).toc, PARTS_KEY, shared as *mut std::ffi::c_void);
        pg_sys::LaunchParallelWorkers(pcxt);
        let launched = (*pcxt).nworkers_launched.max(0) as usize;
        let r = leader(&*shared);
        pg_sys::WaitForParallelWorkersToFinish(pcxt);
        let counts = Counts {
            tuples: (*shared).tuples.load(Ordering::SeqCst),
            indexed: (*shared).indexed.load(Ordering::SeqCst),
        };
        pg_sys::DestroyParallelContext(pcxt);
        pg_sys::ExitParallelMode();
        (launched, r, counts)
    }
}

/// Takes parts of the heap from `parts` until none is left and inserts
/// their rows into the graph on pages, adding to the shared counts.
/// Returns the rows this participant indexed.
///
/// # Safety
/// Relations open in this process under the build's locks.
#[allow(clippy::too_many_arguments)]
unsafe fn insert_parts(
    parts: &Parts,
    heap: pg_sys::Relation,
    store: &BufferStore,
    index_info: *mut pg_sys::IndexInfo,
    input: hnsw::Storage,
    dims: usize,
    stored: hnsw::Storage,
    leader: bool,
) -> u64 {
    let index = store.relation();
    let mut mine = 0;
    loop {
        let start = parts.next.fetch_add(PART_BLOCKS, Ordering::SeqCst);
        if start >= parts.blocks {
            return mine;
        }
        let n = PART_BLOCKS.min(parts.blocks - start);
        let mut indexed = 0u64;
        // SAFETY: per the contract.
        let tuples = unsafe {
            am::scan_row_range(
                heap,
                index,
                index_info,
                input,
                start as u32,
                n as u32,
                &mut |v, tid| {
                    super::check_value(v, dims, stored);
                    indexed += u64::from(insert_on_pages(store, v, tid));
                },
            )
        };
        parts.tuples.fetch_add(tuples as u64, Ordering::SeqCst);
        mine += indexed;
        let done = parts.indexed.fetch_add(indexed, Ordering::SeqCst) + indexed;
        if leader {
            am::report_progress(
                pg_sys::PROGRESS_CREATEIDX_TUPLES_DONE,
                (parts.indexed_before + done) as i64,
            );
            am::report_progress(
                pg_sys::PROGRESS_SCAN_BLOCKS_DONE,
                (start + n).min(parts.blocks) as i64,
            );
        }
    }
}

/// A parallel worker of an hnsw build: inserts parts of the heap on pages
/// beside the leader (`scan_in_parts`). Postgres calls it by name.
///
/// # Safety
/// Called by Postgres' parallel worker machinery with the leader's
/// segment and table of contents.
#[pgrx::pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_ext_hnsw_build_worker(
    _seg: *mut pg_sys::dsm_segment,
    toc: *mut pg_sys::shm_toc,
) {
    // SAFETY: the leader put Parts under PARTS_KEY before launching; the
    // locks are the leader's (a non-concurrent build), shared by the
    // lock group, as btree's parallel build workers take them.
    unsafe {
        let parts = &*(pg_sys::shm_toc_lookup(toc, PARTS_KEY, false) as *const Parts);
        let heap = pg_sys::table_open(parts.heap, pg_sys::ShareLock as i32);
        let index = pg_sys::index_open(parts.index, pg_sys::AccessExclusiveLock as i32);
        let index_info = pg_sys::BuildIndexInfo(index);
        let (params, dims, input) = build_params(index);
        let store = BufferStore::unlogged_shared(index);
        let mine = insert_parts(
            parts,
            heap,
            &store,
            index_info,
            input,
            dims,
            params.storage,
            false,
        );
        pgrx::debug1!("hnsw build: a parallel worker inserted {mine} rows on pages");
        pg_sys::index_close(index, pg_sys::AccessExclusiveLock as i32);
        pg_sys::table_close(heap, pg_sys::ShareLock as i32);
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
