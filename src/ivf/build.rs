//! CREATE INDEX: a first heap scan keeps a uniform sample of the rows
//! (reservoir sampling, bounded by maintenance_work_mem as in pgvector);
//! k-means finds the list centers on rayon threads; a second heap scan
//! assigns the rows to their nearest center in parallel batches and the
//! list writer lays each list out on pages as it fills. The pages are
//! written without WAL and logged once with log_newpage_range.

use super::{index_lists, opclass_metric};
use crate::am;
use crate::storage::{relation_needs_wal, BufferStore};
use distance::{Metric, Storage};
use ivf::build::ListWriter;
use ivf::kmeans::{self, CenterBlock, Rng, BLOCK_ROWS};
use pagestore::{PageStore, Tid};
use pgrx::pg_sys;
use pgrx::pg_sys::elog::PgLogLevel;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::pg_sys::panic::ErrorReport;
use rayon::prelude::*;

pub const PHASE_KMEANS: i64 = 2;
pub const PHASE_ASSIGN: i64 = 3;
pub const PHASE_LOAD: i64 = 4;

/// Rows assigned per parallel batch (at most; see `batch_rows`).
const BATCH_ROWS: usize = 8192;
/// Lloyd iterations at most (they usually stop earlier, see TOLERANCE).
const MAX_ITERATIONS: usize = 100;
/// k-means stops once an iteration moves at most this share of the
/// samples: the last iterations of Lloyd's algorithm shuffle a few
/// borderline samples between neighbouring lists, which changes neither
/// the lists' shape nor recall, and in 384 dimensions each costs nearly a
/// full pass (the bounds rarely spare a sample whose cluster moved).
const TOLERANCE: f64 = 0.001;
/// MaxHeapTuplesPerPage (a macro pgrx does not export): line pointers
/// plus minimal tuple headers that fit an 8 kB heap page.
const MAX_HEAP_TUPLES_PER_PAGE: usize = (8192 - 24) / (24 + 4);
/// Builds are repeatable: the sample and the seeding use a fixed seed.
const SEED: u64 = 0x5658_4956_4646_0001;

/// What the index's column, options and operator class ask for, checked.
struct Setup {
    metric: Metric,
    storage: Storage,
    dims: usize,
    lists: usize,
}

impl Setup {
    /// # Safety
    /// `index` must be a valid, open ivfflat index relation.
    unsafe fn of(index: pg_sys::Relation) -> Setup {
        // SAFETY: per the contract.
        let (metric, storage) = unsafe { opclass_metric(index) };
        let most = ivf::format::max_dims_for(storage.element_size());
        // SAFETY: per the contract.
        let dims = unsafe { am::index_dimensions(index, "ivfflat", storage, most) };
        if spherical(metric) && dims == 1 {
            am::error(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "dimensions must be greater than one for this opclass".into(),
                None,
            );
        }
        // SAFETY: per the contract.
        let lists = unsafe { index_lists(index) };
        Setup {
            metric,
            storage,
            dims,
            lists,
        }
    }

    /// Bytes of one vector as pgvector counts them (a varlena vector).
    fn item_bytes(&self) -> usize {
        (8 + 4 * self.dims + 7) & !7
    }
}

/// Cosine and inner product cluster unit vectors (pgvector's FUNCTION 4).
fn spherical(metric: Metric) -> bool {
    matches!(metric, Metric::Cosine | Metric::InnerProduct)
}

/// Errors as pgvector does when the build's arrays outgrow
/// maintenance_work_mem.
fn check_memory(bytes: usize) {
    // SAFETY: reading a GUC variable on the backend thread.
    let mwm_kb = unsafe { pg_sys::maintenance_work_mem } as usize;
    if bytes / 1024 > mwm_kb {
        am::error(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!(
                "memory required is {} MB, maintenance_work_mem is {} MB",
                bytes / (1024 * 1024) + 1,
                mwm_kb / 1024
            ),
            None,
        );
    }
}

