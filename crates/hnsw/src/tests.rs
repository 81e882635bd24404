use super::*;
use crate::select::random_level;
use std::collections::{HashSet, VecDeque};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

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
    let mut rng = Rng(centre_seed);
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..dim).map(|_| rng.unit() * 4.0).collect())
        .collect();
    let mut rng = Rng(point_seed ^ 0x5555);
    (0..n)
        .map(|i| {
            centres[i % clusters]
                .iter()
                .map(|c| c + rng.unit())
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
        },
        data[0].len(),
    );
    for (i, v) in data.iter().enumerate() {
        g.push(v, i as u64).expect("indexable");
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
fn problems_besides_unreachable(r: &check::Report) -> Vec<String> {
    let unreachable = format!(
        "{} live elements cannot be reached from the entry point (VACUUM relinks them)",
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
    let q = metric.prepare(q).unwrap();
    let mut all: Vec<(f32, u32)> = data
        .iter()
        .enumerate()
        .map(|(i, v)| (metric.distance(&q, &metric.prepare(v).unwrap()), i as u32))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|x| x.1).collect()
}

fn recall(g: &BuildGraph, data: &[Vec<f32>], queries: &[Vec<f32>], k: usize, ef: usize) -> f64 {
    let metric = g.params().metric;
    let mut hits = 0;
    for q in queries {
        let truth: HashSet<u32> = brute_force(data, metric, q, k).into_iter().collect();
        let found = search(g, &metric.prepare(q).unwrap(), k, ef);
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

#[test]
fn recall_against_brute_force_for_every_metric() {
    // Uniform noise in 24 dimensions is harder than real embeddings (whose
    // intrinsic dimension is low): m = 12 gives 0.92 at ef = 64, 1.000 at 400.
    let data = clustered(3000, 24, 12, 1);
    let queries = clustered_from(60, 24, 12, 1, 2);
    // Inner product is tested on near-unit vectors (norms 0.9..1.1), like
    // real embeddings; with norms spread 10x, graph search for maximum inner
    // product is a different, harder problem (see the note on issue 3).
    let near_unit = |v: &Vec<Vec<f32>>, seed| {
        let mut rng = Rng(seed);
        v.iter()
            .map(|x| {
                let n = x.iter().map(|a| a * a).sum::<f32>().sqrt();
                let s = (1.0 + rng.unit() * 0.2) / n;
                x.iter().map(|a| a * s).collect()
            })
            .collect::<Vec<Vec<f32>>>()
    };
    let (ip_data, ip_queries) = (near_unit(&data, 11), near_unit(&queries, 12));
    for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1] {
        let (data, queries) = if metric == Metric::InnerProduct {
            (&ip_data, &ip_queries)
        } else {
            (&data, &queries)
        };
        // One thread: a reproducible graph, so the floors below are exact.
        let serial = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let g = build(&serial, data, metric, 16, 100);
        let r = recall(&g, data, queries, 10, 100);
        // Inner product is not a metric: vectors of smaller norm lose their
        // in-links and recall stops converging (0.96 at ef = 400 here). A
        // MIPS-to-L2 transform would fix it; until then these floors pin it.
        let (floor, wide_floor) = if metric == Metric::InnerProduct {
            (0.93, 0.95)
        } else {
            (0.95, 0.99)
        };
        assert!(r >= floor, "{metric:?}: recall@10 {r}");
        let r2 = recall(&g, data, queries, 10, 400);
        assert!(
            r2 >= r - 0.01 && r2 >= wide_floor,
            "{metric:?}: recall@10 at ef=400 {r2}"
        );
    }
}

#[test]
fn graph_invariants_hold() {
    let data = clustered(2000, 8, 5, 3);
    let g = build(&pool(), &data, Metric::L2, 6, 40);
    let (entry, top) = g.entry_point().unwrap();
    assert_eq!(g.level(entry), top);
    assert!(
        (0..g.len() as u32).all(|id| g.level(id) <= top),
        "the entry point is on the top level"
    );
    for id in 0..g.len() as u32 {
        for level in 0..=g.level(id) {
            let links = g.links(id, level);
            assert!(links.len() <= g.max_links(level), "degree bound");
            assert!(!links.contains(&id), "no self loops");
            let unique: HashSet<_> = links.iter().collect();
            assert_eq!(unique.len(), links.len(), "no duplicate links");
            assert!(
                links.iter().all(|n| g.level(*n) >= level),
                "links stay on the level"
            );
        }
        assert!(
            !g.links(id, 0).is_empty() || g.len() == 1,
            "every node is linked on level 0"
        );
    }
    // every node is reachable from the entry point on level 0
    let mut seen = vec![false; g.len()];
    let mut queue = VecDeque::from([entry]);
    seen[entry as usize] = true;
    while let Some(n) = queue.pop_front() {
        for m in g.links(n, 0) {
            if !seen[m as usize] {
                seen[m as usize] = true;
                queue.push_back(m);
            }
        }
    }
    assert!(seen.iter().all(|s| *s), "level 0 is connected");
}

#[test]
fn duplicates_are_all_found() {
    let mut data = clustered(500, 4, 3, 5);
    let dup = vec![0.25f32, -0.5, 1.0, 2.0];
    for _ in 0..40 {
        data.push(dup.clone());
    }
    let g = build(&pool(), &data, Metric::L2, 8, 64);
    // Copies share nodes (at most MAX_PAYLOADS each) instead of crowding the graph.
    let nodes: Vec<u32> = (500..540).filter(|id| g.is_linked_node(*id)).collect();
    assert!(
        nodes.len() >= 4 && nodes.len() < 40,
        "{} nodes for 40 copies",
        nodes.len()
    );
    let found = search(&g, &dup, 40, 100);
    let zero: Vec<_> = found.iter().filter(|c| c.distance == 0.0).collect();
    let mut payloads: Vec<u64> = zero.iter().flat_map(|c| g.payloads(c.id)).collect();
    payloads.sort();
    assert_eq!(
        payloads,
        (500..540).collect::<Vec<u64>>(),
        "every copy is found, once"
    );
    assert!(zero
        .iter()
        .all(|c| g.payloads(c.id).len() <= crate::MAX_PAYLOADS));
}

#[test]
fn tiny_and_empty_graphs() {
    let g = BuildGraph::new(
        BuildParams {
            m: 4,
            ef_construction: 8,
            metric: Metric::L2,
            seed: 0,
            storage: Storage::F32,
        },
        2,
    );
    assert!(search(&g, &[0.0, 0.0], 5, 10).is_empty());
    let g = build(&pool(), &[vec![1.0, 1.0]], Metric::L2, 4, 8);
    let found = search(&g, &[0.0, 0.0], 5, 10);
    assert_eq!((found.len(), found[0].id, found[0].distance), (1, 0, 2.0));
    let g = build(
        &pool(),
        &[vec![1.0, 1.0], vec![2.0, 2.0], vec![0.0, 0.5]],
        Metric::L2,
        4,
        8,
    );
    let ids: Vec<u32> = search(&g, &[0.0, 0.0], 5, 10)
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, vec![2, 0, 1]);
}

#[test]
fn cosine_skips_zero_vectors_and_normalises() {
    let mut g = BuildGraph::new(
        BuildParams {
            m: 4,
            ef_construction: 8,
            metric: Metric::Cosine,
            seed: 0,
            storage: Storage::F32,
        },
        2,
    );
    assert_eq!(g.push(&[0.0, 0.0], 0), None);
    assert_eq!(g.push(&[3.0, 4.0], 1), Some(0));
    assert_eq!(g.vector(0), &[0.6, 0.8]);
}

#[test]
fn levels_are_geometric_and_capped() {
    let m = 16;
    let n = 200_000u32;
    let mut counts = [0usize; crate::select::MAX_LEVEL + 1];
    for id in 0..n {
        counts[random_level(7, id, m)] += 1;
    }
    // P(level >= 1) = 1/m
    let upper = n as usize - counts[0];
    let expected = n as f64 / m as f64;
    assert!(
        (upper as f64 - expected).abs() < expected * 0.05,
        "{upper} vs {expected}"
    );
    assert_eq!(
        random_level(7, 1, m),
        random_level(7, 1, m),
        "deterministic"
    );
    assert!(counts[crate::select::MAX_LEVEL] < 2);
}

/// Parallel builds differ run to run (which inserts overlap), and many
/// threads on a small graph cost some quality at a narrow search; the graph
/// must stay navigable: a wide search finds everything.
#[test]
fn parallel_builds_stay_navigable() {
    let data = clustered(4000, 16, 10, 9);
    let queries = clustered_from(50, 16, 10, 9, 10);
    for threads in [2, 8] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let g = build(&pool, &data, Metric::L2, 16, 100);
        for level in 0..=g.entry_point().unwrap().1 {
            let seen = g.reachable(level);
            assert!(
                (0..g.len() as u32).all(|id| g.level(id) < level || seen[id as usize]),
                "level {level} reachable"
            );
        }
        let r = recall(&g, &data, &queries, 10, 100);
        assert!(r >= 0.9, "{threads} threads: recall@10 {r}");
        let r = recall(&g, &data, &queries, 10, 400);
        assert!(r >= 0.99, "{threads} threads: recall@10 at ef=400 {r}");
    }
}

/// The real-embedding fixture in the repository, `tests/data/ds-a-20k`
/// (made by `scripts/make_fixture.py` from ds-a-npm-minilm: 384-d sentence
/// embeddings): the first `rows` rows of `base`, `query` or `extra`, as f32.
fn fixture(part: &str, rows: usize) -> Vec<Vec<f32>> {
    let path = fixture_dir().join(format!("{part}.f16.npy"));
    let (shape, data) = read_npy(&path, "'<f2'");
    assert!(
        rows <= shape[0],
        "{}: {} rows, not {rows}",
        path.display(),
        shape[0]
    );
    data.chunks_exact(2 * shape[1])
        .take(rows)
        .map(|row| {
            row.chunks_exact(2)
                .map(|h| half::f16::from_le_bytes([h[0], h[1]]).to_f32())
                .collect()
        })
        .collect()
}

fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/ds-a-20k")
}

