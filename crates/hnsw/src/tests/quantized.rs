//! Indexes of RaBitQ codes (`BuildParams::quantize`): searches over codes
//! re-ranked by exact distances (`rerank::Rerank`) against brute force, for
//! every metric codes serve, on vectors that are not unit length; inserts,
//! VACUUM and the index check on codes; sizes; 16,000 dimensions.

use super::*;
use crate::check::check_index;
use crate::codec::Codec;
use crate::page_graph::PageGraph;
use crate::rerank::{code_window, Rerank};
use crate::vacuum::bulk_delete;
use pagestore::{MemStore, PageStore, Tid};

const ROTATION_SEED: u64 = 0x5EED;

fn quantized_params(metric: Metric, bits: u32) -> BuildParams {
    BuildParams {
        m: 16,
        ef_construction: 64,
        metric,
        seed: 3,
        storage: Storage::F32,
        quantize: Some(crate::Quantize {
            seed: ROTATION_SEED,
            bits,
        }),
    }
}

/// `data` built in memory on one thread and written as codes of `bits`.
fn quantized_index(data: &[Vec<f32>], metric: Metric, bits: u32) -> MemStore {
    paged_with(quantized_params(metric, bits), data[0].len(), data).1
}

/// An empty index of codes that `data` is inserted into row by row.
fn quantized_inserted(data: &[Vec<f32>], metric: Metric, bits: u32) -> MemStore {
    let g = BuildGraph::new(quantized_params(metric, bits), data[0].len());
    let store = MemStore::new();
    crate::write::write_graph(&g, &store).unwrap();
    for (i, v) in data.iter().enumerate() {
        insert(&store, v, heap_tid(i), 7).unwrap();
    }
    store
}

/// The `k` nearest rows as a scan of an index of codes returns them: the
/// search over codes in the window the scan takes for `ef` (`code_window`), then the rows re-ranked by exact distance
/// (what the extension measures from the heap, here from `data`); with
/// `lazy`, as the scan does, measured nearest lower bound first and only
/// while a bound (`Rerank::push_estimate`) says a row may be nearer than
/// the nearest measured; otherwise every row of the window is measured.
/// Returns the rows and how many were measured.
fn reranked_with(
    store: &MemStore,
    data: &[Vec<f32>],
    q: &[f32],
    k: usize,
    ef: usize,
    lazy: bool,
) -> (Vec<usize>, usize) {
    let pg = PageGraph::open(store).unwrap();
    let metric = pg.meta().metric;
    let pq = metric.prepare_words(q).unwrap();
    let owned = pg.codec().query(metric, &pq);
    let query = owned.query();
    let mut r = Rerank::default();
    let window = code_window(ef, pg.meta().bits as u32);
    for c in pg.search(&query, window, window).unwrap() {
        let (tids, e) = pg.rows_and_estimate(&query, c.id).unwrap();
        let e = e.expect("an index of codes");
        assert_eq!(e.value, c.distance, "the search ranks by the estimate");
        for t in tids {
            if lazy {
                r.push_estimate(e, t);
            } else {
                r.push(f32::NEG_INFINITY, t);
            }
        }
    }
    let exact = |t: Tid| Some(metric.distance(&pq, &metric.prepare_words(&data[row_of(t)])?));
    let rows = std::iter::from_fn(|| r.next(exact))
        .take(k)
        .map(|(t, _)| row_of(t))
        .collect();
    (rows, r.fetched)
}

fn reranked(
    store: &MemStore,
    data: &[Vec<f32>],
    q: &[f32],
    k: usize,
    ef: usize,
) -> (Vec<usize>, usize) {
    reranked_with(store, data, q, k, ef, true)
}

fn recall(store: &MemStore, data: &[Vec<f32>], queries: &[Vec<f32>], ef: usize) -> f64 {
    let metric = PageGraph::open(store).unwrap().meta().metric;
    let mut hits = 0;
    for q in queries {
        let truth: HashSet<u32> = brute_force(data, metric, q, 10).into_iter().collect();
        let (rows, _) = reranked(store, data, q, 10, ef);
        hits += rows
            .iter()
            .filter(|r| truth.contains(&(**r as u32)))
            .count();
    }
    hits as f64 / (10 * queries.len()) as f64
}

/// Where the first tuple of a page starts (pd_upper).
fn page_data_start(p: &[u8]) -> usize {
    u16::from_le_bytes([p[14], p[15]]) as usize
}