/// A uniform sample of the rows (reservoir sampling), in the form k-means
/// clusters: unit length under a spherical metric (rows with a zero norm
/// are skipped).
///
/// # Safety
/// As for `am::scan_rows`.
unsafe fn sample_rows(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    index_info: *mut pg_sys::IndexInfo,
    setup: &Setup,
) -> Vec<f32> {
    // SAFETY: heap is open.
    let heap_blocks =
        unsafe { pg_sys::RelationGetNumberOfBlocksInFork(heap, pg_sys::ForkNumber::MAIN_FORKNUM) }
            as usize;
    let max_tuples = heap_blocks * MAX_HEAP_TUPLES_PER_PAGE;
    // 50 samples per list, at least 10000, as in pgvector.
    let target = (setup.lists * 50).max(10000).min(max_tuples).max(1);
    // pgvector checks the whole target up front; the sample only grows to
    // the rows the table has, so check as it grows and report the target.
    let item = setup.item_bytes();
    let fits = (am::maintenance_work_mem_bytes() / item).saturating_sub(setup.lists);
    check_memory(setup.lists * item);
    let dims = setup.dims;
    let sphere = spherical(setup.metric);
    let mut samples: Vec<f32> = Vec::new();
    let mut rng = Rng::new(SEED);
    let mut seen = 0usize;
    let mut sink = |v: &[f32], _tid: Tid| {
        let mut unit;
        let v = if sphere {
            unit = v.to_vec();
            if !kmeans::normalize(&mut unit) {
                return;
            }
            &unit[..]
        } else {
            v
        };
        seen += 1;
        if samples.len() < target * dims {
            if samples.len() == fits * dims {
                check_memory((setup.lists + target) * item);
            }
            samples.extend_from_slice(v);
        } else {
            let j = rng.below(seen);
            if j < target {
                samples[j * dims..(j + 1) * dims].copy_from_slice(v);
            }
        }
    };
    // SAFETY: per the contract.
    unsafe {
        am::scan_rows(
            heap,
            index,
            index_info,
            false,
            setup.storage,
            &mut words(dims, &mut sink),
        )
    };
    samples
}

/// The list centers for `samples`, on the build pool. Bit strings are
/// clustered as 0/1 values (one f32 per bit) and each center becomes its
/// majority bits.
fn centers(setup: &Setup, samples: &[f32], pool: &rayon::ThreadPool) -> Vec<f32> {
    if !setup.metric.is_bits() {
        return centers_of(setup, samples, setup.dims, pool);
    }
    let bits = 32 * setup.dims;
    check_memory(4 * bits * (samples.len() / setup.dims + setup.lists));
    let mut expanded = Vec::with_capacity(samples.len() * 32);
    for words in samples.chunks_exact(setup.dims) {
        kmeans::expand_bits(words, &mut expanded);
    }
    let centers = centers_of(setup, &expanded, bits, pool);
    centers
        .chunks_exact(bits)
        .flat_map(kmeans::pack_bits)
        .collect()
}

/// k-means of `samples` of `dims` values into the setup's lists.
fn centers_of(setup: &Setup, samples: &[f32], dims: usize, pool: &rayon::ThreadPool) -> Vec<f32> {
    let params = kmeans::Params {
        k: setup.lists,
        spherical: spherical(setup.metric),
        max_iterations: MAX_ITERATIONS,
        tolerance: TOLERANCE,
        seed: SEED,
        // what maintenance_work_mem leaves after the samples and centers
        bounds_budget: am::maintenance_work_mem_bytes()
            .saturating_sub(4 * (samples.len() + setup.lists * dims)),
    };
    let t = std::time::Instant::now();
    let (centers, report) =
        kmeans::kmeans(samples, dims, &params, pool, || am::check_for_interrupts());
    pgrx::debug1!(
        "ivfflat build: k-means of {} samples into {} lists on {} threads: {} iterations, {:.2}s, inertia {:.4e}",
        samples.len() / dims,
        setup.lists,
        pool.current_num_threads(),
        report.iterations,
        t.elapsed().as_secs_f64(),
        report.inertia
    );
    // what the list pages will hold, so rows are assigned by the centers
    // inserts and scans will read
    let mut centers = centers;
    setup.storage.round(&mut centers);
    centers
}

/// Rows waiting for their list, assigned in parallel a batch at a time.
struct Assigner<'w, 's> {
    writer: &'w mut ListWriter<'s, BufferStore>,
    centers: CenterBlock<'w>,
    metric: Metric,
    dims: usize,
    tids: Vec<Tid>,
    vectors: Vec<f32>,
    batch_rows: usize,
    pool: &'w rayon::ThreadPool,
}