/// A 2-d .npy file of `dtype`: its shape and its data bytes.
fn read_npy(path: &std::path::Path, dtype: &str) -> ([usize; 2], Vec<u8>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}", path.display());
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains(dtype), "{header}");
    let shape = &header[header.find("'shape': (").unwrap() + 10..];
    let mut dims = shape[..shape.find(')').unwrap()]
        .split(',')
        .map(|d| d.trim().parse::<usize>().unwrap());
    let shape = [dims.next().unwrap(), dims.next().unwrap()];
    (shape, bytes[10 + header_len..].to_vec())
}

/// The fixture's stored exact answers agree with `brute_force`, the oracle
/// every recall figure here is measured against.
#[test]
fn the_fixture_truth_is_what_brute_force_finds() {
    let data = fixture("base", 20_000);
    let queries = fixture("query", 100);
    for (metric, name) in [
        (Metric::Cosine, "cos"),
        (Metric::L2, "l2"),
        (Metric::InnerProduct, "ip"),
    ] {
        let (shape, truth) = read_npy(&fixture_dir().join(format!("gt_{name}.i32.npy")), "'<i4'");
        assert_eq!(shape, [500, 10]);
        let truth: Vec<u32> = truth
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u32)
            .collect();
        let mut same = 0;
        for (q, want) in queries.iter().zip(truth.chunks_exact(10)) {
            let got = brute_force(&data, metric, q, 10);
            same += got.iter().filter(|id| want.contains(id)).count();
        }
        // float32 here, float64 in the script: a tie at the 10th place may
        // fall either way, nothing more
        assert!(same >= 998, "{metric:?}: {same} of 1000");
    }
}

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
    let mut it = crate::iterative::IterativeSearch::<u32>::new(q, 40);
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
        let q = metric.prepare(q).unwrap();
        let mut truth: Vec<(f32, u32)> = (0..data.len() as u32)
            .filter(|i| passes(*i))
            .map(|i| {
                (
                    metric.distance(&q, &metric.prepare(&data[i as usize]).unwrap()),
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

/// 20k real sentence embeddings (384-d), built on two threads with
/// pgvector's defaults (m = 16, ef_construction = 64), against exact truth.
#[test]
fn real_embeddings_recall() {
    let (data, queries) = real_rows(20_000, 200);
    let pool = two_threads();
    for metric in [Metric::Cosine, Metric::L2, Metric::InnerProduct] {
        let g = build(&pool, &data, metric, 16, 64);
        // Measured 2026-11-23 (cosine): 0.959 at ef_search 40, 0.994 at 200;
        // pgvector 0.8 on the same rows: 0.968 and 0.9915.
        let at40 = recall(&g, &data, &queries, 10, 40);
        let at200 = recall(&g, &data, &queries, 10, 200);
        eprintln!("{metric:?}: recall@10 {at40:.3} at ef 40, {at200:.3} at ef 200");
        assert!(
            at40 >= 0.95,
            "{metric:?}: recall@10 at ef_search 40: {at40}"
        );
        assert!(
            at200 >= 0.985,
            "{metric:?}: recall@10 at ef_search 200: {at200}"
        );
        if metric == Metric::Cosine {
            // WHERE <filter> ORDER BY emb <=> q LIMIT 10 through the iterative
            // scan, with filters independent of the vectors. Measured: 1/10
            // 0.971 relaxed, 0.990 strict; 1/100 0.994, 0.995.
            for modulus in [10u32, 100] {
                let passes = independent_filter(modulus);
                let (relaxed, strict) = filtered_recall(&g, &data, &queries, metric, passes);
                eprintln!("real data, selectivity 1/{modulus}: recall@10 relaxed {relaxed:.3}, strict {strict:.3}");
                assert!(
                    strict >= 0.95 && relaxed >= 0.95,
                    "1/{modulus}: {relaxed} {strict}"
                );
            }
        }
    }
}

/// Linking on the binary16 copy finds neighbours as well as linking on the
/// f32 vectors (real embeddings, the three metrics), and the graph's link
/// distances are exact afterwards.
#[test]
fn a_half_copy_links_as_well_as_f32() {
    let (data, queries) = real_rows(10_000, 300);
    let pool = two_threads();
    for metric in [Metric::Cosine, Metric::L2, Metric::InnerProduct] {
        let half = build_with(&pool, &data, metric, 16, 64, true);
        let exact = build_with(&pool, &data, metric, 16, 64, false);
        for ef in [20, 40] {
            let (h, e) = (
                recall(&half, &data, &queries, 10, ef),
                recall(&exact, &data, &queries, 10, ef),
            );
            eprintln!("{metric:?} ef {ef}: recall@10 {h:.4} half copy, {e:.4} f32");
            assert!(h >= e - 0.01, "{metric:?} ef {ef}: {h} against {e}");
        }
        for id in (0..data.len() as u32).step_by(7) {
            let v = half.vector(id);
            for l in 0..=half.level(id) {
                for (n, d, _) in half.link_infos(id, l) {
                    assert_eq!(d, metric.distance(v, half.vector(n)), "{id} -> {n}");
                }
            }
        }
    }
}

/// Vectors binary16 cannot hold closely (an element above 2^15, or all
/// below 2^-8) are linked on their f32 values: one thread builds the very
/// graph it builds without the copy.
#[test]
fn vectors_out_of_half_range_link_on_f32() {
    let serial = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let base = clustered(1000, 16, 8, 3);
    for (scale, same) in [(1e6f32, true), (1e-6, true), (1.0, false)] {
        let data: Vec<Vec<f32>> = base
            .iter()
            .map(|v| v.iter().map(|x| x * scale).collect())
            .collect();
        let lists = |half| {
            let g = build_with(&serial, &data, Metric::L2, 8, 32, half);
            (0..data.len() as u32)
                .map(|id| g.link_infos(id, 0))
                .collect::<Vec<_>>()
        };
        // in range, the copy's rounding changes some choice
        assert_eq!(lists(true) == lists(false), same, "scale {scale}");
    }
}

/// Queries far from every cluster need neighbours from several separated
/// clusters, reached through few bridges: a narrow search misses some, but the
/// graph must stay navigable, so a wide one finds them all.
#[test]
fn out_of_distribution_queries_converge() {
    let data = clustered(3000, 24, 12, 1);
    let queries = clustered(60, 24, 12, 2);
    let serial = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let g = build(&serial, &data, Metric::L2, 16, 100);
    let wide = recall(&g, &data, &queries, 10, 1000);
    assert!(wide >= 0.99, "recall@10 at ef=1000 {wide}");
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
        let mut all = Vec::new();
        w.all_nodes(&mut all);
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
    let mut g = BuildGraph::new(
        BuildParams {
            m,
            ef_construction: 64,
            metric,
            seed,
            storage,
        },
        data[0].len(),
    );
    for (i, v) in data.iter().enumerate() {
        g.push(v, crate::format::tid_payload(heap_tid(i)));
    }
    let serial = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    g.insert_pending(&serial, 128, |_| {});
    let store = pagestore::MemStore::new();
    crate::write::write_graph(&g, &store).unwrap();
    (g, store)
}

mod on_pages {
    use super::*;
    use crate::format::{max_dims, payload_tid, tid_payload};
    use crate::page_graph::PageGraph;
    use crate::write::write_graph;
    use pagestore::{MemStore, PageStore, Tid};

    #[test]
    fn binary16_pages_hold_smaller_elements_and_take_inserts() {
        let data = clustered(700, 384, 8, 31);
        let (_, wide) = paged_index_stored(&data[..600], Metric::L2, 8, 1, Storage::F32);
        let (_, half) = paged_index_stored(&data[..600], Metric::L2, 8, 1, Storage::F16);
        // 1852-byte elements fit 4 to a page, 1084-byte ones 7
        assert!(
            half.nblocks() * 100 <= wide.nblocks() * 62,
            "{} vs {} pages",
            half.nblocks(),
            wide.nblocks()
        );
        for (i, v) in data.iter().enumerate().skip(600) {
            let r = crate::insert::insert(&half, v, heap_tid(i), 7).unwrap();
            assert!(matches!(r, crate::insert::Inserted::Element(_)), "{r:?}");
        }
        // every row, built or inserted, is found from its own (rounded) vector
        let pg = PageGraph::open(&half).unwrap();
        for (i, v) in data.iter().enumerate() {
            let mut q = v.clone();
            Storage::F16.round(&mut q);
            let found = pg.search(&q, 1, 64).unwrap();
            assert_eq!(found[0].distance, 0.0, "row {i}");
            assert!(
                pg.heap_tids(found[0].id).unwrap().contains(&heap_tid(i)),
                "row {i}"
            );
        }
    }

    /// Upper-level lists store TIDs only; an insert that links back into a
    /// full one recomputes the distances and evicts a link the new element
    /// covers (or is not kept itself). With m = 4 upper lists fill early:
    /// inserts must keep every upper level navigable and recall high.
    #[test]
    fn inserts_into_full_upper_level_lists_keep_the_graph_navigable() {
        use crate::page_graph::read_links;
        let (seed, m) = (3, 4);
        let data = clustered(2500, 16, 10, seed);
        let (_, store) = paged_index(&data[..50], Metric::L2, m, 5);
        for (i, v) in data.iter().enumerate().skip(50) {
            crate::insert::insert(&store, v, heap_tid(i), 5).unwrap();
        }
        let pg = PageGraph::open(&store).unwrap();
        let all = live_elements(&pg);
        let (mut upper_lists, mut full) = (0, 0);
        for t in &all {
            let e = pg.element(*t).unwrap();
            for l in 1..=e.level {
                let (_, links) = read_links(&store, e.neighbors, m, e.level, l).unwrap();
                let live = links.iter().filter(|k| k.tid.is_valid()).count();
                upper_lists += 1;
                full += (live == links.len()) as usize;
            }
        }
        assert!(
            full * 4 >= upper_lists,
            "{full} of {upper_lists} upper lists full"
        );
        let report = crate::check::check_index(&store, || {});
        assert_eq!(problems_besides_unreachable(&report), Vec::<String>::new());
        // link-backs can orphan an element (as in pgvector): rare
        assert!(
            report.unreachable * 200 < 2500,
            "{} unreachable",
            report.unreachable
        );
        let queries = clustered_from(100, 16, 10, seed, 78);
        let mut hits = 0;
        for q in &queries {
            let truth: HashSet<usize> = brute_force(&data, Metric::L2, q, 10)
                .into_iter()
                .map(|i| i as usize)
                .collect();
            for c in pg.search(q, 10, 64).unwrap() {
                hits += pg
                    .heap_tids(c.id)
                    .unwrap()
                    .iter()
                    .filter(|t| truth.contains(&row_of(**t)))
                    .count();
            }
        }
        let r = hits as f64 / 1000.0;
        assert!(r >= 0.98, "recall@10 {r}");
    }

    #[test]
    fn search_on_pages_equals_search_in_memory() {
        let mut data = clustered(1500, 12, 6, 21);
        for _ in 0..25 {
            data.push(data[3].clone()); // duplicates share elements
        }
        let metrics = [Metric::L2, Metric::Cosine, Metric::InnerProduct, Metric::L1];
        let cases = metrics
            .iter()
            .map(|m| (*m, Storage::F32))
            .chain(metrics.iter().map(|m| (*m, Storage::F16)));
        for (metric, storage) in cases {
            // binary16 pages: the build rounds what it pushes, so its
            // distances are bit for bit those read from the pages
            let (g, store) = paged_index_stored(&data, metric, 8, 1, storage);
            let pg = PageGraph::open(&store).unwrap();
            assert_eq!((pg.meta().dims, pg.meta().storage), (12, storage));
            for q in clustered_from(30, 12, 6, 21, 22) {
                let q = metric.prepare(&q).unwrap();
                // Equal distances (duplicates) may come in either order: ids
                // differ in type between the two graphs, so compare sorted.
                let mut mem: Vec<(u32, Vec<u64>)> = search(&g, &q, 10, 40)
                    .iter()
                    .map(|c| (c.distance.to_bits(), g.payloads(c.id)))
                    .collect();
                let mut paged: Vec<(u32, Vec<u64>)> = pg
                    .search(&q, 10, 40)
                    .unwrap()
                    .iter()
                    .map(|c| {
                        (
                            c.distance.to_bits(),
                            pg.heap_tids(c.id)
                                .unwrap()
                                .into_iter()
                                .map(tid_payload)
                                .collect(),
                        )
                    })
                    .collect();
                mem.sort();
                paged.sort();
                assert_eq!(mem, paged, "{metric:?} {storage:?}");
            }
            // a row finds itself and its copies (not under inner product, where
            // longer vectors in the same direction rank first)
            if metric == Metric::InnerProduct {
                continue;
            }
            let q = metric.prepare(&data[3]).unwrap();
            let tids: Vec<Tid> = pg
                .search(&q, 5, 100)
                .unwrap()
                .iter()
                .flat_map(|c| pg.heap_tids(c.id).unwrap())
                .collect();
            assert!(
                tids.contains(&heap_tid(3)) && tids.contains(&heap_tid(1500)),
                "{metric:?}"
            );
        }
    }

    #[test]
    fn empty_graph_and_dimension_limit() {
        let g = BuildGraph::new(
            BuildParams {
                m: 4,
                ef_construction: 8,
                metric: Metric::L2,
                seed: 0,
                storage: Storage::F32,
            },
            3,
        );
        let store = MemStore::new();
        write_graph(&g, &store).unwrap();
        let pg = PageGraph::open(&store).unwrap();
        assert!(pg.search(&[0.0, 0.0, 0.0], 3, 10).unwrap().is_empty());
        assert!(
            max_dims() >= 2000,
            "at least pgvector's indexable 2000 dimensions: {}",
            max_dims()
        );
        let big = BuildGraph::new(
            BuildParams {
                m: 4,
                ef_construction: 8,
                metric: Metric::L2,
                seed: 0,
                storage: Storage::F32,
            },
            max_dims() + 1,
        );
        assert!(write_graph(&big, &MemStore::new())
            .unwrap_err()
            .contains("do not fit"));
        // the largest element still fits, next to its neighbour tuple or not
        let mut g = BuildGraph::new(
            BuildParams {
                m: 16,
                ef_construction: 8,
                metric: Metric::L2,
                seed: 0,
                storage: Storage::F32,
            },
            max_dims(),
        );
        for i in 0..20 {
            g.push(&vec![i as f32; max_dims()], tid_payload(heap_tid(i)));
        }
        g.insert_pending(&pool(), 4, |_| {});
        let store = MemStore::new();
        write_graph(&g, &store).unwrap();
        let pg = PageGraph::open(&store).unwrap();
        let found = pg.search(&vec![3.0; max_dims()], 1, 10).unwrap();
        assert_eq!(pg.heap_tids(found[0].id).unwrap(), vec![heap_tid(3)]);
    }

    /// A damaged link met halfway through an insert's or a VACUUM's
    /// search is their error, not a silent dead end: the insert does not
    /// go on to link a new element from a partial search.
    #[test]
    fn writers_report_a_damaged_link_their_search_meets() {
        let data = clustered(600, 8, 4, 3);
        let (_, store) = paged_index(&data, Metric::L2, 8, 1);
        point_entry_outside(&store);
        let pages = store.nblocks();
        let err = crate::insert::insert(&store, &data[3], heap_tid(700), 1).unwrap_err();
        assert!(err.0.contains("outside the index"), "{}", err.0);
        assert_eq!(store.nblocks(), pages, "nothing written");
        let err = crate::vacuum::bulk_delete(&store, |t| row_of(t) % 5 == 0, || {}).unwrap_err();
        assert!(err.0.contains("outside the index"), "{}", err.0);
    }

    #[test]
    fn corrupted_pages_are_reported_not_crashed_on() {
        let data = clustered(400, 8, 4, 5);
        let (_, store) = paged_index(&data, Metric::L2, 8, 1);
        let q = data[7].clone();
        // wrong magic, wrong version
        for (at, what) in [(24, "does not belong"), (28, "layout version")] {
            let (_, s) = paged_index(&data, Metric::L2, 8, 1);
            s.corrupt(0, |p| p[at] ^= 0x5a);
            let err = PageGraph::open(&s).err().expect("refused");
            assert!(err.0.contains(what), "{}", err.0);
        }
        // a foreign data page (special space magic)
        store.corrupt(1, |p| p[pagestore::PAGE_SIZE - 8] ^= 0xff);
        let pg = PageGraph::open(&store).unwrap();
        let err = pg.search(&q, 10, 40).expect_err("reported");
        assert!(err.0.contains("not an hnsw data page"), "{}", err.0);
        // random byte flips anywhere in data pages: errors or wrong answers, never a panic
        let mut state = 12345u64;
        for round in 0..300 {
            let (_, s) = paged_index(&data[..120], Metric::L2, 8, 1);
            for _ in 0..(1 + round % 8) {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                let block = 1 + (state >> 33) as u32 % (s.nblocks() - 1);
                let at = (state >> 13) as usize % pagestore::PAGE_SIZE;
                s.corrupt(block, |p| p[at] ^= 1 << (state % 8));
            }
            if let Ok(pg) = PageGraph::open(&s) {
                if let Ok(found) = pg.search(&data[round % 120], 5, 20) {
                    for c in &found {
                        let _ = pg.heap_tids(c.id);
                    }
                }
            }
        }
        // a link to a block past the end
        let (_, s) = paged_index(&data, Metric::L2, 8, 1);
        let pg = PageGraph::open(&s).unwrap();
        point_entry_outside(&s);
        let err = pg.search(&q, 5, 20).expect_err("reported");
        assert!(err.0.contains("outside the index"), "{}", err.0);
        let _ = payload_tid(0);
    }
}

mod page_insert {
    use super::*;
    use crate::format::{payload_tid, tid_payload};
    use crate::insert::{insert, Inserted};
    use crate::page_graph::PageGraph;
    use crate::write::write_graph;
    use pagestore::{page, MemStore, PageStore, Tid};

    fn empty_index(dim: usize, metric: Metric, m: usize) -> MemStore {
        let g = BuildGraph::new(
            BuildParams {
                m,
                ef_construction: 64,
                metric,
                seed: 3,
                storage: Storage::F32,
            },
            dim,
        );
        let store = MemStore::new();
        write_graph(&g, &store).unwrap();
        store
    }

    fn page_recall(
        store: &MemStore,
        data: &[Vec<f32>],
        queries: &[Vec<f32>],
        metric: Metric,
        ef: usize,
    ) -> f64 {
        let pg = PageGraph::open(store).unwrap();
        let mut hits = 0;
        for q in queries {
            let truth: HashSet<u32> = brute_force(data, metric, q, 10).into_iter().collect();
            let found = pg.search(&metric.prepare(q).unwrap(), 10, ef).unwrap();
            for c in found {
                let tids = pg.heap_tids(c.id).unwrap();
                if tids.iter().any(|t| truth.contains(&(row_of(*t) as u32))) {
                    hits += 1;
                }
            }
        }
        hits as f64 / (10 * queries.len()) as f64
    }

    fn check_pages(store: &MemStore) {
        for b in 0..store.nblocks() {
            store.read(b, page::check).unwrap();
        }
        check_link_distances(store);
    }

    /// Every link of every reachable element carries its true distance from
    /// the element (what link-backs decide by), and every level-0 list
    /// keeps at least one diverse link.
    pub(super) fn check_link_distances(store: &MemStore) {
        check_links(store, true)
    }

    /// As `check_link_distances`; `diverse`: also require a diverse link in
    /// every level-0 list (not after a test rewrote lists by hand).
    pub(super) fn check_links(store: &MemStore, diverse: bool) {
        use crate::page_graph::read_links;
        let pg = PageGraph::open(store).unwrap();
        let meta = *pg.meta();
        let m = meta.m as usize;
        let Some((entry, _)) = pg.entry_point() else {
            return;
        };
        let mut seen = HashSet::from([entry]);
        let mut todo = vec![entry];
        let mut checked = 0;
        while let Some(t) = todo.pop() {
            let e = pg.element(t).unwrap();
            for l in 0..=e.level {
                let (_, links) = read_links(store, e.neighbors, m, e.level, l).unwrap();
                let live: Vec<_> = links.iter().filter(|k| k.tid.is_valid()).collect();
                if diverse && l == 0 && !live.is_empty() {
                    assert!(live.iter().any(|k| k.diverse), "{t:?} has no diverse link");
                }
                for k in live {
                    let v = pg.element(k.tid).unwrap().vector;
                    let d = meta.metric.distance(&e.vector, &v);
                    // upper levels store no keys
                    assert!(
                        l > 0 || (d - k.distance).abs() <= 1e-5 * d.abs().max(1.0),
                        "{t:?} -> {:?}: stored {} true {d}",
                        k.tid,
                        k.distance
                    );
                    checked += 1;
                    if seen.insert(k.tid) {
                        todo.push(k.tid);
                    }
                }
            }
        }
        assert!(checked > 0 || seen.len() == 1);
    }

    #[test]
    fn inserting_one_by_one_into_an_empty_index() {
        let data = clustered(1500, 16, 8, 31);
        let queries = clustered_from(40, 16, 8, 31, 32);
        for metric in [Metric::L2, Metric::Cosine] {
            let store = empty_index(16, metric, 16);
            for (i, v) in data.iter().enumerate() {
                assert!(matches!(
                    insert(&store, v, heap_tid(i), 7).unwrap(),
                    Inserted::Element(_)
                ));
            }
            check_pages(&store);
            let r = page_recall(&store, &data, &queries, metric, 100);
            eprintln!(
                "one-by-one inserts, {metric:?}: recall@10 {r:.3} at ef 100, {} pages",
                store.nblocks()
            );
            assert!(r >= 0.95, "{metric:?}: recall@10 {r}");
            // ~ (72 + 64 + 8 + 328) bytes per row: about 17 rows a page
            assert!(store.nblocks() < 1500 / 15, "{} pages", store.nblocks());
        }
    }

    /// A store that holds every thread at its first write of the metapage
    /// until `n` threads are waiting there: concurrent first inserts into
    /// an empty index all search the empty graph and place their element
    /// before any of them becomes the entry point (the race users hit with
    /// 10 clients inserting into a new index).
    struct MetaRace {
        inner: MemStore,
        barrier: std::sync::Barrier,
    }

    thread_local! {
        static RACED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    impl PageStore for MetaRace {
        fn nblocks(&self) -> u32 {
            self.inner.nblocks()
        }
        fn read<R>(&self, block: u32, f: impl FnOnce(&[u8]) -> R) -> R {
            self.inner.read(block, f)
        }
        fn write<R>(&self, block: u32, f: impl FnOnce(&mut [u8]) -> R) -> R {
            if block == 0 && !RACED.with(|r| r.replace(true)) {
                self.barrier.wait();
            }
            self.inner.write(block, f)
        }
        fn extend<R>(&self, f: impl FnOnce(u32, &mut [u8]) -> R) -> R {
            self.inner.extend(f)
        }
    }

    #[test]
    fn concurrent_first_inserts_all_join_the_graph() {
        use crate::check::check_index;
        const CLIENTS: usize = 10;
        let data = clustered(CLIENTS, 16, 3, 61);
        // several level seeds, so that in some rounds a later insert is
        // taller than the first entry point
        for seed in 0..6u64 {
            let race = MetaRace {
                inner: empty_index(16, Metric::L2, 16),
                barrier: std::sync::Barrier::new(CLIENTS),
            };
            std::thread::scope(|s| {
                for (i, v) in data.iter().enumerate() {
                    let race = &race;
                    s.spawn(move || {
                        RACED.with(|r| r.set(false));
                        let got = insert(race, v, heap_tid(i), seed).unwrap();
                        assert!(matches!(got, Inserted::Element(_)));
                    });
                }
            });
            let store = &race.inner;
            let r = check_index(store, || {});
            assert_eq!(r.problems.count, 0, "{:?}", r.problems.first);
            assert_eq!(
                (r.elements, r.unreachable),
                (CLIENTS as u64, 0),
                "seed {seed}"
            );
            // a plain search finds every row
            let pg = PageGraph::open(store).unwrap();
            let found = pg.search(&data[0], CLIENTS, 40).unwrap();
            assert_eq!(found.len(), CLIENTS, "seed {seed}");
            check_link_distances(store);
        }
    }

    #[test]
    fn inserts_after_a_bulk_build_are_found() {
        let data = clustered(2000, 16, 8, 41);
        let queries = clustered_from(40, 16, 8, 41, 42);
        let mut g = BuildGraph::new(
            BuildParams {
                m: 16,
                ef_construction: 64,
                metric: Metric::L2,
                seed: 3,
                storage: Storage::F32,
            },
            16,
        );
        for (i, v) in data[..1000].iter().enumerate() {
            g.push(v, tid_payload(heap_tid(i)));
        }
        g.insert_pending(&pool(), 128, |_| {});
        let store = MemStore::new();
        write_graph(&g, &store).unwrap();
        for (i, v) in data.iter().enumerate().skip(1000) {
            insert(&store, v, heap_tid(i), 7).unwrap();
        }
        check_pages(&store);
        let r = page_recall(&store, &data, &queries, Metric::L2, 100);
        eprintln!("bulk build + inserts: recall@10 {r:.3} at ef 100");
        assert!(r >= 0.95, "recall@10 {r}");
        // every inserted row finds itself
        let pg = PageGraph::open(&store).unwrap();
        for i in (1000..2000).step_by(37) {
            let found = pg.search(&data[i], 1, 40).unwrap();
            assert!(
                pg.heap_tids(found[0].id).unwrap().contains(&heap_tid(i)),
                "row {i}"
            );
        }
    }

    #[test]
    fn duplicates_share_elements_and_zero_vectors_are_skipped() {
        let store = empty_index(3, Metric::Cosine, 4);
        assert_eq!(
            insert(&store, &[0.0, 0.0, 0.0], heap_tid(0), 1).unwrap(),
            Inserted::NotIndexed
        );
        let mut elements = HashSet::new();
        for i in 1..=25 {
            match insert(&store, &[1.0, 2.0, 3.0], heap_tid(i), 1).unwrap() {
                Inserted::Element(t) | Inserted::Duplicate(t) => {
                    elements.insert(t);
                }
                Inserted::NotIndexed => panic!("indexable"),
            }
        }
        let slots = crate::format::payload_slots(Storage::F32, 12, 4);
        assert!((4..=MAX_PAYLOADS).contains(&slots));
        assert_eq!(
            elements.len(),
            25usize.div_ceil(slots),
            "25 copies in elements of at most {slots}"
        );
        let pg = PageGraph::open(&store).unwrap();
        let found = pg
            .search(&Metric::Cosine.prepare(&[1.0, 2.0, 3.0]).unwrap(), 10, 10)
            .unwrap();
        let mut tids: Vec<Tid> = found
            .iter()
            .flat_map(|c| pg.heap_tids(c.id).unwrap())
            .collect();
        tids.sort();
        assert_eq!(tids, (1..=25).map(heap_tid).collect::<Vec<_>>());
        assert!(
            insert(&store, &[1.0, 2.0], heap_tid(99), 1).is_err(),
            "wrong dimensions"
        );
        let _ = payload_tid(0);
    }

    #[test]
    fn insert_into_a_corrupted_index_fails_cleanly() {
        let store = empty_index(4, Metric::L2, 4);
        for i in 0..50 {
            insert(&store, &[i as f32, 1.0, 2.0, 3.0], heap_tid(i), 1).unwrap();
        }
        store.corrupt(1, |p| p[pagestore::PAGE_SIZE - 8] ^= 0xff);
        let err = insert(&store, &[5.5, 1.0, 2.0, 3.0], heap_tid(60), 1).unwrap_err();
        assert!(err.0.contains("not an hnsw data page"), "{}", err.0);
        store.corrupt(0, |p| p[24] ^= 1);
        assert!(insert(&store, &[5.5, 1.0, 2.0, 3.0], heap_tid(61), 1).is_err());
    }
}

mod page_vacuum {
    use super::*;
    use crate::insert::insert;
    use crate::page_graph::PageGraph;
    use crate::vacuum::bulk_delete;
    use pagestore::{MemStore, PageStore};

    /// The k nearest live rows the index returns (deleted elements skipped).
    fn live_search(store: &MemStore, q: &[f32], k: usize, ef: usize) -> Vec<usize> {
        let pg = PageGraph::open(store).unwrap();
        let rows: Vec<usize> = pg
            .search(q, ef, ef)
            .unwrap()
            .iter()
            .flat_map(|c| pg.heap_tids(c.id).unwrap())
            .map(row_of)
            .take(k)
            .collect();
        rows
    }

    /// Rounds of inserts, deletes and VACUUM (what the soak test does to an
    /// index): recall at the end stays within 0.02 of a fresh build's.
    /// Measured (10 rounds deleting a third / 4 rounds deleting half):
    /// 0.961 / - vs 1.000 when vacuum gave elements new neighbours from
    /// their 2-hop lists only; 0.980 / - with the new neighbours linking
    /// back; 0.990 / 0.960 with a search (ef_construction) for candidates
    /// too; 1.000 / 1.000 with the search at twice ef_construction (deleted
    /// elements it passes through take half its window). Inserts alone:
    /// 0.998 vs 0.999.
    #[test]
    fn churn_keeps_recall_near_a_fresh_build() {
        let data = clustered(12_000, 48, 40, 61);
        let queries = clustered_from(100, 48, 40, 61, 62);
        for (rounds, one_in) in [(10, 3), (4, 2), (10, 10)] {
            let store = paged_index(&data[..2000], Metric::L2, 8, 5).1;
            let mut live: HashSet<usize> = (0..2000).collect();
            let mut rng = Rng(99);
            let mut next = 2000;
            for _ in 0..rounds {
                for _ in 0..10_000 / rounds {
                    crate::insert::insert(&store, &data[next], heap_tid(next), 7).unwrap();
                    live.insert(next);
                    next += 1;
                }
                let mut sorted: Vec<usize> = live.iter().copied().collect();
                sorted.sort();
                let dead: HashSet<usize> = sorted
                    .into_iter()
                    .filter(|_| rng.next() % one_in == 0)
                    .collect();
                bulk_delete(&store, |t| dead.contains(&row_of(t)), || {}).unwrap();
                live.retain(|i| !dead.contains(i));
            }
            let mut rows: Vec<usize> = live.into_iter().collect();
            rows.sort();
            let survivors: Vec<Vec<f32>> = rows.iter().map(|i| data[*i].clone()).collect();
            let fresh = paged_index(&survivors, Metric::L2, 8, 5).1;
            let (mut churned, mut rebuilt) = (0, 0);
            for q in &queries {
                let truth: HashSet<usize> = brute_force(&survivors, Metric::L2, q, 10)
                    .into_iter()
                    .map(|j| j as usize)
                    .collect();
                churned += live_search(&store, q, 10, 40)
                    .iter()
                    .filter(|r| truth.contains(&rows.binary_search(r).unwrap()))
                    .count();
                rebuilt += live_search(&fresh, q, 10, 40)
                    .iter()
                    .filter(|r| truth.contains(r))
                    .count();
            }
            let (a, b) = (churned as f64 / 1000.0, rebuilt as f64 / 1000.0);
            eprintln!(
                "{rounds} rounds deleting 1 in {one_in} ({} rows left): recall@10 {a:.3}, fresh build {b:.3}",
                rows.len()
            );
            assert!(a >= b - 0.02, "churned {a} vs fresh {b}");
        }
    }

    #[test]
    fn vacuum_removes_dead_rows_and_keeps_recall() {
        let data = clustered(2000, 16, 8, 51);
        let queries = clustered_from(40, 16, 8, 51, 52);
        let store = paged_index(&data, Metric::L2, 16, 5).1;
        let dead = |i: usize| i % 10 < 3; // 30% of the rows
        let mut calls = 0;
        let stats = bulk_delete(&store, |t| dead(row_of(t)), || calls += 1).unwrap();
        assert_eq!(stats.heap_tids_removed, 600);
        assert_eq!(stats.elements_deleted, 600);
        assert_eq!(stats.live_elements, 1400);
        assert_eq!(stats.live_heap_tids, 1400);
        assert!(stats.links_repaired > 0 && calls >= store.nblocks() as usize - 1);
        super::page_insert::check_link_distances(&store);
        let pg = PageGraph::open(&store).unwrap();
        let (entry, _) = pg.entry_point().unwrap();
        assert!(
            !pg.element(entry).unwrap().deleted,
            "entry point moved off a deleted element"
        );
        let live: Vec<usize> = (0..2000).filter(|i| !dead(*i)).collect();
        let survivors: Vec<Vec<f32>> = live.iter().map(|i| data[*i].clone()).collect();
        let mut hits = 0;
        for q in &queries {
            let truth: HashSet<usize> = brute_force(&survivors, Metric::L2, q, 10)
                .into_iter()
                .map(|j| live[j as usize])
                .collect();
            let found = live_search(&store, q, 10, 100);
            assert!(found.iter().all(|r| !dead(*r)), "no dead row is returned");
            hits += found.iter().filter(|r| truth.contains(r)).count();
        }
        let r = hits as f64 / 400.0;
        eprintln!("after deleting 30%: recall@10 {r:.3} at ef 100");
        assert!(r >= 0.95, "recall@10 after vacuum {r}");
        // no live element still links to a deleted one
        let again = bulk_delete(&store, |t| dead(row_of(t)), || {}).unwrap();
        assert_eq!(
            (
                again.heap_tids_removed,
                again.elements_deleted,
                again.links_repaired
            ),
            (0, 0, 0)
        );
        // inserts keep working afterwards
        for i in 0..50 {
            insert(&store, &data[i * 3 + 1], heap_tid(3000 + i), 9).unwrap();
        }
        let found = live_search(&store, &data[4], 3, 40);
        assert!(found.contains(&4) && found.contains(&3001), "{found:?}");
    }

    #[test]
    fn vacuum_of_every_row_and_of_part_of_a_duplicate() {
        let store = paged_index(&clustered(300, 8, 3, 61), Metric::L2, 16, 5).1;
        let stats = bulk_delete(&store, |_| true, || {}).unwrap();
        assert_eq!((stats.live_elements, stats.elements_deleted), (0, 300));
        let pg = PageGraph::open(&store).unwrap();
        assert!(
            pg.entry_point().is_none(),
            "no entry point in an empty index"
        );
        assert!(live_search(&store, &[0.0; 8], 5, 40).is_empty());
        insert(&store, &[9.0; 8], heap_tid(1000), 1).unwrap();
        assert_eq!(live_search(&store, &[9.0; 8], 5, 40), vec![1000]);
        for i in 1001..1003 {
            insert(&store, &[9.0; 8], heap_tid(i), 1).unwrap();
        }
        let stats = bulk_delete(&store, |t| row_of(t) == 1001, || {}).unwrap();
        assert_eq!(
            (
                stats.heap_tids_removed,
                stats.elements_deleted,
                stats.live_heap_tids
            ),
            (1, 0, 2)
        );
        let mut found = live_search(&store, &[9.0; 8], 5, 40);
        found.sort();
        assert_eq!(found, vec![1000, 1002]);
    }

    /// Elements an exhaustive search can reach from the entry point.
    pub(super) fn reachable_elements(store: &MemStore) -> HashSet<pagestore::Tid> {
        let pg = PageGraph::open(store).unwrap();
        let mut it = crate::iterative::IterativeSearch::<pagestore::Tid>::new(&[0.0; 8], 50);
        let mut seen = HashSet::new();
        loop {
            let batch = pg.walk(|w| it.next_batch(w)).unwrap();
            if batch.is_empty() {
                break;
            }
            seen.extend(batch.iter().map(|c| c.id));
        }
        seen
    }

    /// Five level-0 elements (not the entry point) of an index of 500,
    /// with every level-0 link into them stripped, as unlucky pruning could.
    pub(super) fn stranded_index() -> (MemStore, Vec<pagestore::Tid>) {
        use crate::format::{links_bytes, Link};
        use crate::page_graph::{read_links, write_slots_if_unchanged};
        let store = paged_index(&clustered(500, 8, 4, 71), Metric::L2, 8, 5).1;
        let all = reachable_elements(&store);
        assert_eq!(all.len(), 500);
        let pg = PageGraph::open(&store).unwrap();
        let (entry, _) = pg.entry_point().unwrap();
        // sorted: a HashSet's order differs from run to run
        let mut sorted: Vec<pagestore::Tid> = all.iter().copied().collect();
        sorted.sort();
        let victims: Vec<pagestore::Tid> = sorted
            .into_iter()
            .filter(|t| *t != entry && pg.element(*t).unwrap().level == 0)
            .step_by(97)
            .take(5)
            .collect();
        assert_eq!(victims.len(), 5);
        for t in &all {
            let e = pg.element(*t).unwrap();
            let (before, slots) = read_links(&store, e.neighbors, 8, e.level, 0).unwrap();
            let kept: Vec<Link> = slots
                .iter()
                .map(|s| {
                    if victims.contains(&s.tid) {
                        Link::EMPTY
                    } else {
                        *s
                    }
                })
                .collect();
            assert!(write_slots_if_unchanged(
                &store,
                e.neighbors,
                8,
                0,
                &before,
                &links_bytes(0, &kept)
            )
            .unwrap());
        }
        (store, victims)
    }

    #[test]
    fn vacuum_links_back_elements_no_search_can_reach() {
        let (store, victims) = stranded_index();
        let pg = PageGraph::open(&store).unwrap();
        let stranded = reachable_elements(&store);
        assert!(
            victims.iter().all(|v| !stranded.contains(v)),
            "victims are unreachable"
        );
        let mut calls = 0;
        let stats = bulk_delete(&store, |_| false, || calls += 1).unwrap();
        // a victim whose only way in is through another victim becomes
        // reachable when that one is relinked: at most one relink each
        assert!(
            (1..=victims.len() as u64).contains(&stats.elements_relinked),
            "{stats:?}"
        );
        // the test stranded the victims by rewriting lists without their
        // diverse flags: distances only
        super::page_insert::check_links(&store, false);
        assert!(calls > victims.len());
        assert_eq!(
            reachable_elements(&store).len(),
            500,
            "every element reachable again"
        );
        // each victim is found as its own nearest neighbour again
        for v in &victims {
            let vector = pg.element(*v).unwrap().vector;
            assert_eq!(pg.search(&vector, 1, 40).unwrap()[0].id, *v);
        }
        // a second pass finds nothing to do
        assert_eq!(
            bulk_delete(&store, |_| false, || {})
                .unwrap()
                .elements_relinked,
            0
        );
    }
}

mod iterative_scan {
    use super::*;
    use crate::iterative::IterativeSearch;
    use crate::page_graph::PageGraph;

    fn graph(data: &[Vec<f32>]) -> BuildGraph {
        let serial = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        build(&serial, data, Metric::L2, 16, 64)
    }

    #[test]
    fn first_batch_is_the_ordinary_search() {
        let data = clustered(2000, 16, 8, 71);
        let g = graph(&data);
        for q in clustered_from(30, 16, 8, 71, 72) {
            let plain: Vec<u32> = search(&g, &q, 40, 40)
                .iter()
                .map(|c| c.distance.to_bits())
                .collect();
            let mut it = IterativeSearch::<u32>::new(&q, 40);
            let first: Vec<u32> = it
                .next_batch(&g)
                .iter()
                .map(|c| c.distance.to_bits())
                .collect();
            assert_eq!(plain, first);
        }
    }

    #[test]
    fn batches_cover_the_whole_graph_once() {
        let data = clustered(2000, 16, 8, 73);
        let g = graph(&data);
        let mut it = IterativeSearch::<u32>::new(&data[5], 40);
        let mut seen = HashSet::new();
        let mut batches = 0;
        loop {
            let b = it.next_batch(&g);
            if b.is_empty() {
                break;
            }
            assert!(
                b.windows(2).all(|w| w[0].distance <= w[1].distance),
                "nearest first within a batch"
            );
            for c in b {
                assert!(seen.insert(c.id), "node {} twice", c.id);
            }
            batches += 1;
        }
        assert_eq!(seen.len(), 2000);
        assert_eq!(batches, 50);
        assert_eq!(it.evaluated, 2000);
    }

    #[test]
    fn filtered_queries_return_k_rows() {
        let data = clustered(5000, 16, 8, 75);
        let queries = clustered_from(30, 16, 8, 75, 76);
        let g = graph(&data);
        // A filter independent of the vectors, like most WHERE clauses.
        for modulus in [10u32, 100] {
            let passes = independent_filter(modulus);
            let (relaxed, strict) = filtered_recall(&g, &data, &queries, Metric::L2, passes);
            eprintln!(
                "selectivity 1/{modulus}: recall@10 relaxed {relaxed:.3}, strict {strict:.3}"
            );
            // Measured: 1/10 -> 0.983 relaxed, 1.000 strict; 1/100 -> 0.883,
            // 0.907 (about 50 qualifying rows spread over 8 separated
            // clusters; the 1% target is measured on real data).
            let (strict_floor, relaxed_floor) = if modulus == 10 {
                (0.97, 0.95)
            } else {
                (0.88, 0.85)
            };
            assert!(
                strict >= strict_floor,
                "selectivity 1/{modulus}: strict recall@10 {strict}"
            );
            assert!(
                relaxed >= relaxed_floor,
                "selectivity 1/{modulus}: relaxed recall@10 {relaxed}"
            );
        }
        // A filter that keeps only clusters far from most queries: rows still
        // come back, recall is lower (measured 0.76 relaxed, 0.85 strict).
        let (relaxed, strict) = filtered_recall(&g, &data, &queries, Metric::L2, |id| id % 10 == 7);
        eprintln!("cluster-correlated filter: recall@10 relaxed {relaxed:.3}, strict {strict:.3}");
        assert!(strict >= 0.8, "{strict}");
    }

    #[test]
    fn a_sweeping_search_returns_the_nodes_no_walk_reaches() {
        let (store, victims) = super::page_vacuum::stranded_index();
        let pg = PageGraph::open(&store).unwrap();
        let q = pg.element(victims[0]).unwrap().vector;
        for sweep in [false, true] {
            let mut it = IterativeSearch::<pagestore::Tid>::new(&q, 20);
            if sweep {
                it = it.sweeping();
            }
            let mut seen = HashSet::new();
            loop {
                let b = pg.walk(|w| it.next_batch(w)).unwrap();
                if b.is_empty() {
                    break;
                }
                assert!(b.windows(2).all(|w| w[0].distance <= w[1].distance));
                for c in &b {
                    assert!(seen.insert(c.id), "{:?} twice", c.id);
                }
            }
            let found = victims.iter().filter(|v| seen.contains(v)).count();
            if sweep {
                assert_eq!((seen.len(), found), (500, 5));
                assert_eq!(it.evaluated, 500);
            } else {
                assert_eq!((seen.len(), found), (495, 0));
            }
        }
    }

    #[test]
    fn continues_on_pages_too() {
        let data = clustered(600, 8, 4, 77);
        let (g, store) = paged_index(&data, Metric::L2, 8, 2);
        let pg = PageGraph::open(&store).unwrap();
        let mut it = IterativeSearch::<pagestore::Tid>::new(&data[0], 20);
        let mut n = 0;
        loop {
            let b = pg.walk(|w| it.next_batch(w)).unwrap();
            if b.is_empty() {
                break;
            }
            n += b.len();
        }
        assert_eq!(n, g.len());
    }
}

/// A pool of two threads, as the machine the tests run on has.
fn pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
}

#[test]
fn neighbour_tuples_of_the_highest_level_fit_a_page() {
    use crate::format::max_level;
    assert_eq!(max_level(100), 10);
    assert_eq!(max_level(16), 81);
    for m in 2..=100 {
        // tuple space of an empty page, less one line pointer, MAXALIGNed
        let space = (8192 - 24 - 8 - 4) & !7;
        // level 0: 10-byte slots (TID and key); upper levels: TIDs only
        let bytes = 4 + 10 * 2 * m + 6 * max_level(m) * m;
        assert!(bytes.next_multiple_of(8) <= space, "m {m}: {bytes} bytes");
        let over = bytes + 6 * m;
        assert!(
            over.next_multiple_of(8) > space,
            "m {m}: the cap is the highest that fits"
        );
        for id in 0..2000 {
            assert!(crate::select::random_level(9, id, m) <= max_level(m));
        }
    }
}

#[test]
fn payload_slots_fill_pages() {
    use crate::format::payload_slots;
    // 384-d f32 with m = 16: 4 elements a page either way, so all 10 slots
    assert_eq!(payload_slots(Storage::F32, 4 * 384, 16), 10);
    // 384-d binary16: 7 slots fit 7 elements a page where 10 fit 6
    assert_eq!(payload_slots(Storage::F16, 2 * 384, 16), 7);
    // never below the floor, never above the maximum
    for bytes in [4usize, 64, 512, 1024, 3000, 8000] {
        for m in [2usize, 8, 16, 48, 100] {
            let s = payload_slots(Storage::F16, bytes, m);
            assert!((4..=MAX_PAYLOADS).contains(&s), "{bytes} bytes m {m}: {s}");
        }
    }
}

#[test]
fn copies_of_a_vector_come_out_together_at_a_narrow_search() {
    // 20 copies of one vector among other rows, in elements of 4 heap rows
    // (what 3-d f32 elements hold): a first batch at ef 1 used to stop after
    // one element, 4 rows, where pgvector's element of 10 gives 10.
    use crate::format::payload_slots;
    use crate::page_graph::PageGraph;
    assert_eq!(payload_slots(Storage::F32, 12, 16), 4);
    let mut data = uniform_rows(300, 3, 91);
    data.extend(std::iter::repeat_n(vec![0.25, 0.5, 0.75], 20));
    let store = inserted_index(&data, Metric::L2);
    let pg = PageGraph::open(&store).unwrap();
    for ef in [1, 2] {
        let mut it = crate::iterative::IterativeSearch::new(&[0.25, 0.5, 0.75], ef);
        let batch = pg.walk(|w| it.next_batch(w)).unwrap();
        let rows: usize = batch
            .iter()
            .map(|c| pg.heap_tids(c.id).unwrap().len())
            .sum();
        assert!(
            batch.iter().all(|c| c.distance == 0.0),
            "ef {ef}: {batch:?}"
        );
        assert!(rows >= 10 * ef.min(2) && rows <= 20, "ef {ef}: {rows} rows");
        // the rest follow in the next batch
        let more: usize = pg
            .walk(|w| it.next_batch(w))
            .unwrap()
            .iter()
            .map(|c| pg.heap_tids(c.id).unwrap().len())
            .sum();
        assert!(more > 0);
    }
}

#[test]
fn bit_strings_search_by_hamming_and_jaccard_on_pages() {
    use crate::page_graph::PageGraph;
    // 256-bit strings in 8 words, clustered around 8 random centres
    let mut rng = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let centres: Vec<Vec<u32>> = (0..8)
        .map(|_| (0..8).map(|_| next() as u32).collect())
        .collect();
    let data: Vec<Vec<f32>> = (0..800)
        .map(|i| {
            centres[i % 8]
                .iter()
                .map(|w| f32::from_bits(w ^ (next() as u32 & next() as u32 & next() as u32)))
                .collect()
        })
        .collect();
    for metric in [Metric::Hamming, Metric::Jaccard] {
        let (_, store) = paged_index_stored(&data, metric, 8, 1, Storage::Bits);
        let pg = PageGraph::open(&store).unwrap();
        assert_eq!(pg.meta().storage, Storage::Bits);
        for q in data.iter().step_by(97) {
            let got: Vec<f32> = pg
                .search(q, 10, 200)
                .unwrap()
                .iter()
                .map(|c| c.distance)
                .collect();
            let mut want: Vec<f32> = data.iter().map(|v| metric.distance(q, v)).collect();
            want.sort_by(f32::total_cmp);
            assert_eq!(got, want[..10].to_vec(), "{metric:?}");
            assert_eq!(got[0], 0.0);
        }
        // the words come back bit for bit
        let t = pg.search(&data[5], 1, 40).unwrap()[0].id;
        let back = pg.element(t).unwrap().vector;
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same(&back, &data[5]) || data.iter().any(|v| same(&back, v)));
    }
}

mod sparse_vectors {
    use super::*;
    use crate::format::{max_sparse_nnz, tid_payload};
    use crate::insert::{insert, Inserted};
    use crate::page_graph::PageGraph;
    use crate::write::write_graph;
    use distance::sparse;
    use pagestore::{MemStore, PageStore, Tid};
    use std::collections::HashMap;

    const DIM: usize = 3000;
    const METRICS: [Metric; 4] = [
        Metric::SparseL2,
        Metric::SparseInnerProduct,
        Metric::SparseCosine,
        Metric::SparseL1,
    ];

    /// Word forms of sparse vectors around 8 centres of 60 non-zeros each:
    /// a point keeps a random 15..45 of its centre's entries (jittered) and
    /// adds 0..5 random others, so lengths vary from vector to vector.
    fn sparse_data(n: usize, seed: u64, centre_seed: u64) -> Vec<Vec<f32>> {
        let mut rng = Rng(centre_seed);
        let centres: Vec<Vec<(u32, f32)>> = (0..8)
            .map(|_| {
                (0..60)
                    .map(|_| ((rng.next() % DIM as u64) as u32, rng.unit() * 4.0))
                    .collect()
            })
            .collect();
        let mut rng = Rng(seed);
        (0..n)
            .map(|i| {
                let mut entries: Vec<(u32, f32)> = Vec::new();
                for (j, v) in &centres[i % 8] {
                    if rng.next() % 4 != 0 {
                        entries.push((*j, v + rng.unit()));
                    }
                }
                for _ in 0..rng.next() % 6 {
                    entries.push(((rng.next() % DIM as u64) as u32, rng.unit()));
                }
                entries.sort_by_key(|e| e.0);
                entries.dedup_by_key(|e| e.0);
                entries.retain(|e| e.1 != 0.0);
                words(&entries)
            })
            .collect()
    }

    fn words(entries: &[(u32, f32)]) -> Vec<f32> {
        let (indices, values): (Vec<u32>, Vec<f32>) = entries.iter().copied().unzip();
        let mut w = Vec::new();
        sparse::to_words(
            DIM as u32,
            sparse::Sparse {
                indices: &indices,
                values: &values,
            },
            &mut w,
        );
        w
    }

    fn params(metric: Metric) -> BuildParams {
        BuildParams {
            m: 8,
            ef_construction: 64,
            metric,
            seed: 3,
            storage: Storage::Sparse,
        }
    }

    fn sparse_index(data: &[Vec<f32>], metric: Metric) -> (BuildGraph, MemStore) {
        let mut g = BuildGraph::new(params(metric), DIM);
        for (i, v) in data.iter().enumerate() {
            g.push(v, tid_payload(heap_tid(i)));
        }
        let serial = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        g.insert_pending(&serial, 128, |_| {});
        let store = MemStore::new();
        write_graph(&g, &store).unwrap();
        (g, store)
    }

    #[test]
    fn sparse_metrics_equal_their_dense_counterparts() {
        let data = sparse_data(40, 5, 6);
        let dense = |w: &[f32]| {
            let s = sparse::from_words(w);
            let mut d = vec![0f32; DIM];
            for (i, v) in s.indices.iter().zip(s.values) {
                d[*i as usize] = *v;
            }
            d
        };
        let pairs = [
            (Metric::SparseL2, Metric::L2),
            (Metric::SparseInnerProduct, Metric::InnerProduct),
            (Metric::SparseCosine, Metric::Cosine),
            (Metric::SparseL1, Metric::L1),
        ];
        for (s, d) in pairs {
            for a in &data[..8] {
                for b in &data {
                    let got = s.distance(&s.prepare(a).unwrap(), &s.prepare(b).unwrap());
                    let want = d.distance(
                        &d.prepare(&dense(a)).unwrap(),
                        &d.prepare(&dense(b)).unwrap(),
                    );
                    assert!(
                        (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                        "{s:?}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn recall_and_pages_equal_memory_for_every_sparse_metric() {
        let data = sparse_data(1500, 41, 40);
        let queries = sparse_data(30, 42, 40);
        for metric in METRICS {
            let (g, store) = sparse_index(&data, metric);
            let pg = PageGraph::open(&store).unwrap();
            assert_eq!(
                (pg.meta().dims, pg.meta().storage),
                (DIM as u32, Storage::Sparse)
            );
            // The pages hold the graph as built: every node's vector and
            // links. (Searches on both may part ways on equal distances,
            // frequent between sparse vectors, whose ties break by id.)
            let all = live_elements(&pg);
            let at: HashMap<u64, Tid> = all
                .iter()
                .flat_map(|t| {
                    pg.heap_tids(*t)
                        .unwrap()
                        .into_iter()
                        .map(move |h| (tid_payload(h), *t))
                })
                .collect();
            let mut links = Vec::new();
            for id in (0..g.len() as u32).filter(|id| g.is_linked_node(*id)) {
                let t = at[&g.payloads(id)[0]];
                assert_eq!(
                    pg.element(t).unwrap().vector,
                    g.vector(id),
                    "{metric:?} {id}"
                );
                for l in 0..=g.level(id) {
                    pg.walk(|w| w.neighbors(t, l, &mut links)).unwrap();
                    let mem: Vec<Tid> = g
                        .links(id, l)
                        .iter()
                        .map(|n| at[&g.payloads(*n)[0]])
                        .collect();
                    assert_eq!(links, mem, "{metric:?}: node {id}'s links on level {l}");
                }
            }
            let mut hits = 0;
            let mut paged_hits = 0;
            for q in &queries {
                let truth: HashSet<u32> = brute_force(&data, metric, q, 10).into_iter().collect();
                let q = metric.prepare(q).unwrap();
                let mem = search(&g, &q, 10, 64);
                hits += mem.iter().filter(|c| truth.contains(&c.id)).count();
                paged_hits += pg
                    .search(&q, 10, 64)
                    .unwrap()
                    .iter()
                    .filter(|c| truth.contains(&(row_of(pg.heap_tids(c.id).unwrap()[0]) as u32)))
                    .count();
            }
            let paged = paged_hits as f64 / (10 * queries.len()) as f64;
            assert!(paged >= 0.95, "{metric:?}: recall@10 on pages {paged}");
            let r = hits as f64 / (10 * queries.len()) as f64;
            eprintln!("{metric:?}: recall@10 {r:.3}");
            assert!(r >= 0.95, "{metric:?}: recall@10 {r}");
        }
    }

    #[test]
    fn inserts_of_every_length_up_to_the_page_limit() {
        let data = sparse_data(400, 51, 50);
        let (_, store) = sparse_index(&data[..300], Metric::SparseL2);
        let most = max_sparse_nnz();
        assert!(most >= 1000, "{most}");
        // the longest vector fits, one more non-zero does not
        let long = |n: usize| {
            words(
                &(0..n)
                    .map(|i| (i as u32 * 2, 1.0 + i as f32))
                    .collect::<Vec<_>>(),
            )
        };
        let mut extra = data[300..].to_vec();
        extra.push(long(most));
        extra.push(words(&[])); // the zero vector is indexed under L2
        for (i, v) in extra.iter().enumerate() {
            let r = insert(&store, v, heap_tid(300 + i), 9).unwrap();
            assert!(matches!(r, Inserted::Element(_)), "{r:?}");
        }
        assert!(insert(&store, &long(most + 1), heap_tid(999), 9).is_err());
        let mut wrong_dim = data[0].clone();
        wrong_dim[0] = f32::from_bits(DIM as u32 + 1);
        assert!(insert(&store, &wrong_dim, heap_tid(999), 9).is_err());
        // an identical vector joins its element
        assert_eq!(
            insert(&store, &data[7], heap_tid(998), 9).unwrap(),
            Inserted::Duplicate(
                PageGraph::open(&store)
                    .unwrap()
                    .search(&data[7], 1, 40)
                    .unwrap()[0]
                    .id
            )
        );
        let pg = PageGraph::open(&store).unwrap();
        let all: Vec<&Vec<f32>> = data[..300].iter().chain(&extra).collect();
        for (i, v) in all.iter().enumerate() {
            let found = pg.search(v, 1, 64).unwrap();
            assert_eq!(found[0].distance, 0.0, "row {i}");
            assert!(
                pg.heap_tids(found[0].id).unwrap().contains(&heap_tid(i)),
                "row {i}"
            );
        }
        assert!(store.nblocks() > 2);
    }

    #[test]
    fn a_build_writes_elements_of_the_most_non_zeros() {
        let mut data = sparse_data(50, 61, 60);
        let n = max_sparse_nnz();
        data.push(words(&(0..n).map(|i| (i as u32, 0.5)).collect::<Vec<_>>()));
        let (_, store) = sparse_index(&data, Metric::SparseCosine);
        let pg = PageGraph::open(&store).unwrap();
        let q = Metric::SparseCosine.prepare(&data[50]).unwrap();
        let found = pg.search(&q, 1, 40).unwrap();
        assert!(found[0].distance <= -0.9999, "{:?}", found[0]);
        assert_eq!(pg.heap_tids(found[0].id).unwrap(), vec![heap_tid(50)]);
    }

    #[test]
    fn four_byte_elements_start_aligned() {
        use crate::format::payload_slots;
        for bytes in [4usize, 40, 400, 1000, 4000, 8000] {
            for storage in [Storage::F32, Storage::Sparse, Storage::Bits] {
                assert_eq!(
                    payload_slots(storage, bytes, 16) % 2,
                    0,
                    "{storage:?} {bytes}"
                );
            }
        }
    }
}

#[test]
fn an_outlier_every_neighbour_refuses_is_still_linked() {
    use crate::insert::{insert, Inserted};
    use crate::iterative::IterativeSearch;
    use crate::page_graph::PageGraph;
    use distance::sparse;
    // sparse vectors of two non-zeros in 1000 dimensions: an outlier of
    // 1000 ones is equally far from all of them, and ties with every
    // neighbour's own links, so the heuristic refuses it everywhere
    let words = |entries: &[(u32, f32)]| {
        let (i, v): (Vec<u32>, Vec<f32>) = entries.iter().copied().unzip();
        let mut w = Vec::new();
        let s = sparse::Sparse {
            indices: &i,
            values: &v,
        };
        sparse::to_words(1000, s, &mut w);
        w
    };
    let mut g = BuildGraph::new(
        BuildParams {
            m: 16,
            ef_construction: 64,
            metric: Metric::SparseL2,
            seed: 1,
            storage: Storage::Sparse,
        },
        1000,
    );
    for i in 1..2000u32 {
        let (a, b) = (i % 1000, (i * 7) % 1000);
        if a != b {
            let mut e = [(a, 1.0), (b, (i % 13 + 1) as f32)];
            e.sort_by_key(|x| x.0);
            g.push(&words(&e), crate::format::tid_payload(heap_tid(i as usize)));
        }
    }
    g.insert_pending(&pool(), 256, |_| {});
    let store = pagestore::MemStore::new();
    crate::write::write_graph(&g, &store).unwrap();
    let outlier = words(&(0..1000).map(|i| (i, 1.0)).collect::<Vec<_>>());
    let Inserted::Element(t) = insert(&store, &outlier, heap_tid(5000), 3).unwrap() else {
        panic!("a new element");
    };
    let pg = PageGraph::open(&store).unwrap();
    assert_eq!(pg.search(&outlier, 1, 40).unwrap()[0].id, t);
    // the walk alone (no sweep) reaches it from anywhere
    let mut it = IterativeSearch::new(&words(&[(3, 1.0)]), 40);
    let mut seen = HashSet::new();
    loop {
        let b = pg.walk(|w| it.next_batch(w)).unwrap();
        if b.is_empty() {
            break;
        }
        seen.extend(b.iter().map(|c| c.id));
    }
    assert!(seen.contains(&t));
}

mod index_check {
    use super::*;
    use crate::check::check_index;
    use crate::format::links_bytes;
    use crate::page_graph::{read_links, write_slots_if_unchanged, PageGraph};
    use pagestore::PageStore;

    #[test]
    fn a_sound_index_checks_clean_and_reports_its_rows() {
        let data = clustered(600, 8, 4, 81);
        let (_, store) = paged_index(&data[..500], Metric::L2, 8, 5);
        for (i, v) in data.iter().enumerate().skip(500) {
            crate::insert::insert(&store, v, heap_tid(i), 7).unwrap();
        }
        let mut pages = 0;
        let r = check_index(&store, || pages += 1);
        assert_eq!(r.problems.first, Vec::<String>::new());
        assert_eq!(r.problems.count, 0);
        assert_eq!(r.heap_tids, (0..600).map(heap_tid).collect::<Vec<_>>());
        assert_eq!((r.elements, r.deleted_elements, r.unreachable), (600, 0, 0));
        assert!(r.links >= 600 * 4, "{}", r.links);
        assert_eq!(pages as u32, store.nblocks() - 1);
    }

    #[test]
    fn unreachable_elements_are_a_problem_until_vacuum_relinks_them() {
        let (store, victims) = super::page_vacuum::stranded_index();
        let r = check_index(&store, || {});
        assert_eq!((r.unreachable, r.problems.count), (victims.len() as u64, 1));
        assert_eq!(
            r.problems.first,
            [format!(
                "{} live elements cannot be reached from the entry point (VACUUM relinks them)",
                victims.len()
            )]
        );
        crate::vacuum::bulk_delete(&store, |_| false, || {}).unwrap();
        let r = check_index(&store, || {});
        assert_eq!((r.unreachable, r.problems.count), (0, 0));
    }

    #[test]
    fn broken_links_and_pointers_are_reported() {
        let data = clustered(300, 8, 4, 83);
        let (_, store) = paged_index(&data, Metric::L2, 8, 5);
        let pg = PageGraph::open(&store).unwrap();
        let a = pg.search(&data[10], 1, 40).unwrap()[0].id;
        let b = pg.search(&data[20], 1, 40).unwrap()[0].id;
        let (ea, eb) = (pg.element(a).unwrap(), pg.element(b).unwrap());
        // a's first link now leads to b's neighbour tuple, not an element
        let (before, mut links) = read_links(&store, ea.neighbors, 8, ea.level, 0).unwrap();
        links[0].tid = eb.neighbors;
        assert!(write_slots_if_unchanged(
            &store,
            ea.neighbors,
            8,
            0,
            &before,
            &links_bytes(0, &links)
        )
        .unwrap());
        let r = check_index(&store, || {});
        assert_eq!(r.problems.count, 1, "{:?}", r.problems.first);
        assert!(
            r.problems.first[0].contains("which is not an element"),
            "{:?}",
            r.problems
        );
        // b's element now points at a's neighbour tuple (a wrong level or
        // a shared one: the check names it when the levels differ)
        store
            .write(b.block, |p| -> Result<(), pagestore::Corrupt> {
                crate::format::element_mut(p, b)?.set_neighbors(pagestore::Tid::INVALID);
                Ok(())
            })
            .unwrap();
        let r = check_index(&store, || {});
        assert_eq!(r.problems.count, 2, "{:?}", r.problems.first);
        assert!(r
            .problems
            .first
            .iter()
            .any(|p| p.contains("not a neighbour tuple of its level")));
        // a damaged metapage ends the check with one problem
        store.write(0, |p| p[pagestore::page::HEADER_SIZE] ^= 0xff);
        let r = check_index(&store, || {});
        assert_eq!((r.problems.count, r.elements), (1, 0));
        assert!(
            r.problems.first[0].starts_with("metapage"),
            "{:?}",
            r.problems.first
        );
    }
}

#[test]
fn all_zero_pages_a_crash_leaves_are_skipped() {
    use crate::check::check_index;
    use crate::insert::insert;
    use crate::iterative::IterativeSearch;
    use crate::page_graph::PageGraph;
    use pagestore::PageStore;
    let data = clustered(400, 8, 4, 95);
    let (_, store) = paged_index(&data[..300], Metric::L2, 8, 5);
    // relation extensions whose initialisation never reached the WAL
    for _ in 0..3 {
        store.extend(|_, _| {});
    }
    for (i, v) in data.iter().enumerate().skip(300) {
        insert(&store, v, heap_tid(i), 7).unwrap();
    }
    let r = check_index(&store, || {});
    assert_eq!(
        (r.problems.count, r.new_pages, r.elements),
        (0, 3, 400),
        "{:?}",
        r.problems.first
    );
    // vacuum (both passes and the reachability repair) and a sweeping scan
    let stats = crate::vacuum::bulk_delete(&store, |t| row_of(t) % 2 == 0, || {}).unwrap();
    assert_eq!(stats.heap_tids_removed, 200);
    let pg = PageGraph::open(&store).unwrap();
    let mut it = IterativeSearch::new(&data[1], 40).sweeping();
    let mut n = 0;
    loop {
        let b = pg.walk(|w| it.next_batch(w)).unwrap();
        if b.is_empty() {
            break;
        }
        n += b
            .iter()
            .filter(|c| !pg.heap_tids(c.id).unwrap().is_empty())
            .count();
    }
    assert_eq!(n, 200);
}

#[test]
fn upper_level_elements_are_spread_so_pages_hold_four_384_d_elements() {
    use pagestore::PageStore;
    // 384-d f32 elements with m = 16: four fit a page with their neighbour
    // tuples when at most two of them are on upper levels
    let data = clustered(2000, 384, 8, 97);
    let (g, store) = paged_index(&data, Metric::L2, 16, 5);
    let order = crate::write::placement_orders(&g).0;
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, (0..2000u32).collect::<Vec<_>>(), "every node once");
    let upper: Vec<bool> = order.iter().map(|id| g.level(*id) > 0).collect();
    let n_upper = upper.iter().filter(|u| **u).count();
    assert!(n_upper > 60, "{n_upper} upper-level elements");
    assert!(
        upper
            .windows(4)
            .all(|w| w.iter().filter(|u| **u).count() <= 1),
        "at most one upper-level element in any four in a row"
    );
    let data_pages = store.nblocks() as usize - 1;
    assert!(data_pages <= 2000 / 4 + 2, "{data_pages} data pages");
}

/// 384-d binary16 elements with m = 16 fit seven a page when none is on an
/// upper level and six when one is: the writer lays upper-level elements
/// out together there (spread among the others, 15,606 pages for 100k rows
/// where grouped takes 14,436).
#[test]
fn binary16_elements_pack_seven_a_page() {
    use pagestore::PageStore;
    let data = clustered(2000, 384, 8, 97);
    let (g, store) = paged_index_stored(&data, Metric::L2, 16, 5, Storage::F16);
    let upper = (0..2000u32).filter(|id| g.level(*id) > 0).count();
    let data_pages = store.nblocks() as usize - 1;
    let ideal = (2000 - upper).div_ceil(7) + upper.div_ceil(6);
    eprintln!("{upper} upper-level elements, {data_pages} data pages, {ideal} at best");
    assert!(
        data_pages <= ideal + 2,
        "{data_pages} data pages, {ideal} at best"
    );
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

/// A node inserted while another climbs to a new level could reach it on an
/// upper level before it had any level-0 link, find nothing else on level 0
/// and keep that one node as its only neighbour: cut off from its region, a
/// query for its own vector missed it at ef_search 40 (pg_regress saw 2999
/// of 3000 rows find themselves). Linked bottom up, every node has its
/// region. Before the fix: five or more such nodes per 100 builds here.
#[test]
fn concurrent_inserts_link_every_node_into_its_region() {
    let data = circle(2000);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(8)
        .build()
        .unwrap();
    let mut cut_off = Vec::new();
    for rep in 0..100 {
        let g = build(&pool, &data, Metric::L2, 4, 32);
        for id in 0..g.len() as u32 {
            if g.links(id, 0).len() < 2 {
                cut_off.push((rep, id, g.links(id, 0)));
            }
        }
    }
    assert!(
        cut_off.is_empty(),
        "nodes with fewer than 2 links: {cut_off:?}"
    );
}

mod reuse;

/// Rows for inner-product tests: uniform in [0, 1)^dim (norms from 0 to
/// sqrt(dim): most rows sit inside the hull, never any query's nearest),
/// and queries drawn the same way.
fn uniform_rows(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| (0..dim).map(|_| rng.unit() + 0.5).collect())
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
        for c in pg.search(&metric.prepare(q).unwrap(), 10, ef).unwrap() {
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
        },
        data[0].len(),
    );
    let store = pagestore::MemStore::new();
    crate::write::write_graph(&g, &store).unwrap();
    for (i, v) in data.iter().enumerate() {
        crate::insert::insert(&store, v, heap_tid(i), 7).unwrap();
    }
    store
}

#[test]
fn inner_product_builds_reach_every_row_without_losing_recall() {
    // Under inner product most of these rows have no link into them after
    // linking (8,600 of 10,000 for the uniform 3-d rows): the hubs of
    // longest vectors keep only each other. The repair used to evict any
    // link from the hubs' lists to take them in, and recall@10 fell from
    // 0.95 to 0.66 (uniform) and 0.44 (one cluster); it must now reach every
    // row and keep the recall of the insert path, which repairs nothing.
    let cases = [
        (
            "uniform",
            uniform_rows(10_000, 3, 77),
            uniform_rows(100, 3, 78),
        ),
        (
            "one cluster",
            clustered(10_000, 3, 1, 5),
            clustered_from(100, 3, 1, 5, 6),
        ),
    ];
    for (name, data, queries) in cases {
        let serial = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let mut g = BuildGraph::new(
            BuildParams {
                m: 16,
                ef_construction: 64,
                metric: Metric::InnerProduct,
                seed: 42,
                storage: Storage::F32,
            },
            3,
        );
        for (i, v) in data.iter().enumerate() {
            g.push(v, crate::format::tid_payload(heap_tid(i)));
        }
        g.insert_pending(&serial, 256, |_| {});
        // every row on level 0 (upper levels only route: a node lost
        // there, where lists keep diverse links only, is still found)
        assert!(g.reachable(0).iter().all(|r| *r), "{name}");
        let store = pagestore::MemStore::new();
        crate::write::write_graph(&g, &store).unwrap();
        let built = page_recall_at(&store, &data, &queries, Metric::InnerProduct, 40);
        let inserted = page_recall_at(
            &inserted_index(&data, Metric::InnerProduct),
            &data,
            &queries,
            Metric::InnerProduct,
            40,
        );
        eprintln!("{name}: recall@10 at ef 40 built {built:.3}, inserted {inserted:.3}");
        assert!(built >= inserted - 0.02, "{name}: {built} vs {inserted}");
        assert!(built >= 0.9, "{name}: {built}");
    }
}

#[test]
fn vacuum_relinks_inner_product_orphans_without_losing_recall() {
    // The insert path leaves most of these rows unreachable (no repair, as
    // pgvector); VACUUM links every one back and keeps the recall.
    let data = uniform_rows(10_000, 3, 77);
    let queries = uniform_rows(100, 3, 78);
    let store = inserted_index(&data, Metric::InnerProduct);
    let before = crate::check::check_index(&store, || {});
    assert!(before.unreachable > 5_000, "{}", before.unreachable);
    let recall_before = page_recall_at(&store, &data, &queries, Metric::InnerProduct, 40);
    let stats = crate::vacuum::bulk_delete(&store, |_| false, || {}).unwrap();
    let after = crate::check::check_index(&store, || {});
    let recall_after = page_recall_at(&store, &data, &queries, Metric::InnerProduct, 40);
    eprintln!(
        "{} orphans, {} relinked; recall@10 {recall_before:.3} -> {recall_after:.3}",
        before.unreachable, stats.elements_relinked
    );
    assert_eq!((after.unreachable, after.problems.count), (0, 0));
    assert!(
        recall_after >= recall_before - 0.01,
        "{recall_after} vs {recall_before}"
    );
}
