use super::*;
use crate::iterative::IterativeSearch;
use crate::page_graph::PageGraph;

fn graph(data: &[Vec<f32>]) -> BuildGraph {
    let serial = serial_pool();
    build(&serial, data, Metric::L2, 16, 64)
}

#[test]
fn first_batch_is_the_ordinary_search() {
    let data = clustered(2000, 16, 8, 71);
    let g = graph(&data);
    for q in clustered_from(30, 16, 8, 71, 72) {
        let plain: Vec<u32> = search(&g, &g.wq(&q), 40, 40)
            .iter()
            .map(|c| c.distance.to_bits())
            .collect();
        let mut it = IterativeSearch::<u32>::new(&g.wq(&q), 40);
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
    let mut it = IterativeSearch::<u32>::new(&g.wq(&data[5]), 40);
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
        eprintln!("selectivity 1/{modulus}: recall@10 relaxed {relaxed:.3}, strict {strict:.3}");
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
    let (store, victims) = super::vacuum::stranded_index();
    let pg = PageGraph::open(&store).unwrap();
    let q = pg.element(victims[0]).unwrap().vector;
    for sweep in [false, true] {
        let mut it = IterativeSearch::<pagestore::Tid>::new(&pg.wq(&q), 20);
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
    let mut it = IterativeSearch::<pagestore::Tid>::new(&pg.wq(&data[0]), 20);
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

/// The final sweep reads the pages a stretch at a time and asks its caller
/// between stretches whether to go on (a scan checks for interrupts and its
/// budget there): once between every two stretches when the answer is yes,
/// and no stretch more once it is no.
#[test]
fn the_sweep_pauses_between_stretches_and_stops_when_told() {
    let data = clustered(6000, 64, 8, 5);
    let (_, store) = paged_index(&data, Metric::L2, 8, 2);
    let stretches = (pagestore::PageStore::nblocks(&store) as u64 - 1)
        .div_ceil(crate::search::SWEEP_PAGES) as usize;
    assert!(stretches >= 4, "{stretches} stretches");
    let pg = PageGraph::open(&store).unwrap();
    let run = |answers_yes: usize| {
        let mut it = IterativeSearch::<pagestore::Tid>::new(&pg.wq(&data[0]), 50).sweeping();
        let (mut asked, mut rows) = (0, 0);
        loop {
            let mut go_on = |s: &IterativeSearch<pagestore::Tid>| {
                if !s.in_sweep() {
                    return true; // a pause of the walk
                }
                asked += 1;
                asked <= answers_yes
            };
            let b = pg
                .walk(|w| it.next_batch_pausing(w, &mut go_on))
                .unwrap()
                .unwrap();
            if b.is_empty() {
                break;
            }
            rows += b.len();
        }
        (asked, rows)
    };
    assert_eq!(run(usize::MAX), (stretches - 1, 6000));
    assert_eq!(run(0).0, 1, "asked once, then no stretch more");
    assert_eq!(run(2).0, 3);
}

/// The walk asks its caller whether to go on every `WALK_PAUSE`
/// expansions: a batch told no at the first pause ends there with the
/// nearest of the nodes evaluated so far, having evaluated a small part of
/// what the whole batch does (a scan's budget and interrupts act within a
/// batch, not only between batches).
#[test]
fn the_walk_pauses_and_stops_when_told() {
    use crate::iterative::WALK_PAUSE;
    let data = clustered(6000, 64, 8, 5);
    let (_, store) = paged_index(&data, Metric::L2, 8, 2);
    let pg = PageGraph::open(&store).unwrap();
    let run = |answer: bool| {
        let mut it = IterativeSearch::<pagestore::Tid>::new(&pg.wq(&data[0]), 2000);
        let mut asked = 0;
        let mut go_on = |_: &IterativeSearch<pagestore::Tid>| {
            asked += 1;
            answer
        };
        let b = pg
            .walk(|w| it.next_batch_pausing(w, &mut go_on))
            .unwrap()
            .unwrap();
        (asked, it.evaluated, b)
    };
    let (asked, evaluated, whole) = run(true);
    assert!(asked >= 2000 / WALK_PAUSE, "asked {asked} times");
    assert_eq!(whole.len(), 2000);
    let (asked, cut, part) = run(false);
    assert_eq!(asked, 1);
    // one descent, then WALK_PAUSE - 1 expansions of at most 2m = 16 links
    assert!(
        cut <= 1 + WALK_PAUSE * 16 && cut * 3 < evaluated,
        "{cut} of {evaluated}"
    );
    assert!(!part.is_empty() && part.len() <= cut);
    assert!(part.windows(2).all(|p| p[0].distance <= p[1].distance));
}