/// Clustered rows shifted off the origin and scaled row by row, so norms
/// vary (0.5x to 2x): inner product is not cosine here.

fn uneven_rows(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed ^ 0xABCD);
    clustered(n, dim, 20, seed)
        .into_iter()
        .map(|v| {
            let s = 0.5 + 1.5 * rng.unit();
            v.iter().map(|x| (x + 1.0) * s).collect()
        })
        .collect()
}

/// Rows spread like text embeddings: 30 loose groups (each row as far
/// from its group's centre as the centres are from one another), shifted
/// off the origin and scaled 0.5x to 2x row by row.
fn embedding_like(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed);
    let centres: Vec<Vec<f32>> = (0..30)
        .map(|_| (0..dim).map(|_| rng.centered()).collect())
        .collect();
    let mut rng = Rng::new(seed ^ 0x77);
    (0..n)
        .map(|i| {
            let s = 0.5 + 1.5 * rng.unit();
            centres[i % 30]
                .iter()
                .map(|c| (c + 0.8 * rng.centered() + 0.3) * s)
                .collect()
        })
        .collect()
}

#[test]
fn reranked_search_over_codes_finds_the_exact_neighbours() {
    let data = embedding_like(3000, 96, 41);
    let queries: Vec<Vec<f32>> = embedding_like(3050, 96, 41).split_off(3000);
    for (metric, bits) in metrics_and_bits() {
        let quantized = quantized_index(&data, metric, bits);
        let full = paged_index(&data, metric, 16, 3).1;
        let q_recall = recall(&quantized, &data, &queries, 64);
        let f_recall = page_recall_at(&full, &data, &queries, metric, 64);
        eprintln!("{metric:?} {bits} bits: {q_recall} over codes, {f_recall} full");
        // one bit per dimension costs a little at the same window, four
        // bits next to nothing
        let slack = if bits == 1 { 0.04 } else { 0.01 };
        assert!(
            q_recall >= f_recall - slack && q_recall >= 0.95,
            "{metric:?} {bits} bits: recall {q_recall} over codes, {f_recall} over full vectors"
        );
        // and rows come out in exact order
        let q = &queries[0];
        let (rows, _) = reranked(&quantized, &data, q, 30, 64);
        let pq = metric.prepare_words(q).unwrap();
        let d: Vec<f32> = rows
            .iter()
            .map(|r| metric.distance(&pq, &metric.prepare_words(&data[*r]).unwrap()))
            .collect();
        assert!(d.windows(2).all(|w| w[0] <= w[1]), "{metric:?}: {d:?}");
    }
}

fn metrics_and_bits() -> impl Iterator<Item = (Metric, u32)> {
    [Metric::L2, Metric::InnerProduct, Metric::Cosine]
        .into_iter()
        .flat_map(|m| [(m, 1), (m, 4)])
}

/// Real embeddings (the suite's 384-d fixture): recall over codes re-ranked
/// within 0.01 of the full vectors' at the same ef_search, from the
/// smallest, four bits and one (whose wider window, `code_window`, makes up for inner product
/// around zero, where these rows share a common direction: 0.945 against
/// 0.98 at a window of 40); with a third (a quarter) of the pages.
#[test]
fn real_embeddings_keep_their_recall() {
    let data = testkit::fixture("base", 6000);
    let queries = testkit::fixture("query", 60);
    for (metric, bits) in metrics_and_bits() {
        let quantized = quantized_index(&data, metric, bits);
        let full = paged_index(&data, metric, 16, 3).1;
        for ef in [10, 16, 24, 40, 100] {
            let q_recall = recall(&quantized, &data, &queries, ef);
            let f_recall = page_recall_at(&full, &data, &queries, metric, ef);
            eprintln!("{metric:?} {bits} bits ef {ef}: {q_recall} over codes, {f_recall} full");
            assert!(
                q_recall >= f_recall - 0.01,
                "{metric:?} {bits} bits at {ef}: recall {q_recall} over codes, {f_recall} over full vectors"
            );
        }
        let (q, f) = (quantized.nblocks(), full.nblocks());
        eprintln!("{metric:?} {bits} bits: {q} pages against {f}");
        assert!(
            q * (4 - bits) < f,
            "{q} pages of codes against {f} of vectors"
        );
        // measuring rows nearest lower bound first, only while one may beat
        // the nearest measured, returns the rows measuring all would, and
        // measures a fifth of the window at four bits (their bounds are
        // tight); at one bit most of it
        let (mut measured, mut same) = (0, 0);
        for q in &queries {
            let (lazy, n) = reranked(&quantized, &data, q, 10, 100);
            let (all, _) = reranked_with(&quantized, &data, q, 10, 100, false);
            measured += n;
            same += lazy.iter().filter(|r| all.contains(r)).count();
        }
        let per_query = measured as f64 / queries.len() as f64;
        eprintln!(
            "{metric:?} {bits} bits: {per_query} of {} rows measured, {same} of 600 rows alike",
            code_window(100, bits)
        );
        // a fifth of 108 at four bits, most of 200 at one
        let most = if bits == 4 { 30.0 } else { 190.0 };
        assert!(
            per_query < most,
            "{metric:?} {bits} bits: {per_query} rows measured per query"
        );
        assert!(
            same >= 598,
            "{metric:?} {bits} bits: {same} of 600 rows alike"
        );
    }
}

