//! What the build's steps allocate, counted by the test binary's global
//! allocator (`testkit::alloc`).

use super::*;
use pagestore::{BlockNumber, PageStore, PAGE_SIZE};
use std::cell::{Cell, RefCell};
use testkit::alloc::peak_of;

#[global_allocator]
static COUNTING: testkit::alloc::Counting = testkit::alloc::Counting;

/// A store that keeps no page (one reused buffer): what writing to it
/// allocates is the writing's own.
struct Discard {
    blocks: Cell<BlockNumber>,
    page: RefCell<Vec<u8>>,
}

impl PageStore for Discard {
    fn nblocks(&self) -> BlockNumber {
        self.blocks.get()
    }
    fn read<R>(&self, _: BlockNumber, _: impl FnOnce(&[u8]) -> R) -> R {
        unreachable!("writing a graph reads no page")
    }
    fn write<R>(&self, _: BlockNumber, f: impl FnOnce(&mut [u8]) -> R) -> R {
        f(&mut self.page.borrow_mut())
    }
    fn extend_if<R>(
        &self,
        blocks: Option<BlockNumber>,
        f: impl FnOnce(BlockNumber, &mut [u8]) -> R,
    ) -> Option<R> {
        let b = self.blocks.get();
        if blocks.is_some_and(|n| n != b) {
            return None;
        }
        self.blocks.set(b + 1);
        let mut page = self.page.borrow_mut();
        page.fill(0);
        Some(f(b, &mut page))
    }
}

/// Writing a graph onto pages allocates no more than `write_bytes` (what a
/// build counts against maintenance_work_mem for it) and a few pages'
/// worth of scratch: for 384-d f32 elements (four a page), 8-d ones (many
/// a page), and an index of four-bit codes. With both placement plans
/// alive and a `Vec` a page, writing the 384-d rows held 94 bytes a node
/// (the limit is `WRITE_BYTES_PER_NODE`, 40).
#[test]
fn writing_stays_within_write_bytes() {
    let cases = [
        (clustered(3000, 384, 8, 3), None),
        (clustered(20000, 8, 8, 4), None),
        (
            clustered(3000, 384, 8, 5),
            Some(crate::Quantize { seed: 7, bits: 4 }),
        ),
    ];
    for (data, quantize) in cases {
        let params = BuildParams {
            m: 16,
            ef_construction: 32,
            metric: Metric::L2,
            seed: 1,
            storage: Storage::F32,
            quantize,
        };
        let mut g = BuildGraph::new(params, data[0].len());
        for (i, v) in data.iter().enumerate() {
            g.push_w(v, crate::format::tid_payload(heap_tid(i)));
        }
        g.insert_pending(&pool(), 128, |_| {});
        let store = Discard {
            blocks: Cell::new(0),
            page: RefCell::new(vec![0; PAGE_SIZE]),
        };
        let (written, peak) = peak_of(|| crate::write::write_graph(&g, &store));
        written.unwrap();
        let (budget, scratch) = (
            g.write_bytes(),
            (8 + crate::write::APPEND_PAGES) * PAGE_SIZE,
        );
        println!(
            "{} x {}-d{}: writing held {peak} bytes at most, write_bytes {budget}",
            g.len(),
            g.dim(),
            if quantize.is_some() { " codes" } else { "" }
        );
        assert!(peak <= budget + scratch, "{peak} > {budget} + {scratch}");
        if quantize.is_none() {
            // (for codes it also counts the codes a build's pool makes
            // before the pages, which writing on this thread does not)
            assert!(
                peak * 3 > budget,
                "write_bytes {budget} is far above {peak}"
            );
        }
    }
}

/// VACUUM's passes 1-4 hold what grows with the deleted elements, not with
/// the index: 20,000 elements with 1% of them deleted, and a reachability
/// budget too small for pass 5 to keep anything (it reads and changes
/// nothing): 23,552 bytes at most. Keeping every live element's TID and
/// level (16 bytes each) held 546,560.
#[test]
fn vacuum_holds_what_the_deleted_elements_take() {
    let data = clustered(20000, 8, 8, 7);
    let (_, store) = paged_index(&data, Metric::L2, 8, 3);
    let dead = |t: pagestore::Tid| row_of(t) % 100 == 7;
    let (stats, peak) =
        peak_of(|| crate::vacuum::bulk_delete_within(&store, dead, 1024, || {}, || {}).unwrap());
    println!("vacuum held {peak} bytes at most: {stats:?}");
    assert_eq!(stats.elements_deleted, 200);
    assert!(stats.reach_needs.is_some(), "pass 5 over its budget");
    assert!(stats.links_repaired > 0);
    assert!(peak < 200 * 64 + 64 * 1024, "{peak} bytes");
}

/// A graph given a memory limit fills it: pushed until the next node would
/// pass the limit (as the extension's build does), 384-d vectors take at
/// least 90% of what `bytes_per_node` says fits, where doubling the
/// vectors' array past the limit left room for 68% (4 MB: 1,252 nodes
/// before, 1,844 now, of 1,852).
#[test]
fn a_graph_fills_its_memory_limit() {
    let limit = 4 << 20;
    let data = clustered(4000, 384, 8, 9);
    let mut g = BuildGraph::new(
        BuildParams {
            m: 16,
            ef_construction: 32,
            metric: Metric::L2,
            seed: 1,
            storage: Storage::F32,
            quantize: None,
        },
        384,
    );
    g.set_memory_limit(limit);
    for (i, v) in data.iter().enumerate() {
        let next = g.bytes_per_node() + crate::write::WRITE_BYTES_PER_NODE;
        if !g.is_empty() && g.memory_bytes() + g.write_bytes() + next > limit {
            break;
        }
        g.push_w(v, crate::format::tid_payload(heap_tid(i)));
    }
    let fits = limit / (g.bytes_per_node() + crate::write::WRITE_BYTES_PER_NODE);
    println!("{} nodes in {limit} bytes ({fits} fit)", g.len());
    assert!(g.len() * 10 >= fits * 9, "{} of {fits}", g.len());
    assert!(g.memory_bytes() + g.write_bytes() <= limit);
}
