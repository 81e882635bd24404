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
        let r = insert(&half, v, heap_tid(i), 7).unwrap();
        assert!(matches!(r, crate::insert::Inserted::Element(_)), "{r:?}");
    }
    // every row, built or inserted, is found from its own (rounded) vector
    let pg = PageGraph::open(&half).unwrap();
    for (i, v) in data.iter().enumerate() {
        let mut q = v.clone();
        Storage::F16.round(&mut q);
        let found = pg.search(&pg.wq(&q), 1, 64).unwrap();
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
        insert(&store, v, heap_tid(i), 5).unwrap();
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
        for c in pg.search(&pg.wq(q), 10, 64).unwrap() {
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
            let q = metric.prepare_words(&q).unwrap();
            // Equal distances (duplicates) may come in either order: ids
            // differ in type between the two graphs, so compare sorted.
            let mut mem: Vec<(u32, Vec<u64>)> = search(&g, &g.wq(&q), 10, 40)
                .iter()
                .map(|c| (c.distance.to_bits(), g.payloads(c.id)))
                .collect();
            let mut paged: Vec<(u32, Vec<u64>)> = pg
                .search_w(&q, 10, 40)
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
        let q = metric.prepare_words(&data[3]).unwrap();
        let tids: Vec<Tid> = pg
            .search_w(&q, 5, 100)
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
    let g = small_graph(3);
    let store = MemStore::new();
    write_graph(&g, &store).unwrap();
    let pg = PageGraph::open(&store).unwrap();
    assert!(pg
        .search(&pg.wq(&[0.0, 0.0, 0.0]), 3, 10)
        .unwrap()
        .is_empty());
    assert!(
        max_dims() >= 2000,
        "at least pgvector's indexable 2000 dimensions: {}",
        max_dims()
    );
    let big = small_graph(max_dims() + 1);
    assert!(write_graph(&big, &MemStore::new())
        .unwrap_err()
        .to_string()
        .contains("do not fit"));
    // the largest element still fits, next to its neighbour tuple or not
    let mut g = BuildGraph::new(
        BuildParams {
            m: 16,
            ef_construction: 8,
            metric: Metric::L2,
            seed: 0,
            storage: Storage::F32,
            quantize: None,
        },
        max_dims(),
    );
    for i in 0..20 {
        g.push_w(&vec![i as f32; max_dims()], tid_payload(heap_tid(i)));
    }
    g.insert_pending(&pool(), 4, |_| {});
    let store = MemStore::new();
    write_graph(&g, &store).unwrap();
    let pg = PageGraph::open(&store).unwrap();
    let found = pg.search(&pg.wq(&vec![3.0; max_dims()]), 1, 10).unwrap();
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
    let err = insert(&store, &data[3], heap_tid(700), 1).unwrap_err();
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
    let err = pg.search(&pg.wq(&q), 10, 40).expect_err("reported");
    assert!(err.0.contains("not an hnsw data page"), "{}", err.0);
    // random byte flips anywhere in data pages: errors or wrong answers, never a panic
    let mut rng = Rng::new(12345);
    for round in 0..300 {
        let (_, s) = paged_index(&data[..120], Metric::L2, 8, 1);
        for _ in 0..(1 + round % 8) {
            let block = 1 + rng.below(s.nblocks() as usize - 1) as u32;
            let at = rng.below(pagestore::PAGE_SIZE);
            let bit = rng.below(8);
            s.corrupt(block, |p| p[at] ^= 1 << bit);
        }
        if let Ok(pg) = PageGraph::open(&s) {
            if let Ok(found) = pg.search(&pg.wq(&data[round % 120]), 5, 20) {
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
    let err = pg.search(&pg.wq(&q), 5, 20).expect_err("reported");
    assert!(err.0.contains("outside the index"), "{}", err.0);
    let _ = payload_tid(0);
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
        let mut it = crate::iterative::IterativeSearch::new(&pg.wq(&[0.25, 0.5, 0.75]), ef);
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
    let mut rng = Rng::new(0x1234_5678_9abc_def0);
    let mut next = || rng.next_u64();
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
                .search_w(q, 10, 200)
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
        let t = pg.search(&pg.wq(&data[5]), 1, 40).unwrap()[0].id;
        let back = pg.element(t).unwrap().vector;
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same(&back, &data[5]) || data.iter().any(|v| same(&back, v)));
    }
}

#[test]
fn all_zero_pages_a_crash_leaves_are_skipped() {
    use crate::check::check_index;
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
    let mut it = IterativeSearch::new(&pg.wq(&data[1]), 40).sweeping();
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
    let order = crate::write::placement_orders(&g).unwrap().0;
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
