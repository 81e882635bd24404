use super::*;
use crate::page_graph::PageGraph;
use crate::vacuum::bulk_delete;
use pagestore::{MemStore, PageStore};

/// The k nearest live rows the index returns (deleted elements skipped).
fn live_search(store: &MemStore, q: &[f32], k: usize, ef: usize) -> Vec<usize> {
    let pg = PageGraph::open(store).unwrap();
    let rows: Vec<usize> = pg
        .search_w(q, ef, ef)
        .unwrap()
        .iter()
        .flat_map(|c| pg.heap_tids(c.id).unwrap())
        .map(row_of)
        .take(k)
        .collect();
    rows
}

/// Rounds of inserts, deletes and VACUUM (what the soak test does to an
/// index): recall at the end stays within 0.02 of a fresh build's. What
/// each step of VACUUM's repair gained here is in bench/README.md
/// ("Measurements behind design choices").
#[test]
fn churn_keeps_recall_near_a_fresh_build() {
    let data = clustered(12_000, 48, 40, 61);
    let queries = clustered_from(100, 48, 40, 61, 62);
    for (rounds, one_in) in [(10, 3), (4, 2), (10, 10)] {
        let store = paged_index(&data[..2000], Metric::L2, 8, 5).1;
        let mut live: HashSet<usize> = (0..2000).collect();
        let mut rng = Rng::new(99);
        let mut next = 2000;
        for _ in 0..rounds {
            for _ in 0..10_000 / rounds {
                insert(&store, &data[next], heap_tid(next), 7).unwrap();
                live.insert(next);
                next += 1;
            }
            let mut sorted: Vec<usize> = live.iter().copied().collect();
            sorted.sort();
            let dead: HashSet<usize> = sorted
                .into_iter()
                .filter(|_| rng.next_u64() % one_in == 0)
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
    // the metapage keeps what it did, and later metapage writes keep that
    let meta = |s: &MemStore| s.read(0, crate::format::Meta::decode).unwrap();
    assert_eq!(
        meta(&store).last_vacuum,
        pagestore::page::VacuumRecord::default()
    );
    crate::vacuum::record_vacuum(&store, stats.record(1234), false).unwrap();
    let want = pagestore::page::VacuumRecord {
        at: 1234,
        removed: 600,
        remaining: 1400,
        reused: stats.elements_freed,
        relinked: stats.elements_relinked,
        reach_skipped_bytes: 0,
    };
    assert!(want.reused > 0);
    assert_eq!(meta(&store).last_vacuum, want);
    super::insert::check_link_distances(&store);
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
    assert_eq!(meta(&store).last_vacuum, want);
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
    let mut it = crate::iterative::IterativeSearch::<pagestore::Tid>::new(&pg.wq(&[0.0; 8]), 50);
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
    super::insert::check_links(&store, false);
    assert!(calls > victims.len());
    assert_eq!(
        reachable_elements(&store).len(),
        500,
        "every element reachable again"
    );
    // each victim is found as its own nearest neighbour again
    for v in &victims {
        let vector = pg.element(*v).unwrap().vector;
        assert_eq!(pg.search(&pg.wq(&vector), 1, 40).unwrap()[0].id, *v);
    }
    // a second pass finds nothing to do
    assert_eq!(
        bulk_delete(&store, |_| false, || {})
            .unwrap()
            .elements_relinked,
        0
    );
}

#[test]
fn vacuum_relinks_inner_product_orphans_without_losing_recall() {
    // Inserts as pgvector's (no adoption) leave most of these rows
    // unreachable; VACUUM links every one back and keeps the recall.
    let data = uniform_rows(10_000, 3, 77);
    let queries = uniform_rows(100, 3, 78);
    let store = crate::insert::without_adoption(|| inserted_index(&data, Metric::InnerProduct));
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

/// A store counting its page reads.
struct Counting {
    inner: pagestore::MemStore,
    reads: std::cell::Cell<u64>,
}

impl PageStore for Counting {
    fn nblocks(&self) -> u32 {
        self.inner.nblocks()
    }
    fn read<R>(&self, block: u32, f: impl FnOnce(&[u8]) -> R) -> R {
        self.reads.set(self.reads.get() + 1);
        self.inner.read(block, f)
    }
    fn write<R>(&self, block: u32, f: impl FnOnce(&mut [u8]) -> R) -> R {
        self.inner.write(block, f)
    }
    fn extend_if<R>(&self, blocks: Option<u32>, f: impl FnOnce(u32, &mut [u8]) -> R) -> Option<R> {
        self.inner.extend_if(blocks, f)
    }
}

#[test]
fn the_reachability_pass_keeps_within_its_budget() {
    use crate::reach::{repair_reachability, Reach};
    // orphans made by inserts that do not adopt (as pgvector's)
    let data = uniform_rows(3000, 4, 91);
    let queries = uniform_rows(60, 4, 92);
    let fresh = || crate::insert::without_adoption(|| inserted_index(&data, Metric::InnerProduct));
    let lost = crate::check::check_index(&fresh(), || {}).unreachable;
    assert!(lost > 300, "{lost}");
    // all links in memory, links read from pages, no room at all
    let mut results = Vec::new();
    for budget in [usize::MAX, 30_000, 1_000] {
        let store = Counting {
            inner: fresh(),
            reads: Default::default(),
        };
        let mut pauses = 0;
        let reach = repair_reachability(&store, budget, || pauses += 1).unwrap();
        let reads = store.reads.get();
        let after = crate::check::check_index(&store.inner, || {});
        let recall = page_recall_at(&store.inner, &data, &queries, Metric::InnerProduct, 40);
        eprintln!(
            "budget {budget}: {reach:?}, {reads} page reads, {} unreachable, recall {recall:.3}",
            after.unreachable
        );
        results.push((
            reach,
            reads,
            after.unreachable,
            recall,
            pauses,
            store.nblocks(),
        ));
    }
    let [(all, reads_all, left_all, recall_all, ..), (paged, reads_paged, left_paged, recall_paged, ..), (none, _, left_none, _, pauses, nblocks)] =
        results[..]
    else {
        unreachable!()
    };
    assert_eq!((left_all, left_paged), (0, 0));
    assert!(all.relinked() > 0);
    // the same walk and the same hosts: the same repair, the links read
    // from the pages each time they are followed
    assert_eq!(all, paged);
    assert_eq!(recall_all, recall_paged);
    assert!(
        reads_paged > reads_all + 3 * nblocks as u64,
        "{reads_paged} {reads_all}"
    );
    // over budget: one pass over the pages, nothing changed
    assert!(
        matches!(none, Reach::OverBudget { needs, budget: 1_000 } if needs > 1_000),
        "{none:?}"
    );
    assert_eq!(left_none, lost);
    assert_eq!(pauses as u32, nblocks - 1);
}

#[test]
fn vacuum_hands_pages_a_crash_left_zeroed_to_inserts() {
    use crate::insert::Inserted;
    let data = clustered(400, 8, 4, 17);
    let store = inserted_index(&data[..300], Metric::L2);
    // a crash between adding a page and initialising it leaves it zeroed;
    // inserts pass it by (it might be one being added right now)
    let zeroed = store.extend(|b, _| b);
    for (i, v) in data.iter().enumerate().take(340).skip(300) {
        insert(&store, v, heap_tid(i), 7).unwrap();
    }
    assert!(store.nblocks() > zeroed + 1, "inserts went on past it");
    assert_eq!(crate::check::check_index(&store, || {}).new_pages, 1);
    let stats = bulk_delete(&store, |t| row_of(t) < 10, || {}).unwrap();
    assert_eq!(stats.pages_initialised, 1);
    let r = crate::check::check_index(&store, || {});
    assert_eq!(
        (r.new_pages, r.problems.count),
        (0, 0),
        "{:?}",
        r.problems.first
    );
    // inserts take the deleted rows' freed elements, then that page
    let blocks: Vec<u32> = (340..400)
        .map(
            |i| match insert(&store, &data[i], heap_tid(i), 7).unwrap() {
                Inserted::Element(t) => t.block,
                other => panic!("{other:?}"),
            },
        )
        .collect();
    let first = blocks.iter().position(|b| *b == zeroed);
    assert!(first.is_some_and(|i| i <= 12), "{blocks:?}");
    let r = crate::check::check_index(&store, || {});
    assert_eq!(r.problems.count, 0, "{:?}", r.problems.first);
    assert_eq!(r.heap_tids.len(), 390);
}
