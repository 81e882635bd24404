//! Deleted elements' space reused by inserts (`crate::reuse`).

use super::*;
use crate::check::check_index;
use crate::insert::{insert, Inserted};
use crate::pages::{element_add_heap_tid, PageGraph};
use crate::vacuum::bulk_delete;
use pagestore::{MemStore, PageStore, Tid};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;

/// Every element of the index: TID -> (level, neighbour tuple, deleted,
/// heap TIDs).
fn elements(store: &MemStore) -> HashMap<Tid, (usize, Tid, bool, Vec<Tid>)> {
    let pg = PageGraph::open(store).unwrap();
    let mut out = HashMap::new();
    for block in 1..store.nblocks() {
        let offsets = store.read(block, |p| pagestore::page::max_offset(p).unwrap());
        for offset in 1..=offsets {
            let t = Tid { block, offset };
            if store.read(block, |p| pagestore::page::item(p, offset).unwrap()[0]) != 1 {
                continue;
            }
            let e = pg.element(t).unwrap();
            out.insert(t, (e.level, e.neighbors, e.deleted, pg.heap_tids(t)));
        }
    }
    out
}

fn copy_of(store: &MemStore) -> MemStore {
    let copy = MemStore::new();
    for b in 0..store.nblocks() {
        let image = store.read(b, |p| p.to_vec());
        copy.extend(|_, p| p.copy_from_slice(&image));
    }
    copy
}

/// The check finds nothing wrong and exactly `rows` as heap TIDs.
fn assert_sound(store: &MemStore, rows: &HashSet<usize>) {
    let r = check_index(store, || {});
    assert_eq!(r.problems.first, Vec::<String>::new());
    let mut want: Vec<Tid> = rows.iter().map(|i| heap_tid(*i)).collect();
    want.sort();
    assert_eq!(r.heap_tids, want);
}

/// Rounds of inserts and deletes with a VACUUM each: after the first round
/// new elements take the freed space, so the index stops growing, and it
/// stays as sound and as good to search as without reuse.
#[test]
fn vacuumed_space_is_reused_and_the_index_stops_growing() {
    let data = clustered(8000, 16, 8, 91);
    let queries = clustered_from(50, 16, 8, 91, 92);
    let store = paged_index(&data[..2000], Metric::L2, 8, 5).1;
    let mut live: HashSet<usize> = (0..2000).collect();
    let mut rng = Rng(17);
    let mut next = 2000;
    let mut sizes = Vec::new();
    for _ in 0..6 {
        let before = elements(&store);
        let mut appended = [0usize; 4];
        for _ in 0..1000 {
            if let Inserted::Element(t) = insert(&store, &data[next], heap_tid(next), 7).unwrap() {
                if !before.contains_key(&t) {
                    appended[pg_level(&store, t).min(3)] += 1;
                }
            }
            live.insert(next);
            next += 1;
        }
        sizes.push(store.nblocks());
        let free_left: Vec<usize> = {
            let a = elements(&store);
            (0..4)
                .map(|l| a.values().filter(|e| e.2 && e.0.min(3) == l).count())
                .collect()
        };
        eprintln!("appended by level {appended:?}, free left by level {free_left:?}");
        let mut sorted: Vec<usize> = live.iter().copied().collect();
        sorted.sort();
        let dead: HashSet<usize> = sorted.into_iter().filter(|_| rng.next() % 3 == 0).collect();
        let s = bulk_delete(&store, |t| dead.contains(&row_of(t)), || {}).unwrap();
        live.retain(|i| !dead.contains(i));
        // every element deleted is freed (none is left half-repaired)
        let all = elements(&store);
        let deleted = all.values().filter(|e| e.2).count() as u64;
        assert!(s.elements_freed <= deleted && s.elements_freed >= s.elements_deleted - 1);
        assert_sound(&store, &live);
        assert_eq!(check_index(&store, || {}).unreachable, 0);
    }
    eprintln!("pages after each round's inserts: {sizes:?}");
    // a third of ~3000 rows is freed each round and 1000 come in: the
    // pages added after the first round are those of levels no free
    // element had (a handful)
    for w in sizes.windows(2).skip(1) {
        assert!(w[1] <= w[0] + 3, "{sizes:?}");
    }
    super::page_insert::check_link_distances(&store);
    let mut rows: Vec<usize> = live.iter().copied().collect();
    rows.sort();
    let survivors: Vec<Vec<f32>> = rows.iter().map(|i| data[*i].clone()).collect();
    let fresh = paged_index(&survivors, Metric::L2, 8, 5).1;
    let pg = PageGraph::open(&store).unwrap();
    let pf = PageGraph::open(&fresh).unwrap();
    let (mut reused, mut rebuilt) = (0, 0);
    for q in &queries {
        let truth: HashSet<usize> = brute_force(&survivors, Metric::L2, q, 10)
            .into_iter()
            .map(|j| rows[j as usize])
            .collect();
        let hits = |pg: &PageGraph<MemStore>, map: &dyn Fn(usize) -> usize| {
            search(pg, q, 40, 40)
                .iter()
                .flat_map(|c| pg.heap_tids(c.id))
                .take(10)
                .filter(|t| truth.contains(&map(row_of(*t))))
                .count()
        };
        reused += hits(&pg, &|r| r);
        rebuilt += hits(&pf, &|r| rows[r]);
    }
    let (a, b) = (reused as f64 / 500.0, rebuilt as f64 / 500.0);
    eprintln!("recall@10 with reuse {a:.3}, fresh build {b:.3}");
    assert!(a >= b - 0.02, "{a} vs {b}");
}

