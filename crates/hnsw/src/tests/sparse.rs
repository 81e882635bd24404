use super::*;
use crate::format::{max_sparse_nnz, tid_payload};
use crate::insert::Inserted;
use crate::page_graph::PageGraph;
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
    let mut rng = Rng::new(centre_seed);
    let centres: Vec<Vec<(u32, f32)>> = (0..8)
        .map(|_| {
            (0..60)
                .map(|_| ((rng.next_u64() % DIM as u64) as u32, rng.centered() * 4.0))
                .collect()
        })
        .collect();
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let mut entries: Vec<(u32, f32)> = Vec::new();
            for (j, v) in &centres[i % 8] {
                if rng.next_u64() % 4 != 0 {
                    entries.push((*j, v + rng.centered()));
                }
            }
            for _ in 0..rng.next_u64() % 6 {
                entries.push(((rng.next_u64() % DIM as u64) as u32, rng.centered()));
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
        quantize: None,
    }
}

fn sparse_index(data: &[Vec<f32>], metric: Metric) -> (BuildGraph, MemStore) {
    paged_with(params(metric), DIM, data)
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
                let got = s.distance(&s.prepare_words(a).unwrap(), &s.prepare_words(b).unwrap());
                let want = d.distance(
                    &d.prepare_words(&dense(a)).unwrap(),
                    &d.prepare_words(&dense(b)).unwrap(),
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
            let q = metric.prepare_words(q).unwrap();
            let mem = search(&g, &g.wq(&q), 10, 64);
            hits += mem.iter().filter(|c| truth.contains(&c.id)).count();
            paged_hits += pg
                .search_w(&q, 10, 64)
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
                .search_w(&data[7], 1, 40)
                .unwrap()[0]
                .id
        )
    );
    let pg = PageGraph::open(&store).unwrap();
    let all: Vec<&Vec<f32>> = data[..300].iter().chain(&extra).collect();
    for (i, v) in all.iter().enumerate() {
        let found = pg.search(&pg.wq(v), 1, 64).unwrap();
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
    let q = Metric::SparseCosine.prepare_words(&data[50]).unwrap();
    let found = pg.search(&pg.wq(&q), 1, 40).unwrap();
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
