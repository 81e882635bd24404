use super::*;
use crate::select::random_level;
use std::collections::{HashSet, VecDeque};

use testkit::Rng;

/// Points around `clusters` random centres: harder than uniform noise for
/// graph connectivity, closer to real embeddings.
fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<Vec<f32>> {
    clustered_from(n, dim, clusters, seed, seed)
}

/// Points around centres drawn from `centre_seed`, with noise from
/// `point_seed`: the same centres with another seed give in-distribution
/// queries; other centres give queries between the clusters.
fn clustered_from(
    n: usize,
    dim: usize,
    clusters: usize,
    centre_seed: u64,
    point_seed: u64,
) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(centre_seed);
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..dim).map(|_| rng.centered() * 4.0).collect())
        .collect();
    let mut rng = Rng::new(point_seed ^ 0x5555);
    (0..n)
        .map(|i| {
            centres[i % clusters]
                .iter()
                .map(|c| c + rng.centered())
                .collect()
        })
        .collect()
}

fn build(
    pool: &rayon::ThreadPool,
    data: &[Vec<f32>],
    metric: Metric,
    m: usize,
    ef: usize,
) -> BuildGraph {
    build_with(pool, data, metric, m, ef, true)
}

/// `build`, linking on the binary16 copy or on the f32 vectors.
fn build_with(
    pool: &rayon::ThreadPool,
    data: &[Vec<f32>],
    metric: Metric,
    m: usize,
    ef: usize,
    half_copy: bool,
) -> BuildGraph {
    let mut g = BuildGraph::new(
        BuildParams {
            m,
            ef_construction: ef,
            metric,
            seed: 42,
            storage: Storage::F32,
            quantize: None,
        },
        data[0].len(),
    );
    for (i, v) in data.iter().enumerate() {
        g.push_w(v, i as u64).expect("indexable");
    }
    g.use_half_copy(half_copy);
    let mut steps = 0;
    g.insert_pending(pool, 256, |_| steps += 1);
    assert!(
        steps >= data.len() / 256,
        "the caller gets control between batches"
    );
    g
}

/// The problems a check reports besides elements no search reaches
/// (which inserts may leave, as pgvector's do, until VACUUM relinks them).
fn problems_besides_unreachable(r: &crate::check::Report) -> Vec<String> {
    let unreachable = format!(
        "{} live elements cannot be reached from the entry point (vector_ext_index_repair or a VACUUM that removes rows relinks them)",
        r.unreachable
    );
    r.problems
        .first
        .iter()
        .filter(|p| **p != unreachable)
        .cloned()
        .collect()
}

fn brute_force(data: &[Vec<f32>], metric: Metric, q: &[f32], k: usize) -> Vec<u32> {
    let q = metric.prepare_words(q).unwrap();
    let mut all: Vec<(f32, u32)> = data
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                metric.distance(&q, &metric.prepare_words(v).unwrap()),
                i as u32,
            )
        })
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|x| x.1).collect()
}

fn recall(g: &BuildGraph, data: &[Vec<f32>], queries: &[Vec<f32>], k: usize, ef: usize) -> f64 {
    let metric = g.params().metric;
    let mut hits = 0;
    for q in queries {
        let truth: HashSet<u32> = brute_force(data, metric, q, k).into_iter().collect();
        let found = search(g, &g.wq(&metric.prepare_words(q).unwrap()), k, ef);
        assert!(
            found.windows(2).all(|w| w[0].distance <= w[1].distance),
            "results come nearest first"
        );
        hits += found
            .iter()
            .filter(|c| {
                g.payloads(c.id)
                    .iter()
                    .any(|p| truth.contains(&(*p as u32)))
            })
            .count();
    }
    hits as f64 / (k * queries.len()) as f64
}

use testkit::fixture;

/// A WHERE clause keeping about 1/modulus of the rows, independent of the
/// vectors (a hash of the row id).
fn independent_filter(modulus: u32) -> impl Fn(u32) -> bool + Copy {
    move |id| (id.wrapping_mul(2_654_435_761) >> 16).is_multiple_of(modulus)
}

/// WHERE passes(row) ORDER BY distance LIMIT 10 through the iterative
/// search (rows are node payloads). `strict`: keep pulling while a batch can
/// still beat the 10th row, then sort (strict_order); otherwise take rows in
/// arrival order (relaxed_order).
fn filtered(
    g: &BuildGraph,
    q: &[f32],
    passes: impl Fn(u32) -> bool,
    strict: bool,
) -> Vec<(f32, u32)> {
    let mut it = crate::iterative::IterativeSearch::<u32>::new(&g.wq(q), 40);
    let mut got: Vec<(f32, u32)> = Vec::new();
    loop {
        let b = it.next_batch(g);
        let Some(first) = b.first() else { break };
        if strict && got.len() >= 10 && first.distance > got[9].0 {
            break;
        }
        for c in &b {
            got.extend(
                g.payloads(c.id)
                    .into_iter()
                    .map(|p| p as u32)
                    .filter(|r| passes(*r))
                    .map(|r| (c.distance, r)),
            );
        }
        if strict {
            got.sort_by(|a, b| a.0.total_cmp(&b.0));
        } else if got.len() >= 10 {
            break;
        }
    }
    got.truncate(10);
    got
}