/// Panics (a simulated crash) at the write after the first `budget`.
struct Crashing<'a> {
    inner: &'a MemStore,
    budget: Cell<usize>,
}

struct Crash;

impl Crashing<'_> {
    fn spend(&self) {
        if self.budget.get() == 0 {
            std::panic::panic_any(Crash);
        }
        self.budget.set(self.budget.get() - 1);
    }
}

impl PageStore for Crashing<'_> {
    fn nblocks(&self) -> u32 {
        self.inner.nblocks()
    }
    fn read<R>(&self, block: u32, f: impl FnOnce(&[u8]) -> R) -> R {
        self.inner.read(block, f)
    }
    fn write<R>(&self, block: u32, f: impl FnOnce(&mut [u8]) -> R) -> R {
        self.spend();
        self.inner.write(block, f)
    }
    fn extend<R>(&self, f: impl FnOnce(u32, &mut [u8]) -> R) -> R {
        self.spend();
        self.inner.extend(f)
    }
}

fn quiet_crashes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<Crash>().is_none() {
                default(info)
            }
        }));
    });
}

/// A crash after any write of inserts that take freed space leaves an
/// index that checks clean and holds every committed row, and after VACUUM
/// (which drops the row the crash aborted) it takes inserts again. Both
/// kinds of claim: element and neighbour tuple on one page (one write), and
/// on two pages (1,990 dimensions: an element fills a page of its own).
#[test]
fn a_crash_at_any_write_of_an_insert_into_freed_space_leaves_a_sound_index() {
    quiet_crashes();
    for (dim, n, split) in [(8, 600, false), (1990, 60, true)] {
        crash_at_every_write(dim, n, split);
    }
}

fn crash_at_every_write(dim: usize, n: usize, split: bool) {
    let data = clustered(n + 100, dim, 4, 93);
    let base = paged_index(&data[..n], Metric::L2, 8, 5).1;
    // free some level-0 elements
    let all = elements(&base);
    let mut level0: Vec<(&Tid, &(usize, Tid, bool, Vec<Tid>))> =
        all.iter().filter(|(_, e)| e.0 == 0).collect();
    level0.sort_by_key(|(t, _)| **t);
    let dead: HashSet<usize> = level0
        .iter()
        .filter(|(t, e)| (e.1.block != t.block) == split)
        .step_by(5)
        .take(8)
        .map(|(_, e)| row_of(e.3[0]))
        .collect();
    assert_eq!(dead.len(), 8);
    let s = bulk_delete(&base, |t| dead.contains(&row_of(t)), || {}).unwrap();
    assert_eq!(s.elements_freed, 8);
    let mut live: HashSet<usize> = (0..n).filter(|i| !dead.contains(i)).collect();
    let freed: HashMap<Tid, Tid> = elements(&base)
        .into_iter()
        .filter(|(_, e)| e.2)
        .map(|(t, e)| (t, e.1))
        .collect();

    // without a crash: the inserts take freed slots, and make `writes`
    let rows: Vec<usize> = (n..n + 10).collect();
    let clean = copy_of(&base);
    let counting = Crashing {
        inner: &clean,
        budget: Cell::new(usize::MAX),
    };
    let mut took = 0;
    for &i in &rows {
        if let Inserted::Element(t) = insert(&counting, &data[i], heap_tid(i), 3).unwrap() {
            if let Some(nt) = freed.get(&t) {
                assert_eq!(nt.block != t.block, split);
                took += 1;
            }
        }
    }
    assert!(took >= 6, "{took} of 10 inserts took freed space");
    let writes = usize::MAX - counting.budget.get();
    let mut all_rows = live.clone();
    all_rows.extend(&rows);
    assert_sound(&clean, &all_rows);

    for budget in 0..writes {
        let store = copy_of(&base);
        let crashing = Crashing {
            inner: &store,
            budget: Cell::new(budget),
        };
        let mut committed = live.clone();
        let mut aborted = None;
        for &i in &rows {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                insert(&crashing, &data[i], heap_tid(i), 3).unwrap()
            }));
            match r {
                Ok(_) => {
                    committed.insert(i);
                }
                Err(e) => {
                    assert!(e.downcast_ref::<Crash>().is_some());
                    aborted = Some(i);
                    break;
                }
            }
        }
        let r = check_index(&store, || {});
        let at = format!("{dim} dims, crash at write {budget}");
        assert_eq!(r.problems.first, Vec::<String>::new(), "{at}");
        let held: HashSet<usize> = r.heap_tids.iter().map(|t| row_of(*t)).collect();
        assert!(committed.is_subset(&held), "{at}");
        assert!(
            held.iter()
                .all(|i| committed.contains(i) || Some(*i) == aborted),
            "{at}"
        );
        bulk_delete(&store, |t| Some(row_of(t)) == aborted, || {}).unwrap();
        assert_sound(&store, &committed);
        assert_eq!(check_index(&store, || {}).unreachable, 0, "{at}");
        for i in n + 80..n + 84 {
            insert(&store, &data[i], heap_tid(i), 4).unwrap();
            committed.insert(i);
        }
        assert_sound(&store, &committed);
        let pg = PageGraph::open(&store).unwrap();
        for i in committed.iter().filter(|i| **i >= n) {
            let found = search(&pg, &data[*i], 1, 40);
            assert!(pg.heap_tids(found[0].id).contains(&heap_tid(*i)), "{at}");
        }
    }
    live.clear();
}

