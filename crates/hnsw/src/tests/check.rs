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
        insert(&store, v, heap_tid(i), 7).unwrap();
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
    let (store, victims) = super::vacuum::stranded_index();
    let r = check_index(&store, || {});
    assert_eq!((r.unreachable, r.problems.count), (victims.len() as u64, 1));
    assert_eq!(
        r.problems.first,
        [format!(
            "{} live elements cannot be reached from the entry point (vector_ext_index_repair or a VACUUM that removes rows relinks them)",
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
    let a = pg.search(&pg.wq(&data[10]), 1, 40).unwrap()[0].id;
    let b = pg.search(&pg.wq(&data[20]), 1, 40).unwrap()[0].id;
    let (ea, eb) = (pg.element(a).unwrap(), pg.element(b).unwrap());
    // a's first link now leads to b's neighbour tuple, not an element
    let (before, mut links) = read_links(&store, ea.neighbors, 8, ea.level, 0).unwrap();
    links[0].tid = eb.neighbors;
    assert!(
        write_slots_if_unchanged(&store, ea.neighbors, 8, 0, &before, &links_bytes(0, &links))
            .unwrap()
    );
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