/// Tight clusters far from the rows' mean are where one bit per dimension
/// is weakest: the estimates' error (a fraction of the distance to the
/// mean) exceeds the gaps between a cluster's members (cosine: 0.69
/// against 1.0 at a window of 64 codes). The window of codes at ef_search
/// 64 (`code_window`: 128 at one bit) gives 0.988, ef_search 256 the
/// full-precision recall; four bits do at ef_search 64.
#[test]
fn tight_clusters_need_a_wider_window_or_more_bits() {
    let data = uneven_rows(3000, 96, 41);
    let queries: Vec<Vec<f32>> = uneven_rows(3050, 96, 41).split_off(3000);
    for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
        let full = paged_index(&data, metric, 16, 3).1;
        let f_recall = page_recall_at(&full, &data, &queries, metric, 64);
        let one = quantized_index(&data, metric, 1);
        let q_recall = recall(&one, &data, &queries, 256);
        assert!(
            q_recall >= f_recall - 0.01,
            "{metric:?}: recall {q_recall} over codes at 256, {f_recall} over full vectors at 64"
        );
        let four = quantized_index(&data, metric, 4);
        let q_recall = recall(&four, &data, &queries, 64);
        eprintln!(
            "{metric:?}: four bits {q_recall}, one bit {} at 64, full {f_recall}",
            recall(&one, &data, &queries, 64)
        );
        assert!(
            q_recall >= f_recall - 0.02,
            "{metric:?}: recall {q_recall} over four-bit codes at 64, {f_recall} over full vectors"
        );
    }
}

#[test]
fn codes_make_a_small_index() {
    let data = clustered(2000, 768, 20, 42);
    let quantized = quantized_index(&data, Metric::L2, 1);
    let full = paged_index(&data, Metric::L2, 16, 3).1;
    let (q, f) = (quantized.nblocks(), full.nblocks());
    // 768-d: 144 bytes of code against 3,072 of vector, beside a 324-byte
    // neighbour tuple; four bits: 528
    assert!(q * 4 < f, "{q} pages of codes against {f} of vectors");
    let four = quantized_index(&data, Metric::L2, 4).nblocks();
    assert!(four * 2 < f && four > q, "{four} pages of four-bit codes");
    let meta = *PageGraph::open(&quantized).unwrap().meta();
    assert_eq!(
        (meta.storage, meta.seed, meta.bits),
        (Storage::RaBitQ, ROTATION_SEED, 1)
    );
    assert_eq!(meta.vector_bytes(), distance::rabitq::code_bytes(768, 1));
    // the center (the rows' mean) fills the last page
    assert_eq!(meta.center, q - 1);
    let report = check_index(&quantized, || {});
    assert_eq!(report.problems.count, 0, "{:?}", report.problems.first);
    assert_eq!(report.heap_tids.len(), 2000);
    // a damaged center is an error, not a silent zero
    quantized.corrupt(meta.center, |p| p[page_data_start(p)] ^= 0xFF);
    let err = PageGraph::open(&quantized)
        .err()
        .expect("a damaged center page");
    assert!(err.0.contains("center"), "{}", err.0);
}