/// Inserting threads and a VACUUM thread at once, deleted space reused
/// throughout: afterwards the index holds exactly the live rows.
#[test]
fn concurrent_inserts_and_vacuums_reusing_space_agree_with_the_table() {
    let data = clustered(5000, 16, 8, 95);
    let store = paged_index(&data[..1000], Metric::L2, 8, 5).1;
    let inserted: Mutex<Vec<usize>> = Mutex::new((0..1000).collect());
    let dead: Mutex<HashSet<usize>> = Mutex::new(HashSet::new());
    let done = std::sync::atomic::AtomicUsize::new(0);
    let freed = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for w in 0..2 {
            let (store, data, inserted, done) = (&store, &data, &inserted, &done);
            s.spawn(move || {
                for i in (1000 + w..5000).step_by(2) {
                    insert(store, &data[i], heap_tid(i), 11).unwrap();
                    inserted.lock().unwrap().push(i);
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        s.spawn(|| {
            let mut rng = Rng(5);
            while done.load(std::sync::atomic::Ordering::SeqCst) < 2 {
                let rows = inserted.lock().unwrap().clone();
                {
                    let mut d = dead.lock().unwrap();
                    d.extend(rows.into_iter().filter(|_| rng.next() % 4 == 0));
                }
                let d = dead.lock().unwrap().clone();
                let st = bulk_delete(&store, |t| d.contains(&row_of(t)), || {}).unwrap();
                freed.fetch_add(st.elements_freed, std::sync::atomic::Ordering::SeqCst);
            }
        });
    });
    let d = dead.into_inner().unwrap();
    let st = bulk_delete(&store, |t| d.contains(&row_of(t)), || {}).unwrap();
    eprintln!(
        "final {st:?} unreachable {}",
        check_index(&store, || {}).unreachable
    );
    let st = bulk_delete(&store, |t| d.contains(&row_of(t)), || {}).unwrap();
    eprintln!(
        "again {st:?} unreachable {}",
        check_index(&store, || {}).unreachable
    );
    {
        let pg = PageGraph::open(&store).unwrap();
        let all = elements(&store);
        let (entry, el) = pg.entry_point().unwrap();
        eprintln!("entry {entry:?} level {el} element {:?}", all.get(&entry));
        let mut seen = HashSet::from([entry]);
        let mut todo = vec![entry];
        while let Some(t) = todo.pop() {
            let mut out = Vec::new();
            pg.neighbors(t, 0, &mut out);
            for n in out {
                if seen.insert(n) {
                    todo.push(n);
                }
            }
        }
        let un: Vec<_> = all
            .iter()
            .filter(|(t, e)| !e.2 && !seen.contains(t))
            .collect();
        eprintln!(
            "level-0 walk: {} unreachable, e.g. {:?}",
            un.len(),
            un.first()
        );
    }
    let live: HashSet<usize> = (0..5000).filter(|i| !d.contains(i)).collect();
    assert_sound(&store, &live);
    let r = check_index(&store, || {});
    assert_eq!(r.unreachable, 0);
    // fewer elements than rows ever inserted: freed ones were taken again
    let freed = freed.into_inner();
    eprintln!(
        "{} elements for 5000 rows inserted, {} freed while inserting, {} pages",
        r.elements,
        freed,
        store.nblocks()
    );
    assert!(freed > 0 && r.elements < 5000, "{} {freed}", r.elements);
}

/// A heap TID never joins a deleted element: a VACUUM may have deleted it
/// (and freed it for reuse) between an insert's read and its write.
#[test]
fn a_duplicate_never_joins_a_deleted_element() {
    let mut raw = crate::pages::element_tuple(
        0,
        &[heap_tid(1)],
        Tid {
            block: 1,
            offset: 2,
        },
        &[1.0; 4],
        Storage::F32,
        4,
    );
    assert!(element_add_heap_tid(&mut raw, heap_tid(2)));
    raw[2] = crate::pages::FLAG_DELETED;
    assert!(!element_add_heap_tid(&mut raw, heap_tid(3)));
    assert_eq!(raw[3], 2);
}

fn pg_level(store: &MemStore, t: Tid) -> usize {
    PageGraph::open(store).unwrap().element(t).unwrap().level
}