/// Recall@10 of filtered queries, (relaxed, strict), against exact truth;
/// every query must get 10 rows while 10 qualifying rows exist.
fn filtered_recall(
    g: &BuildGraph,
    data: &[Vec<f32>],
    queries: &[Vec<f32>],
    metric: Metric,
    passes: impl Fn(u32) -> bool + Copy,
) -> (f64, f64) {
    let mut hits = [0usize; 2];
    for q in queries {
        let q = metric.prepare_words(q).unwrap();
        let mut truth: Vec<(f32, u32)> = (0..data.len() as u32)
            .filter(|i| passes(*i))
            .map(|i| {
                (
                    metric.distance(&q, &metric.prepare_words(&data[i as usize]).unwrap()),
                    i,
                )
            })
            .collect();
        truth.sort_by(|a, b| a.0.total_cmp(&b.0));
        let truth: HashSet<u32> = truth.iter().take(10).map(|x| x.1).collect();
        for (s, strict) in [false, true].into_iter().enumerate() {
            let got = filtered(g, &q, passes, strict);
            assert_eq!(
                got.len(),
                10,
                "k rows come back while k qualifying rows exist"
            );
            hits[s] += got.iter().filter(|(_, id)| truth.contains(id)).count();
        }
    }
    let n = (10 * queries.len()) as f64;
    (hits[0] as f64 / n, hits[1] as f64 / n)
}

/// The first rows and queries of the fixture.
fn real_rows(rows: usize, queries: usize) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    (fixture("base", rows), fixture("query", queries))
}

fn two_threads() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
}

/// An empty L2 graph of `dims` dimensions, m = 4 (the edge-case tests').
fn small_graph(dims: usize) -> BuildGraph {
    BuildGraph::new(
        BuildParams {
            m: 4,
            ef_construction: 8,
            metric: Metric::L2,
            seed: 0,
            storage: Storage::F32,
            quantize: None,
        },
        dims,
    )
}

/// Fake heap TIDs for the page tests: row i lives at (i / 100 + 1, i % 100 + 1).
fn heap_tid(i: usize) -> pagestore::Tid {
    pagestore::Tid {
        block: (i / 100 + 1) as u32,
        offset: (i % 100 + 1) as u16,
    }
}

fn row_of(t: pagestore::Tid) -> usize {
    (t.block as usize - 1) * 100 + t.offset as usize - 1
}

/// Every live element of an index on pages.
fn live_elements(pg: &crate::page_graph::PageGraph<pagestore::MemStore>) -> Vec<pagestore::Tid> {
    pg.walk(|w| {
        let (mut all, mut stretch, mut from) = (Vec::new(), Vec::new(), Some(0));
        while let Some(f) = from {
            from = w.sweep_nodes(f, &mut stretch);
            all.append(&mut stretch);
        }
        all
    })
    .unwrap()
}

/// Points the entry element's neighbour tuple past the end of the index.
fn point_entry_outside(store: &pagestore::MemStore) {
    let entry = crate::page_graph::PageGraph::open(store)
        .unwrap()
        .meta()
        .entry;
    store.corrupt(entry.block, |p| {
        let outside = pagestore::Tid {
            block: 9999,
            offset: 1,
        };
        crate::format::element_mut(p, entry)
            .unwrap()
            .set_neighbors(outside);
    });
}

/// Builds `data` on one thread (a reproducible graph, row i standing for
/// `heap_tid(i)`) and writes it to an in-memory page store.
fn paged_index(
    data: &[Vec<f32>],
    metric: Metric,
    m: usize,
    seed: u64,
) -> (BuildGraph, pagestore::MemStore) {
    paged_index_stored(data, metric, m, seed, Storage::F32)
}

fn paged_index_stored(
    data: &[Vec<f32>],
    metric: Metric,
    m: usize,
    seed: u64,
    storage: Storage,
) -> (BuildGraph, pagestore::MemStore) {
    let params = BuildParams {
        m,
        ef_construction: 64,
        metric,
        seed,
        storage,
        quantize: None,
    };
    paged_with(params, data[0].len(), data)
}