#[test]
fn inserts_into_an_index_of_codes_keep_recall() {
    let data = embedding_like(2500, 64, 43);
    let queries: Vec<Vec<f32>> = embedding_like(2550, 64, 43).split_off(2500);
    for (metric, bits) in metrics_and_bits() {
        // half built, half inserted; and all inserted into an empty index
        let half = quantized_index(&data[..1250], metric, bits);
        for (i, v) in data.iter().enumerate().skip(1250) {
            insert(&half, v, heap_tid(i), 9).unwrap();
        }
        let inserted = quantized_inserted(&data, metric, bits);
        let plain = inserted_index(&data, metric);
        let plain_recall = page_recall_at(&plain, &data, &queries, metric, 64);
        let plain_unreachable = check_index(&plain, || {}).unreachable;
        for (name, store) in [("half", &half), ("inserted", &inserted)] {
            let r = recall(store, &data, &queries, 64);
            // an index built empty codes around zero, not the rows' mean:
            // rows shifted off the origin lose more (REINDEX recentres)
            let slack = if name == "half" { 0.03 } else { 0.06 };
            assert!(
                r >= plain_recall - slack,
                "{metric:?} {bits} bits {name}: recall {r}, {plain_recall}"
            );
            // inserts adopt the elements they evict, but where the new
            // element's list has no room a few may stay unreachable until
            // VACUUM relinks them (iterative scans sweep them up): at most
            // 24 of 2,500 here (inner product over codes, half built),
            // 452 without adoption
            let report = check_index(store, || {});
            assert!(
                report.unreachable <= plain_unreachable.max(50),
                "{metric:?} {bits} {name}: {} vs {plain_unreachable}",
                report.unreachable
            );
            assert_eq!(report.problems.count, (report.unreachable > 0) as u64);
            assert_eq!(report.heap_tids.len(), 2500);
        }
    }
}

#[test]
fn duplicates_share_an_element_of_codes() {
    let data = clustered(300, 32, 5, 44);
    let store = quantized_index(&data, Metric::L2, 4);
    let before = check_index(&store, || {}).elements;
    for i in 0..3 {
        let got = insert(&store, &data[7], heap_tid(300 + i), 11).unwrap();
        assert!(
            matches!(got, crate::insert::Inserted::Duplicate(_)),
            "{got:?}"
        );
    }
    assert_eq!(check_index(&store, || {}).elements, before);
    let mut all = data.clone();
    all.extend(std::iter::repeat_n(data[7].clone(), 3));
    let (rows, _) = reranked(&store, &all, &data[7], 4, 40);
    let mut rows = rows;
    rows.sort();
    assert_eq!(rows, [7, 300, 301, 302]);
}

#[test]
fn vacuum_of_an_index_of_codes_keeps_recall() {
    let data = uneven_rows(3000, 48, 45);
    let queries: Vec<Vec<f32>> = uneven_rows(3040, 48, 45).split_off(3000);
    for bits in [1, 4] {
        vacuum_keeps_recall(&data, &queries, bits);
    }
}

fn vacuum_keeps_recall(data: &[Vec<f32>], queries: &[Vec<f32>], bits: u32) {
    let store = quantized_index(data, Metric::L2, bits);
    let dead = |t: Tid| row_of(t).is_multiple_of(3);
    bulk_delete(&store, dead, || {}).unwrap();
    let report = check_index(&store, || {});
    assert_eq!(report.problems.count, 0, "{:?}", report.problems.first);
    assert_eq!(report.heap_tids.len(), 2000);
    // live rows only, and the live rows' neighbours found
    let live: Vec<usize> = (0..3000).filter(|i| i % 3 != 0).collect();
    let live_data: Vec<Vec<f32>> = live.iter().map(|i| data[*i].clone()).collect();
    let mut hits = 0;
    for q in queries {
        let truth: HashSet<usize> = brute_force(&live_data, Metric::L2, q, 10)
            .into_iter()
            .map(|i| live[i as usize])
            .collect();
        let (rows, _) = reranked(&store, data, q, 10, 64);
        assert!(rows.iter().all(|r| r % 3 != 0), "a deleted row came back");
        hits += rows.iter().filter(|r| truth.contains(r)).count();
    }
    let r = hits as f64 / (10 * queries.len()) as f64;
    assert!(r >= 0.9, "{bits} bits: recall {r} after VACUUM");
    // and inserts reuse the freed space
    let pages = store.nblocks();
    for (i, v) in uneven_rows(900, 48, 46).iter().enumerate() {
        insert(&store, v, heap_tid(3000 + i), 13).unwrap();
    }
    assert!(
        store.nblocks() <= pages + 2,
        "{} pages after {pages}",
        store.nblocks()
    );
}