impl Assigner<'_, '_> {
    fn add(&mut self, v: &[f32], tid: Tid) {
        let Some(p) = self.metric.prepare_words(v) else {
            return; // cosine cannot order a zero vector: not indexed
        };
        self.tids.push(tid);
        self.vectors.extend_from_slice(&p);
        if self.tids.len() >= self.batch_rows {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.tids.is_empty() {
            return;
        }
        am::check_for_interrupts();
        let (centers, metric, dims) = (&self.centers, self.metric, self.dims);
        let lists: Vec<u32> = self.pool.install(|| {
            self.vectors
                .par_chunks(BLOCK_ROWS * dims)
                .flat_map_iter(|rows| {
                    let mut lists = Vec::with_capacity(BLOCK_ROWS);
                    centers.nearest(rows, metric, &mut lists);
                    lists
                })
                .collect()
        });
        for ((list, tid), v) in lists.iter().zip(&self.tids).zip(self.vectors.chunks(dims)) {
            self.writer.push(*list as usize, *tid, v);
        }
        self.tids.clear();
        self.vectors.clear();
        am::report_progress(
            pg_sys::PROGRESS_CREATEIDX_TUPLES_DONE,
            self.writer.tuples() as i64,
        );
    }
}

/// Writes an index with `centers` into the empty `store`; `rows` feeds it
/// the rows (none for an empty index). Returns the rows indexed.
fn write_index(
    store: &BufferStore,
    setup: &Setup,
    centers: &[f32],
    pool: &rayon::ThreadPool,
    rows: impl FnOnce(&mut dyn FnMut(&[f32], Tid)),
) -> u64 {
    let dims = setup.dims;
    let mwm = am::maintenance_work_mem_bytes();
    let batch_rows = (mwm / 4 / (4 * dims + 8)).clamp(64, BATCH_ROWS);
    let budget = mwm.saturating_sub(4 * centers.len() + batch_rows * (4 * dims + 8));
    let mut writer = ListWriter::begin(store, dims, setup.metric, setup.storage, centers, budget)
        .unwrap_or_else(|e| am::error(PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED, e, None));
    let mut a = Assigner {
        writer: &mut writer,
        centers: CenterBlock::new(centers, dims),
        metric: setup.metric,
        dims,
        tids: Vec::with_capacity(batch_rows),
        vectors: Vec::with_capacity(batch_rows * dims),
        batch_rows,
        pool,
    };
    rows(&mut |v, tid| a.add(v, tid));
    a.flush();
    am::report_progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_LOAD);
    let tuples = writer.tuples();
    writer
        .finish()
        .unwrap_or_else(|e| am::corrupted_index(store.relation(), e));
    tuples
}

am::ambuild!(build);

/// # Safety
/// `ambuild`'s relations, open and locked.
unsafe fn build(call: am::BuildCall) -> *mut pg_sys::IndexBuildResult {
    let (heap, index, index_info) = (call.heap, call.index, call.index_info);
    let store = call.store;
    // SAFETY: per the contract.
    let setup = unsafe { Setup::of(index) };
    // SAFETY: the relations ambuild got.
    let pool = am::build_pool(unsafe { am::build_workers(heap, index) });
    am::report_progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_KMEANS);
    let started = std::time::Instant::now();
    // SAFETY: the relations ambuild got.
    let samples = unsafe { sample_rows(heap, index, index_info, &setup) };
    let sampled = samples.len() / setup.dims;
    pgrx::debug1!(
        "ivfflat build: sampled {sampled} rows in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    if sampled < setup.lists {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
            "ivfflat index created with little data".to_string(),
            "vector_ext",
        )
        .set_detail("This will cause low recall.")
        .set_hint("Drop the index until the table has more data.")
        .report(PgLogLevel::NOTICE);
    }
    let centers = centers(&setup, &samples, &pool);
    drop(samples);

    am::report_progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_ASSIGN);
    let t = std::time::Instant::now();
    let mut reltuples = 0.0;
    let indexed = write_index(&store, &setup, &centers, &pool, |sink| {
        // SAFETY: the relations ambuild got.
        let sink = &mut words(setup.dims, sink);
        reltuples = unsafe { am::scan_rows(heap, index, index_info, true, setup.storage, sink) };
    });
    pgrx::debug1!(
        "ivfflat build: assigned and wrote {indexed} rows ({} pages) in {:.2}s",
        store.nblocks(),
        t.elapsed().as_secs_f64()
    );
    // SAFETY: index is open.
    if unsafe { relation_needs_wal(index) } {
        store.log_all_pages();
    }
    // SAFETY: palloc0 of a plain C struct, returned to Postgres.
    unsafe {
        let result = pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexBuildResult>())
            as *mut pg_sys::IndexBuildResult;
        (*result).heap_tuples = reltuples;
        (*result).index_tuples = indexed as f64;
        result
    }
}

/// The init fork of an index on an UNLOGGED table: the metapage and lists
/// with random centers (there is no data to cluster), always WAL-logged so
/// that it exists after a crash.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuildempty(index: pg_sys::Relation) {
    // SAFETY: Postgres hands ambuildempty an open, locked index.
    let setup = unsafe { Setup::of(index) };
    check_memory(setup.lists * setup.item_bytes());
    let store = BufferStore::unlogged(index, pg_sys::ForkNumber::INIT_FORKNUM);
    let pool = am::build_pool(0);
    let centers = centers(&setup, &[], &pool);
    write_index(&store, &setup, &centers, &pool, |_| {});
    store.log_all_pages();
}

am::ambuildphasename!(
    PHASE_KMEANS => c"performing k-means",
    PHASE_ASSIGN => c"assigning tuples",
    PHASE_LOAD => c"loading tuples",
);

/// A sink of rows in the word form the ivf crate takes, as a sink of the
/// elements a heap scan reads (checked for the index's dimensions).
fn words<'s>(
    dims: usize,
    sink: &'s mut dyn FnMut(&[f32], Tid),
) -> impl FnMut(distance::Element, Tid) + 's {
    move |v, tid| {
        am::expect_dims(v, dims);
        am::with_words(v, |w| sink(w, tid))
    }
}