/// `data` (vectors of `dims`, in words) built with `params` on one
/// thread (row i standing for `heap_tid(i)`) and written to an in-memory
/// page store.
fn paged_with(
    params: BuildParams,
    dims: usize,
    data: &[Vec<f32>],
) -> (BuildGraph, pagestore::MemStore) {
    let mut g = BuildGraph::new(params, dims);
    for (i, v) in data.iter().enumerate() {
        g.push_w(v, crate::format::tid_payload(heap_tid(i)));
    }
    g.insert_pending(&serial_pool(), 128, |_| {});
    let store = pagestore::MemStore::new();
    crate::write::write_graph(&g, &store).unwrap();
    (g, store)
}

/// A pool of one thread: builds on it link the same graph on every run.
fn serial_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
}

/// A pool of two threads, as the machine the tests run on has.
fn pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
}

/// Points on a circle (a 1-d manifold), 64-d: neighbours lie in only two
/// directions, so a node that misses its region at insert keeps few links.
fn circle(n: usize) -> Vec<Vec<f32>> {
    (1..=n)
        .map(|i| {
            let (s, c) = (i as f64).sin_cos();
            let mut v = vec![s as f32; 32];
            v.extend(std::iter::repeat_n(c as f32, 32));
            v
        })
        .collect()
}

mod build;
mod check;
mod insert;
mod iterative;
mod memory;
mod pages;
mod quantized;
mod repair;
mod reuse;
mod sparse;
mod vacuum;

/// Rows for inner-product tests: uniform in [0, 1)^dim (norms from 0 to
/// sqrt(dim): most rows sit inside the hull, never any query's nearest),
/// and queries drawn the same way.
fn uniform_rows(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| (0..dim).map(|_| rng.centered() + 0.5).collect())
        .collect()
}

/// Recall@10 of searches at `ef` on an index on pages (rows stand for
/// `heap_tid(row)`).
fn page_recall_at(
    store: &pagestore::MemStore,
    data: &[Vec<f32>],
    queries: &[Vec<f32>],
    metric: Metric,
    ef: usize,
) -> f64 {
    let pg = crate::page_graph::PageGraph::open(store).unwrap();
    let mut hits = 0;
    for q in queries {
        let truth: HashSet<u32> = brute_force(data, metric, q, 10).into_iter().collect();
        for c in pg
            .search(&pg.wq(&metric.prepare_words(q).unwrap()), 10, ef)
            .unwrap()
        {
            let rows = pg.heap_tids(c.id).unwrap();
            hits += rows.iter().any(|t| truth.contains(&(row_of(*t) as u32))) as usize;
        }
    }
    hits as f64 / (10 * queries.len()) as f64
}

/// An index of `data` built by inserting the rows one by one into an
/// empty index, as pgvector builds (no reachability repair).
fn inserted_index(data: &[Vec<f32>], metric: Metric) -> pagestore::MemStore {
    let g = BuildGraph::new(
        BuildParams {
            m: 16,
            ef_construction: 64,
            metric,
            seed: 3,
            storage: Storage::F32,
            quantize: None,
        },
        data[0].len(),
    );
    let store = pagestore::MemStore::new();
    crate::write::write_graph(&g, &store).unwrap();
    for (i, v) in data.iter().enumerate() {
        insert(&store, v, heap_tid(i), 7).unwrap();
    }
    store
}

/// Tests hold vectors in the word form builds keep them in
/// (`Metric::element_of_words`); these take them so.
trait Words {
    fn metric_of(&self) -> Metric;

    /// A vector in words as a query of this graph's metric.
    fn wq<'v>(&self, v: &'v [f32]) -> distance::Query<'v> {
        let m = self.metric_of();
        distance::Query::new(m, m.element_of_words(v))
    }
}

impl Words for BuildGraph {
    fn metric_of(&self) -> Metric {
        self.params().metric
    }
}

impl<S: pagestore::PageStore> Words for crate::page_graph::PageGraph<'_, S> {
    fn metric_of(&self) -> Metric {
        self.meta().metric
    }
}

impl<S: pagestore::PageStore> crate::page_graph::PageGraph<'_, S> {
    fn search_w(
        &self,
        v: &[f32],
        k: usize,
        ef: usize,
    ) -> Result<Vec<Candidate<pagestore::Tid>>, pagestore::Corrupt> {
        self.search(&self.wq(v), k, ef)
    }
}

impl BuildGraph {
    fn push_w(&mut self, v: &[f32], payload: u64) -> Option<u32> {
        self.push(self.params().metric.element_of_words(v), payload)
    }
}

/// `insert::insert` of a vector in words.
fn insert<S: pagestore::PageStore>(
    store: &S,
    v: &[f32],
    tid: pagestore::Tid,
    seed: u64,
) -> Result<crate::insert::Inserted, pagestore::Corrupt> {
    let metric = crate::page_graph::PageGraph::open(store)?.meta().metric;
    crate::insert::insert(store, metric.element_of_words(v), tid, seed)
}