#[test]
fn sixteen_thousand_dimensions_index_and_search() {
    let dims = 16_000;
    let data = clustered(60, dims, 6, 47);
    let mut all = data.clone();
    all.extend(clustered(20, dims, 6, 48));
    for bits in [1, 4] {
        let store = quantized_index(&data, Metric::Cosine, bits);
        for (i, v) in all[60..].iter().enumerate() {
            insert(&store, v, heap_tid(60 + i), 15).unwrap();
        }
        let report = check_index(&store, || {});
        assert_eq!(report.problems.count, 0, "{:?}", report.problems.first);
        assert_eq!(report.heap_tids.len(), 80);
        for q in [&all[3], &all[65]] {
            let want = brute_force(&all, Metric::Cosine, q, 5);
            let (rows, _) = reranked(&store, &all, q, 5, 40);
            assert_eq!(rows, want.iter().map(|r| *r as usize).collect::<Vec<_>>());
        }
        // one dimension more is refused (codes are padded to a multiple of
        // 64 dimensions: a four-bit element of 16,000 takes 8,088 bytes)
        let g = BuildGraph::new(quantized_params(Metric::Cosine, bits), dims + 1);
        let err = crate::write::write_graph(&g, &MemStore::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 16000"), "{err}");
    }
}

#[test]
fn codecs_read_back_what_they_wrote() {
    let data = uneven_rows(20, 40, 49);
    for bits in [1, 4] {
        codec_reads_back(&data, bits);
    }
    // a plain codec holds vectors as they are
    let plain = Codec::new(Storage::F32, 40, 0, 0, None);
    assert_eq!(plain.held(&data[0]), data[0]);
    let mut back = Vec::new();
    plain.decode(&plain.encoded(&data[0]), &mut back).unwrap();
    assert_eq!(back, data[0]);
}

fn codec_reads_back(data: &[Vec<f32>], bits: u32) {
    let codec = Codec::new(Storage::RaBitQ, 40, 77, bits, Some(vec![1.0; 40]));
    for v in data {
        let bytes = codec.encoded(v);
        let mut held = Vec::new();
        codec.decode(&bytes, &mut held).unwrap();
        assert_eq!(held, codec.held(v));
        assert!(codec.decode(&bytes[4..], &mut Vec::new()).is_err());
    }
    // estimates between codes track exact distances
    let (mut err, mut scale) = (0.0f64, 0.0f64);
    for a in data {
        for b in data {
            let est = codec.distance(Metric::L2, &codec.held(a), &codec.held(b));
            let exact = Metric::L2.distance(a, b);
            err += (est - exact).abs() as f64;
            scale += exact as f64;
        }
    }
    let most = if bits == 1 { 0.25 } else { 0.05 };
    assert!(
        err < most * scale,
        "{bits} bits: mean error {} of mean distance",
        err / scale
    );
}

#[test]
fn codes_made_on_the_pool_write_the_same_pages() {
    let data = embedding_like(5000, 48, 50);
    let mut g = BuildGraph::new(quantized_params(Metric::Cosine, 4), 48);
    for (i, v) in data.iter().enumerate() {
        g.push_w(v, crate::format::tid_payload(heap_tid(i)));
    }
    g.insert_pending(&pool(), 256, |_| {});
    let (serial, parallel) = (MemStore::new(), MemStore::new());
    crate::write::write_graph(&g, &serial).unwrap();
    let mut batches = 0;
    crate::write::write_graph_in(&g, &parallel, Some(&pool()), &mut || batches += 1).unwrap();
    assert_eq!(batches, 2, "5,000 codes in batches of 4,096");
    assert_eq!(serial.nblocks(), parallel.nblocks());
    for b in 0..serial.nblocks() {
        let a = serial
            .read(b, |p| Ok::<_, pagestore::Corrupt>(p.to_vec()))
            .unwrap();
        let c = parallel
            .read(b, |p| Ok::<_, pagestore::Corrupt>(p.to_vec()))
            .unwrap();
        assert!(a == c, "page {b} differs");
    }
}

/// `data` built in memory on one thread, linked on four-bit codes of the
/// vectors (`use_codes`) or on the vectors, and written as codes of `bits`.
fn quantized_linked(
    data: &[Vec<f32>],
    metric: Metric,
    bits: u32,
    on_codes: bool,
) -> (BuildGraph, MemStore) {
    let mut g = BuildGraph::new(quantized_params(metric, bits), data[0].len());
    for (i, v) in data.iter().enumerate() {
        g.push_w(v, crate::format::tid_payload(heap_tid(i)));
    }
    g.use_codes(on_codes);
    let mut steps = 0;
    // one thread: the comparisons below are between two fixed graphs, not
    // between two draws of the threads' interleaving
    g.insert_pending(&serial_pool(), 128, |_| steps += 1);
    // the codes are made in batches the caller gets control between
    assert!(steps >= data.len() / 128, "{steps} steps");
    let store = MemStore::new();
    crate::write::write_graph(&g, &store).unwrap();
    (g, store)
}

/// Linking on four-bit codes (searches and neighbour selection comparing
/// estimates) keeps the recall of linking on the vectors, on real
/// embeddings and on rows of varied norms, for both kinds of pages.
#[test]
fn linking_on_codes_keeps_recall() {
    let real = (
        testkit::fixture("base", 5000),
        testkit::fixture("query", 200),
    );
    let uneven = {
        let mut rows = uneven_rows(5200, 96, 12);
        let queries = rows.split_off(5000);
        (rows, queries)
    };
    for (name, (data, queries)) in [("real", &real), ("uneven", &uneven)] {
        for (metric, bits) in metrics_and_bits() {
            // cosine takes away the varied norms, leaving tight clusters
            // one-bit pages rank poorly however linked
            // (`tight_clusters_need_a_wider_window_or_more_bits`)
            if name == "uneven" && metric == Metric::Cosine {
                continue;
            }
            let (g, on_codes) = quantized_linked(data, metric, bits, true);
            assert_eq!(
                g.page_code(0).is_some(),
                bits == 4,
                "codes reused by four-bit pages"
            );
            let (_, on_vectors) = quantized_linked(data, metric, bits, false);
            let report = check_index(&on_codes, || {});
            assert_eq!(report.problems.count, 0, "{:?}", report.problems.first);
            assert_eq!(report.heap_tids.len(), data.len());
            for ef in [40, 100] {
                let (c, v) = (
                    recall(&on_codes, data, queries, ef),
                    recall(&on_vectors, data, queries, ef),
                );
                eprintln!(
                    "{name} {metric:?} {bits} bits ef {ef}: linked on codes {c}, on vectors {v}"
                );
                // one-bit pages' coarser estimates walk a graph that
                // differs in its details less surely
                let slack = if bits == 1 { 0.025 } else { 0.01 };
                assert!(
                    c >= v - slack,
                    "{name} {metric:?} {bits} bits ef {ef}: {c} linked on codes, {v} on vectors"
                );
            }
        }
    }
}

/// The codes linking measured are the pages' codes when those have four
/// bits: what encoding each vector around the index's center makes.
#[test]
fn link_codes_are_the_pages_codes() {
    let data = embedding_like(3000, 96, 8);
    for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
        let (g, store) = quantized_linked(&data, metric, 4, true);
        let center = g.code_center();
        assert_eq!(center.is_some(), metric != Metric::InnerProduct);
        let codec = g.params().codec(96, center.clone());
        for id in 0..g.len() as u32 {
            assert_eq!(
                g.page_code(id).unwrap(),
                &codec.encoded(g.vector(id))[..],
                "{metric:?} node {id}"
            );
        }
        // and the index reads back with that center
        let Codec::Quantized(q) =
            Codec::open(&store, &PageGraph::open(&store).unwrap().meta().clone()).unwrap()
        else {
            panic!("an index of codes");
        };
        let Codec::Quantized(want) = codec else {
            panic!("an index of codes");
        };
        assert_eq!(q.encode(g.vector(5)), want.encode(g.vector(5)));
    }
}

/// An index of codes names its rotation's form on the metapage; codes of an
/// earlier form (padded to a power of two) are refused, not misread.
#[test]
fn codes_of_an_earlier_rotation_are_refused() {
    let data = embedding_like(200, 48, 3);
    let store = quantized_index(&data, Metric::L2, 4);
    assert!(PageGraph::open(&store).is_ok());
    store.corrupt(0, |p| {
        assert_eq!(p[crate::format::META_ROTATION_AT], 1);
        p[crate::format::META_ROTATION_AT] = 0;
    });
    let err = PageGraph::open(&store).err().expect("refused").0;
    assert!(err.contains("earlier development build"), "{err}");
    // an index of vectors keeps 0 there
    let full = paged_index(&data, Metric::L2, 16, 3).1;
    full.corrupt(0, |p| assert_eq!(p[crate::format::META_ROTATION_AT], 0));
}
