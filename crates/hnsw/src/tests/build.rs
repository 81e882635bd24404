//! The in-memory build: recall against brute force for every metric, graph
//! invariants, duplicates, levels, threads, real embeddings.

use super::*;

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
        let mut rng = Rng::new(seed);
        v.iter()
            .map(|x| {
                let n = x.iter().map(|a| a * a).sum::<f32>().sqrt();
                let s = (1.0 + rng.centered() * 0.2) / n;
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
        let g = build(&serial_pool(), data, metric, 16, 100);
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
    let found = search(&g, &g.wq(&dup), 40, 100);
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
    let g = small_graph(2);
    assert!(search(&g, &g.wq(&[0.0, 0.0]), 5, 10).is_empty());
    let g = build(&pool(), &[vec![1.0, 1.0]], Metric::L2, 4, 8);
    let found = search(&g, &g.wq(&[0.0, 0.0]), 5, 10);
    assert_eq!((found.len(), found[0].id, found[0].distance), (1, 0, 2.0));
    let g = build(
        &pool(),
        &[vec![1.0, 1.0], vec![2.0, 2.0], vec![0.0, 0.5]],
        Metric::L2,
        4,
        8,
    );
    let ids: Vec<u32> = search(&g, &g.wq(&[0.0, 0.0]), 5, 10)
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
            quantize: None,
        },
        2,
    );
    assert_eq!(g.push_w(&[0.0, 0.0], 0), None);
    assert_eq!(g.push_w(&[3.0, 4.0], 1), Some(0));
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
        let truth: Vec<u32> = testkit::fixture_truth(name).concat();
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
    let serial = serial_pool();
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
    let serial = serial_pool();
    let g = build(&serial, &data, Metric::L2, 16, 100);
    let wide = recall(&g, &data, &queries, 10, 1000);
    assert!(wide >= 0.99, "recall@10 at ef=1000 {wide}");
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
        let serial = serial_pool();
        let mut g = BuildGraph::new(
            BuildParams {
                m: 16,
                ef_construction: 64,
                metric: Metric::InnerProduct,
                seed: 42,
                storage: Storage::F32,
                quantize: None,
            },
            3,
        );
        for (i, v) in data.iter().enumerate() {
            g.push_w(v, crate::format::tid_payload(heap_tid(i)));
        }
        g.insert_pending(&serial, 256, |_| {});
        // every row on level 0 (upper levels only route: a node lost
        // there, where lists keep diverse links only, is still found)
        assert!(g.reachable(0).iter().all(|r| *r), "{name}");
        let store = pagestore::MemStore::new();
        crate::write::write_graph(&g, &store).unwrap();
        let built = page_recall_at(&store, &data, &queries, Metric::InnerProduct, 40);
        // against inserts as pgvector's (inserts that adopt the elements
        // they evict reach 0.992 on the uniform rows, the build 0.968)
        let pgvector_like =
            crate::insert::without_adoption(|| inserted_index(&data, Metric::InnerProduct));
        let inserted = page_recall_at(&pgvector_like, &data, &queries, Metric::InnerProduct, 40);
        eprintln!("{name}: recall@10 at ef 40 built {built:.3}, inserted {inserted:.3}");
        assert!(built >= inserted - 0.02, "{name}: {built} vs {inserted}");
        assert!(built >= 0.9, "{name}: {built}");
    }
}

/// Identical vectors share elements by their bytes, not by float equality:
/// bit strings ride in f32 words, and a word whose bits form a NaN never
/// equals itself as a float. Copies of such a string join one element (in
/// the build and on pages) as copies of any other value do.
#[test]
fn identical_bit_strings_share_elements_whatever_their_bits() {
    let mut rng = Rng::new(31);
    let mut data: Vec<Vec<f32>> = (0..300)
        .map(|_| {
            (0..4)
                .map(|_| f32::from_bits(rng.next_u64() as u32))
                .collect()
        })
        .collect();
    // all four words NaN patterns
    let copy = vec![
        f32::from_bits(0xFFFF_FFFF),
        f32::from_bits(0x7FC0_0001),
        f32::from_bits(0xFF80_0001),
        f32::from_bits(0x7F80_1234),
    ];
    data.extend(std::iter::repeat_n(copy.clone(), 19));
    let (g, store) = paged_index_stored(&data, Metric::Hamming, 8, 1, Storage::Bits);
    let nodes = (300..319u32).filter(|id| g.is_linked_node(*id)).count();
    let slots = g.payload_slots(300);
    assert_eq!(nodes, 19usize.div_ceil(slots), "19 copies, {slots} a node");
    // and an insert of one more copy joins the element with room
    let found = insert(&store, &copy, heap_tid(999), 1).unwrap();
    assert!(
        matches!(found, crate::insert::Inserted::Duplicate(_)),
        "{found:?}"
    );
}
